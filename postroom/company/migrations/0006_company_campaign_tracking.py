from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("company", "0005_auditentry_moved_to_audit"),
    ]

    operations = [
        # Off for every install: tracking is the company's privacy decision (docs/campaigns.md).
        migrations.AddField(
            model_name="company",
            name="campaign_tracking",
            field=models.BooleanField(default=False, verbose_name="track campaign opens and clicks"),
        ),
    ]
