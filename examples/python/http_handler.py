"""Send a few records to caddy-applog with Python's logging.handlers.HTTPHandler.

    python3 examples/python/http_handler.py [host:port]   (or APPLOG_HTTP; default 127.0.0.1:8080)

They land in logs/myapp.log of examples/Caddyfile (route /_applog/myapp).
The stock HTTPHandler posts each record as a form and ignores the answer;
CheckedHTTPHandler below also sends the traceback (exc_text) and turns a
refusal (any status but 200) into a logging error, so this script exits 1
when Caddy refused a record or could not be reached.
"""
import logging
import logging.handlers
import os
import sys

ADDRESS = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("APPLOG_HTTP", "127.0.0.1:8080")


class CheckedHTTPHandler(logging.handlers.HTTPHandler):
    failures = 0

    def mapLogRecord(self, record):
        self.format(record)  # renders record.message, and exc_text for a traceback
        return super().mapLogRecord(record)

    def getConnection(self, host, secure):
        conn = super().getConnection(host, secure)
        getresponse = conn.getresponse

        def checked():
            resp = getresponse()
            reason = resp.read().decode(errors="replace").strip()
            if resp.status != 200:
                raise RuntimeError(f"caddy-applog refused the record: {resp.status} {reason}")
            return resp

        conn.getresponse = checked
        return conn

    def handleError(self, record):
        CheckedHTTPHandler.failures += 1
        super().handleError(record)  # prints the error on stderr


handler = CheckedHTTPHandler(ADDRESS, "/_applog/myapp", method="POST")
log = logging.getLogger("shop.orders")
log.setLevel(logging.DEBUG)
log.addHandler(handler)

log.debug("cart %s has %d items", "c-7", 3)
log.info("order %d placed", 1042, extra={"order_id": 1042, "customer": "c-7"})
log.warning("stock low for %s: %d left", "sku-9", 2)
try:
    1 / 0
except ZeroDivisionError:
    log.exception("order %d: total failed", 1042)

sys.exit(1 if CheckedHTTPHandler.failures else 0)
