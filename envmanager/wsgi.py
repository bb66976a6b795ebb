import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "envmanager.settings")
django_application = get_wsgi_application()

# One-key lookups by Airflow are answered before Django's request handling (see the class).
from envmanager.api.lookup import LookupFastPath  # noqa: E402

application = LookupFastPath(django_application)
