"""A minimal Django project whose logs go to Caddy (caddy-applog).

Django's own loggers and the app's go through the standard library's
logging.handlers.HTTPHandler to Caddy's log_ingest endpoint, which files
them under applog.django.<logger name>.
"""
import os

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-secret")
DEBUG = False
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,shop.example.com").split(",")
ROOT_URLCONF = "mysite.urls"
INSTALLED_APPS = []
MIDDLEWARE = []
DATABASES = {}
USE_TZ = True
# Django sets the process's TZ to TIME_ZONE (default America/Chicago), so
# it also decides the zone of gunicorn's %(t)s in access lines. UTC, like
# the Caddy next to it.
TIME_ZONE = "UTC"

# Caddy's log intake, on a loopback-only listener (see the Caddyfile).
APPLOG_HOST = os.environ.get("APPLOG_HOST", "127.0.0.1:8081")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {
        "caddy": {
            "class": "logging.handlers.HTTPHandler",
            "host": APPLOG_HOST,
            "url": "/_applog/django",
            "method": "POST",
        },
    },
    "root": {"handlers": ["caddy"], "level": "INFO"},
    "loggers": {
        # Requests that fail (404 as WARNING, 500 as ERROR with the
        # exception) are logged by django.request.
        "django": {"handlers": ["caddy"], "level": "INFO", "propagate": False},
    },
}
