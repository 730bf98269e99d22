"""gunicorn sends its own logs to caddy-applog over syslog (--log-syslog).

From this folder, with examples/Caddyfile running:

    /usr/bin/gunicorn --config gunicorn.conf.py

which is the same as

    gunicorn --bind 127.0.0.1:8001 --log-syslog --log-syslog-to udp://127.0.0.1:5515 \
        --log-syslog-prefix exampleapp gunicorn_app:app

gunicorn's SysLogHandler sends "<PRI>gunicorn.exampleapp.access: [pid] line"
(and .error) over UDP; the example's syslog receiver on udp/127.0.0.1:5515
files it as app "gunicorn", facility "exampleapp.access" or
"exampleapp.error", in logs/gunicorn.log. Over UDP gunicorn cannot tell
whether Caddy received anything.
"""
import os

wsgi_app = "gunicorn_app:app"
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8001")
workers = 1
syslog = True
syslog_addr = os.environ.get("APPLOG_SYSLOG_GUNICORN", "udp://127.0.0.1:5515")
syslog_prefix = "exampleapp"  # without it, the program name holds the app's module path
