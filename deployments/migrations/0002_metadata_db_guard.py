from django.db import migrations, models


def fingerprint_saved_urls(apps, schema_editor):
    """Deployments saved before the guard get the fingerprint of what their URL reaches now,
    where the allowlist admits it; the first Deployment of a shared database keeps it. The
    others (and any URL not admitted) must be saved again before they are used."""
    from deployments.metadata_db_target import metadata_db_target
    from envmanager.kernel.errors import InvalidInput

    Deployment = apps.get_model("deployments", "Deployment")
    taken = set()
    for deployment in Deployment.objects.exclude(metadata_db_url="").order_by("pk"):
        try:
            fingerprint = metadata_db_target(deployment.metadata_db_url).fingerprint
        except InvalidInput:
            continue
        if fingerprint in taken:
            continue
        taken.add(fingerprint)
        Deployment.objects.filter(pk=deployment.pk).update(metadata_db_fingerprint=fingerprint)


class Migration(migrations.Migration):
    dependencies = [
        ("deployments", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="deployment",
            name="metadata_db_fingerprint",
            field=models.CharField(
                blank=True, editable=False, max_length=64, null=True, unique=True
            ),
        ),
        migrations.RunPython(fingerprint_saved_urls, migrations.RunPython.noop),
    ]
