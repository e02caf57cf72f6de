# Saved email templates moved to the Contact Email app (postroom.compose), which now owns the
# same table.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('contacts', '0002_emailtemplate'),
        ('compose', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name='EmailTemplate')],
            database_operations=[],
        ),
    ]
