"""Send a few records to caddy-applog with Python's logging.handlers.SocketHandler.

    python3 examples/python/socket_handler.py [host:port]   (or APPLOG_SOCKET; default 127.0.0.1:9020)

They land in logs/pysocket.log of examples/Caddyfile (python_socket
receiver, TCP). SocketHandler pickles each record, message rendered and
traceback in exc_text, with every extra= field. It drops records silently
while it cannot connect; CheckedSocketHandler below reports that, so this
script exits 1 when Caddy could not be reached. (A record Caddy refuses
after reading it, such as one of a facility that needs a signature, is
only in Caddy's log: the protocol has no answer.)
"""
import logging
import logging.handlers
import os
import sys

ADDRESS = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("APPLOG_SOCKET", "127.0.0.1:9020")


class CheckedSocketHandler(logging.handlers.SocketHandler):
    failures = 0

    def send(self, s):
        super().send(s)
        if self.sock is None:  # not connected: SocketHandler dropped the record
            raise ConnectionError(f"no connection to {self.host}:{self.port}")

    def handleError(self, record):
        CheckedSocketHandler.failures += 1
        super().handleError(record)  # prints the error on stderr


host, port = ADDRESS.rsplit(":", 1)
handler = CheckedSocketHandler(host, int(port))
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
handler.close()

sys.exit(1 if CheckedSocketHandler.failures else 0)
