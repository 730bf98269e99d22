#!/usr/bin/env python3
"""Django's command-line utility, for `check` and the like; in production
the project runs under gunicorn (see gunicorn.conf.py)."""
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
