from django.urls import path

from envmanager.api import lookup

urlpatterns = [
    path("lookup/connections/<path:conn_id>", lookup.connection, name="lookup-connection"),
    path("lookup/variables/<path:key>", lookup.variable, name="lookup-variable"),
    path("lookup/environment", lookup.environment, name="lookup-environment"),
]
