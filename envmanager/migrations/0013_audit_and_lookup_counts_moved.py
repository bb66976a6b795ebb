"""The audit trail and the lookup counts leave envmanager's models (accounts 0003, deployments
0003 hold them now, on the same tables): nothing in the database changes."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0003_auditevent'),
        ('deployments', '0003_lookupcount'),
        ('envmanager', '0012_migration_item_kept_unresolved'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            # The table is there already: only Django's picture of the models changes.
            state_operations=[
                migrations.RemoveField(
                    model_name='lookupcount',
                    name='token',
                ),
                migrations.DeleteModel(
                    name='AuditEvent',
                ),
                migrations.DeleteModel(
                    name='LookupCount',
                ),
            ],
        ),
    ]
