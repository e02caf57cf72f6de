from typing import Any

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import OuterRef, Q, Subquery


def link_captured_mail(apps: Any, schema_editor: Any) -> None:
    """Link what was captured before this migration to its outbox message, as new captures
    are: same Message-ID, and an envelope sender the message goes out with. Unlinked mail
    is for administrators only from now on."""
    captured_message = apps.get_model("inbox", "CapturedMessage")
    message = apps.get_model("outbox", "Message")
    delivery_of = message.objects.filter(
        Q(envelope_from=OuterRef("mail_from")) | Q(fallback_envelope_from=OuterRef("mail_from")),
        message_id=OuterRef("message_id"),
    ).values("id")[:1]
    captured_message.objects.exclude(message_id="").update(outbox_message=Subquery(delivery_of))


class Migration(migrations.Migration):
    dependencies = [
        ("inbox", "0001_initial"),
        ("outbox", "0007_event_created_at_unindexed"),
    ]

    operations = [
        migrations.AddField(
            model_name="capturedmessage",
            name="outbox_message",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="outbox.message",
            ),
        ),
        migrations.RunPython(link_captured_mail, migrations.RunPython.noop),
    ]
