"""A logging.handlers.HTTPHandler that signs every record for caddy-applog.

    handler = SignedHTTPHandler("127.0.0.1:8080", "/_applog/billing", os.environ["BILLING_LOG_SECRET"])
"""
import hashlib, hmac, logging.handlers, time, urllib.parse


class SignedHTTPHandler(logging.handlers.HTTPHandler):
    def __init__(self, host, url, secret, secure=False, context=None):
        super().__init__(host, url, method="POST", secure=secure, context=context)
        self.secret = secret.encode()

    def emit(self, record):
        try:
            self.format(record)  # sets record.message, and exc_text for tracebacks
            body = urllib.parse.urlencode(self.mapLogRecord(record)).encode()
            ts = str(int(time.time()))
            mac = hmac.new(self.secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
            conn = self.getConnection(self.host, self.secure)
            conn.request("POST", self.url, body, {"Content-Type": "application/x-www-form-urlencoded",
                                                  "X-Applog-Signature": f"t={ts},v1={mac}"})
            resp = conn.getresponse()
            if resp.status != 200:
                raise RuntimeError(f"caddy-applog refused the record: {resp.status} {resp.read().decode().strip()}")
        except Exception:
            self.handleError(record)
