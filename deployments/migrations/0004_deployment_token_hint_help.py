"""One token base (accounts.models.Token): a Deployment token's hint gets the same help text."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('deployments', '0003_lookupcount'),
    ]

    operations = [
        migrations.AlterField(
            model_name='deploymenttoken',
            name='hint',
            field=models.CharField(help_text="The token's first characters, to tell it apart.", max_length=12),
        ),
    ]
