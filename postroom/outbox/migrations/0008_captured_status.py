# Mail delivered to the sandbox capture gets its own status, "captured", instead of "sent".
# Mail captured before this has a capture linked to it (inbox 0002): it becomes "captured" too,
# so no contact's history goes on claiming it was sent.

from django.db import migrations, models


def captured_mail_marked(apps, schema_editor):
    CapturedMessage = apps.get_model("inbox", "CapturedMessage")
    Message = apps.get_model("outbox", "Message")
    Recipient = apps.get_model("outbox", "Recipient")
    captured = CapturedMessage.objects.filter(outbox_message__isnull=False).values("outbox_message")
    Recipient.objects.filter(message__in=captured, status="sent").update(
        status="captured", sent_at=None
    )
    Message.objects.filter(pk__in=captured, status="sent").update(status="captured")


class Migration(migrations.Migration):

    dependencies = [
        ('outbox', '0007_event_created_at_unindexed'),
        ('inbox', '0002_captured_message_outbox_message'),
    ]

    operations = [
        migrations.AlterField(
            model_name='event',
            name='kind',
            field=models.CharField(choices=[('message.queued', 'Message queued'), ('message.sent', 'Message sent'), ('message.captured', 'Message captured (sandbox mode, not sent)'), ('message.deferred', 'Message deferred'), ('message.failed', 'Message failed'), ('message.uncertain', 'Message uncertain'), ('recipient.unsubscribed', 'Recipient unsubscribed')], max_length=30),
        ),
        migrations.AlterField(
            model_name='message',
            name='status',
            field=models.CharField(choices=[('queued', 'Queued'), ('sending', 'Sending'), ('sent', 'Sent'), ('captured', 'Captured (sandbox)'), ('partial', 'Partly sent'), ('deferred', 'Deferred'), ('uncertain', 'Uncertain'), ('failed', 'Failed'), ('cancelled', 'Cancelled')], default='queued', max_length=12),
        ),
        migrations.AlterField(
            model_name='recipient',
            name='status',
            field=models.CharField(choices=[('queued', 'Queued'), ('sending', 'Sending'), ('sent', 'Sent'), ('captured', 'Captured (sandbox)'), ('deferred', 'Deferred'), ('uncertain', 'Uncertain'), ('failed', 'Failed'), ('cancelled', 'Cancelled')], default='queued', max_length=12),
        ),
        migrations.RunPython(captured_mail_marked, migrations.RunPython.noop),
    ]
