"""Send a few records to caddy-applog with Python's logging.handlers.SysLogHandler.

    python3 examples/python/syslog_handler.py [tcp/host:port|udp/host:port]
    (or APPLOG_SYSLOG; default tcp/127.0.0.1:5514)

They land in logs/pysyslog.log of examples/Caddyfile (syslog receivers
with app pysyslog: TCP with framing nul, and UDP). SysLogHandler sends
<PRI> and the formatted text: the level becomes the severity, and the
text before ": " is the program name, here the logger's name, which
becomes the facility. Only text travels, so extra= fields reach Caddy
only if the format includes them; a traceback travels inside the message
(over TCP, NUL framing keeps its line breaks in one record). Over TCP the
handler reports a refused or broken connection and this script exits 1;
over UDP it cannot tell whether anything received the records.
"""
import logging
import logging.handlers
import os
import socket
import sys

ADDRESS = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("APPLOG_SYSLOG", "tcp/127.0.0.1:5514")


class CountingSysLogHandler(logging.handlers.SysLogHandler):
    failures = 0

    def handleError(self, record):
        CountingSysLogHandler.failures += 1
        super().handleError(record)  # prints the error on stderr


network, _, hostport = ADDRESS.partition("/")
host, port = hostport.rsplit(":", 1)
socktype = {"tcp": socket.SOCK_STREAM, "udp": socket.SOCK_DGRAM}[network]
try:
    handler = CountingSysLogHandler(address=(host, int(port)), socktype=socktype)
except OSError as err:  # over TCP, the handler connects at once
    sys.exit(f"syslog_handler.py: cannot connect to {ADDRESS}: {err}")
handler.setFormatter(logging.Formatter("%(name)s: %(message)s order_id=%(order_id)s",
                                       defaults={"order_id": "-"}))
log = logging.getLogger("shop.orders")
log.setLevel(logging.DEBUG)
log.addHandler(handler)

log.debug("cart %s has %d items", "c-7", 3)
log.info("order %d placed", 1042, extra={"order_id": 1042})
log.warning("stock low for %s: %d left", "sku-9", 2)
try:
    1 / 0
except ZeroDivisionError:
    log.exception("order %d: total failed", 1042)
handler.close()

sys.exit(1 if CountingSysLogHandler.failures else 0)
