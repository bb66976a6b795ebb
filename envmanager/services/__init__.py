"""Services that write: one module per part of the domain, all importable from here."""

from envmanager.services.encryption_keys import encryption_keys_rotate
from envmanager.services.environment_objects import (
    auto_link_exclude,
    auto_link_new_deployment,
    environment_object_create,
    environment_object_delete,
    environment_object_update,
    link_create,
    link_delete,
    link_set_overrides,
    object_etag,
)
from envmanager.services.links_sync import (
    WantedLink,
    environment_object_create_with_links,
    environment_object_set_links,
    environment_object_update_with_links,
)
from envmanager.services.promotion import environment_object_promote

__all__ = [
    "WantedLink",
    "environment_object_create_with_links",
    "environment_object_set_links",
    "environment_object_update_with_links",
    "auto_link_exclude",
    "auto_link_new_deployment",
    "encryption_keys_rotate",
    "environment_object_create",
    "environment_object_delete",
    "environment_object_promote",
    "environment_object_update",
    "object_etag",
    "link_create",
    "link_delete",
    "link_set_overrides",
]
