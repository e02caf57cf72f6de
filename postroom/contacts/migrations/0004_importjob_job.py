# Imports are checked and run by the worker as jobs (postroom.queue), no longer in threads of
# the web server: the heartbeat and the runner's name give way to the job, which holds both.

import django.db.models.deletion
from django.db import migrations, models


def fail_imports_left_running(apps, schema_editor):
    # Their threads ended with the server that ran the old version; nothing was imported.
    ImportJob = apps.get_model("contacts", "ImportJob")
    ImportJob.objects.filter(status__in=["checking", "importing"]).update(
        status="failed",
        error="The import was interrupted by an upgrade of Postroom. Nothing was imported. "
        "Start it again.",
    )


class Migration(migrations.Migration):

    dependencies = [
        ('contacts', '0003_emailtemplate_moved_to_compose'),
        ('queue', '0001_initial'),
    ]

    operations = [
        migrations.RunPython(fail_imports_left_running, migrations.RunPython.noop),
        migrations.RemoveField(model_name='importjob', name='heartbeat_at'),
        migrations.RemoveField(model_name='importjob', name='runner'),
        migrations.AddField(
            model_name='importjob',
            name='job',
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name='+',
                to='queue.job',
            ),
        ),
    ]
