"""Send a few records to caddy-applog with Python's logging.handlers.DatagramHandler.

    python3 examples/python/datagram_handler.py [host:port]   (or APPLOG_DATAGRAM; default 127.0.0.1:9021)

They land in logs/pydatagram.log of examples/Caddyfile (python_socket
receiver, UDP). Each record is one pickled datagram, as SocketHandler
sends it. UDP has no answer: the handler cannot tell whether anything
received the records, so this script exits 1 only when sending itself
fails (an address that does not resolve, a record too large for a
datagram). Use SocketHandler where losing records matters.
"""
import logging
import logging.handlers
import os
import sys

ADDRESS = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("APPLOG_DATAGRAM", "127.0.0.1:9021")


class CountingDatagramHandler(logging.handlers.DatagramHandler):
    failures = 0

    def handleError(self, record):
        CountingDatagramHandler.failures += 1
        super().handleError(record)  # prints the error on stderr


host, port = ADDRESS.rsplit(":", 1)
handler = CountingDatagramHandler(host, int(port))
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

sys.exit(1 if CountingDatagramHandler.failures else 0)
