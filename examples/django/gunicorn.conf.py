"""gunicorn settings for mysite behind Caddy.

gunicorn's access and error logs go to Caddy's log intake, like Django's
(caddy-applog files them under applog.gunicorn.gunicorn.access and
applog.gunicorn.gunicorn.error). Run from this folder:

    gunicorn --config gunicorn.conf.py
"""
import logging
import os

wsgi_app = "mysite.wsgi:application"
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))

# Caddy is gunicorn's only peer, so %(h)s is Caddy. The client is in
# X-Real-IP, which Caddy sets to the address it resolved; X-Forwarded-For
# is the chain Caddy passed on. Combined Log Format first, so that the
# same parsers read both access logs. (Header atoms in lower case: they
# must match gunicorn's keys as they are when the record is rendered.)
access_log_format = (
    '%({x-real-ip}i)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'
    ' %(L)s %(h)s "%({x-forwarded-for}i)s"'
)

APPLOG_HOST = os.environ.get("APPLOG_HOST", "127.0.0.1:8081")


class RenderMessage(logging.Filter):
    """Render each record's message before HTTPHandler sends it.

    gunicorn formats access lines from a dict of atoms whose missing keys
    read as "-" (its SafeAtoms class). HTTPHandler sends only str() of that
    dict, a plain dict, so the line is rendered here, with gunicorn's own
    rules, and sent as the record's message.
    """

    def filter(self, record):
        record.message = record.getMessage()
        return True


logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"render": {"()": RenderMessage}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": "generic"},
        "caddy": {
            "class": "logging.handlers.HTTPHandler",
            "host": APPLOG_HOST,
            "url": "/_applog/gunicorn",
            "method": "POST",
            "filters": ["render"],
        },
    },
    "root": {"level": "WARNING", "handlers": ["console"]},
    "loggers": {
        "gunicorn.access": {"level": "INFO", "handlers": ["caddy"], "propagate": False},
        # Also on stderr, for whoever starts gunicorn by hand.
        "gunicorn.error": {"level": "INFO", "handlers": ["caddy", "console"], "propagate": False},
    },
}
