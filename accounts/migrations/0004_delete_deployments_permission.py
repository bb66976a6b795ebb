from django.db import migrations

PERMISSIONS = [
    ("view_env_objects", "workspace.envObjects.get"),
    ("use_env_objects", "workspace.envObjects.use"),
    ("create_env_objects", "workspace.envObjects.create"),
    ("update_env_objects", "workspace.envObjects.update"),
    ("delete_env_objects", "workspace.envObjects.delete"),
    ("create_deployments", "workspace.deployments.create"),
    ("set_metadata_db", "workspace.deployments.metadataDb.update"),
    ("delete_deployments", "workspace.deployments.delete"),
    ("migrate_from_airflow", "workspace.envObjects.migrate"),
    ("manage_members", "workspace.members.manage"),
    ("update_settings", "workspace.settings.update"),
    ("view_audit_log", "workspace.auditLogs.get"),
]


def grant_to_owners(apps, schema_editor):
    """Existing Workspaces' Owner groups get the new Owner-only permission (new Workspaces get
    it from ROLE_PERMISSIONS)."""
    Workspace = apps.get_model("accounts", "Workspace")
    if not Workspace.objects.exists():
        return
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    GroupObjectPermission = apps.get_model("guardian", "GroupObjectPermission")
    content_type, _ = ContentType.objects.get_or_create(app_label="accounts", model="workspace")
    permission, _ = Permission.objects.get_or_create(
        codename="delete_deployments",
        content_type=content_type,
        defaults={"name": "workspace.deployments.delete"},
    )
    for workspace in Workspace.objects.all():
        group = Group.objects.filter(name=f"workspace-{workspace.pk}-owner").first()
        if group is not None:
            GroupObjectPermission.objects.get_or_create(
                group=group,
                permission=permission,
                content_type=content_type,
                object_pk=str(workspace.pk),
            )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_auditevent"),
        ("guardian", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="workspace",
            options={"ordering": ["name", "id"], "permissions": PERMISSIONS},
        ),
        migrations.RunPython(grant_to_owners, migrations.RunPython.noop),
    ]
