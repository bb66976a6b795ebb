"""The audit trail moves to accounts (every app writes to it, and every app stands on accounts).
Its table keeps its name, envmanager_auditevent: no row is copied."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0002_metadata_db_guard'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            # The table is there already: only Django's picture of the models changes.
            state_operations=[
                migrations.CreateModel(
                    name='AuditEvent',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('created_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                        ('actor_label', models.CharField(max_length=255)),
                        ('action', models.CharField(db_index=True, max_length=64)),
                        ('object_type', models.CharField(blank=True, max_length=24)),
                        ('object_key', models.CharField(blank=True, max_length=255)),
                        ('environment_object_id', models.BigIntegerField(blank=True, null=True)),
                        ('deployment_id', models.BigIntegerField(blank=True, null=True)),
                        ('fields', models.JSONField(blank=True, default=list)),
                        ('detail', models.JSONField(blank=True, default=dict)),
                        ('actor', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('workspace', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='audit_events', to='accounts.workspace')),
                    ],
                    options={
                        'db_table': 'envmanager_auditevent',
                        'ordering': ['-created_at', '-id'],
                        'indexes': [models.Index(fields=['workspace', '-created_at'], name='envmanager__workspa_8a3ffc_idx')],
                    },
                ),
            ],
        ),
    ]
