# The audit log moved to its own app (postroom.audit), which now owns the same table.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('company', '0004_smtp_allow_plaintext_auth'),
        ('audit', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name='AuditEntry')],
            database_operations=[],
        ),
    ]
