"""What a Deployment tells the apps above it, which deployments must not import.

`deployment_created` is sent inside `deployment_create`'s transaction, after the row is saved,
with `deployment=`; a receiver that raises rolls the whole creation back (it is sent with
`send`, not `send_robust`). envmanager connects its auto-links to it (EnvmanagerConfig.ready).

`deployment_deleting` is sent inside `deployment_delete`'s transaction, with the Deployment's
row locked and before it is deleted, with `deployment=`; a receiver refuses the deletion by
raising (envmanager refuses while a migration run is active) and may return a dict of counts of
what goes with the Deployment, which the audit row and the answer carry. `deployment_deleted`
is sent after that transaction commits, with `deployment_id=` (envmanager forgets what it
holds in memory for it).
"""

from django.dispatch import Signal

deployment_created = Signal()
deployment_deleting = Signal()
deployment_deleted = Signal()
