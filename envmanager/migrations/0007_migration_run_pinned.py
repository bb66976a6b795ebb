from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def pin_earlier_runs(apps, schema_editor):
    """Runs made before pinning read the database their Deployment's URL reached then: the
    best record of it is what that URL reaches now."""
    MigrationRun = apps.get_model("envmanager", "MigrationRun")
    Deployment = apps.get_model("deployments", "Deployment")
    fingerprint = Deployment.objects.filter(pk=OuterRef("deployment_id")).values(
        "metadata_db_fingerprint"
    )[:1]
    for run in MigrationRun.objects.annotate(pinned=Subquery(fingerprint)).filter(
        pinned__isnull=False
    ):
        MigrationRun.objects.filter(pk=run.pk).update(metadata_db_fingerprint=run.pinned)


class Migration(migrations.Migration):
    dependencies = [
        ("envmanager", "0006_promote_merge_versions"),
        ("deployments", "0002_metadata_db_guard"),
    ]

    operations = [
        migrations.AddField(
            model_name="migrationrun",
            name="metadata_db_fingerprint",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.RunPython(pin_earlier_runs, migrations.RunPython.noop),
    ]
