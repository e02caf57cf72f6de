import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("outbox", "0010_suppression"),
    ]

    operations = [
        migrations.CreateModel(
            name="BulkHold",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("held_at", models.DateTimeField()),
                ("is_cancelled", models.BooleanField(default=False)),
                (
                    "template",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="hold",
                        to="outbox.bulktemplate",
                    ),
                ),
            ],
        ),
    ]
