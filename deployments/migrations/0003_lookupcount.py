"""Lookup counts move to deployments, beside the Deployment tokens they count. Their table
keeps its name, envmanager_lookupcount: no row is copied."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('deployments', '0002_metadata_db_guard'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            # The table is there already: only Django's picture of the models changes.
            state_operations=[
                migrations.CreateModel(
                    name='LookupCount',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('object_type', models.CharField(max_length=24)),
                        ('object_key', models.CharField(max_length=255)),
                        ('found', models.BooleanField(default=True)),
                        ('count', models.BigIntegerField(default=0)),
                        ('last_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('token', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='lookup_counts', to='deployments.deploymenttoken')),
                    ],
                    options={
                        'db_table': 'envmanager_lookupcount',
                        'constraints': [models.UniqueConstraint(fields=('token', 'object_type', 'object_key', 'found'), name='lookup_count_unique')],
                    },
                ),
            ],
        ),
    ]
