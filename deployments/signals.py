"""What a Deployment tells the apps above it, which deployments must not import.

`deployment_created` is sent inside `deployment_create`'s transaction, after the row is saved,
with `deployment=`; a receiver that raises rolls the whole creation back (it is sent with
`send`, not `send_robust`). envmanager connects its auto-links to it (EnvmanagerConfig.ready).
"""

from django.dispatch import Signal

deployment_created = Signal()
