from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("company", "0003_send_as_policy"),
    ]

    operations = [
        # Off for every existing install too: a password that used to go out in plain text
        # now waits for an administrator to say it may (issue 7).
        migrations.AddField(
            model_name="company",
            name="smtp_allow_plaintext_auth",
            field=models.BooleanField(
                default=False, verbose_name="allow the password over an unencrypted connection"
            ),
        ),
    ]
