"""A tiny WSGI app for gunicorn's --log-syslog example (see gunicorn.conf.py).

/ answers "hello"; /boom raises, so gunicorn's error log carries a
traceback.
"""


def app(environ, start_response):
    if environ.get("PATH_INFO") == "/boom":
        raise RuntimeError("boom requested")
    body = b"hello\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
