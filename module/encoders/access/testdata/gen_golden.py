#!/usr/bin/python3
"""Regenerates golden.json: what real Apache httpd and real gunicorn log
for the same raw requests, so that the access encoder's tests compare
against the tools' own bytes rather than against our reading of them.

Not run by `go test` (it needs apache2-bin and gunicorn); run by hand:

    apt-get install apache2-bin gunicorn
    /usr/bin/python3 module/encoders/access/testdata/gen_golden.py

It starts gunicorn with a WSGI app that answers each case with the
response the case describes, and Apache as a reverse proxy in front of
a second gunicorn running the same app (the deployment Caddy replaces).
Each raw request is sent once through Apache (its access line is
recorded) and once straight to the first gunicorn (gunicorn's access
line is recorded). Each tool logs all the formats of one request in one
line, separated by \\x1e, so that they share one request time and one
duration; the first part is the timing (Apache `%{usec}t %D`, gunicorn
`%(t)s %(D)s`) from which the Go test rebuilds the entry's time and
duration. Both run with TZ=NST+3:30 (UTC-03:30) to exercise negative,
non-whole-hour offsets.
"""

import base64
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TZ = "NST+3:30"
SEP = "\x1e"

APACHE_FORMATS = {
    "common": r'%h %l %u %t "%r" %>s %b',
    "combined": r'%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"',
    "issue": r'%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i" %D %{X-Forwarded-For}i',
    "full": r'%a %{c}a %h %{c}h %l %u %t "%r" %>s %<s %s %b %B %m %U %q %H %V'
            r' "%{X-Forwarded-For}i" "%{Accept}i" "%{Content-Type}o" "%{X-Multi}o" "%{Set-Cookie}o"'
            r' "%{Location}o" "%{sid}C" "%{lang}C" %D %T %{ms}T %{us}T %{s}T'
            r' %{sec}t %{msec}t %{usec}t %{msec_frac}t %{usec_frac}t'
            r' [%{begin:%d/%b/%Y:%H:%M:%S %z}t] [%{%Y-%m-%dT%H:%M:%S}t] %{%a %A %B %e %j %y %I %p %%}t'
            r' %{%c|%C|%D|%F|%g|%G|%h|%k|%l|%r|%R|%s|%T|%u|%U|%V|%w|%W|%x|%X|%Y|%z}t'
            r' %400,404{Referer}i %!200{User-agent}i %%  \t\\ \q end',
}
APACHE_TIMING = r"%{usec}t %D"

GUNICORN_FORMATS = {
    "default": '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"',
    "issue": '%({X-Forwarded-For}i)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(L)s',
    "full": '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(m)s %(U)s %(q)s %(H)s %(b)s %(B)s'
            ' "%(f)s" "%(a)s" %(T)s %(D)s %(M)s %(L)s "%({x-forwarded-for}i)s"'
            ' "%({User-Agent}i)s" "%({accept}i)s" %({content-type}o)s %({X-Multi}o)s'
            ' %({set-cookie}o)s %({location}o)s %({missing}i)s %% end',
}
GUNICORN_TIMING = "%(t)s %(D)s"

STRFTIME = ("%a|%A|%b|%B|%c|%C|%d|%D|%e|%F|%g|%G|%h|%H|%I|%j|%k|%l|%m|%M|%n|%p|%r|%R|%s|%S|%t|"
            "%T|%u|%U|%V|%w|%W|%x|%X|%y|%Y|%z|%%")
STRFTIME_TIMES = [0, 951782400, 978307199, 1104537600, 1230768000, 1262304000, 1293840000,
                  1356998400, 1609459200, 1640995200, 1703980800, 1735603200, 1767225599,
                  1795308072, 4102444800]

UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def basic(user, password):
    return base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


# Each case: the raw request (without the X-Case header, added below),
# the response the backend gives, and the user Caddy's authentication
# would set (Apache's r->user; gunicorn parses Authorization itself).
CASES = [
    {"name": "basic",
     "raw": "GET /index.html?q=1&lang=en HTTP/1.1\r\nHost: example.com\r\nUser-Agent: " + UA +
            "\r\nReferer: https://example.com/start\r\nAccept: text/html\r\n\r\n",
     "status": 200, "headers": [["Content-Type", "text/html; charset=utf-8"]], "body": 1234},
    {"name": "escaping",
     "raw": "GET /search?q=%22x%22&r=\\ HTTP/1.1\r\nHost: example.com\r\n"
            "User-Agent: curl \"quoted\" \\back\\slash\\\ttab \u00e9 \u65e5\u672c\r\nReferer:\r\n\r\n",
     "status": 200, "headers": [["Content-Type", "text/plain"]], "body": 5},
    {"name": "post-created",
     "raw": "POST /items HTTP/1.1\r\nHost: example.com\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            "Content-Length: 11\r\n\r\nhello=world",
     "status": 201, "headers": [["Location", "/items/7"]], "body": 0},
    {"name": "head",
     "raw": "HEAD /page HTTP/1.1\r\nHost: example.com\r\nUser-Agent: " + UA + "\r\n\r\n",
     "status": 200, "headers": [["Content-Type", "text/html"]], "body": 50},
    {"name": "forwarded",
     "raw": "GET /api/v1/users/42 HTTP/1.1\r\nHost: api.example.com\r\nX-Forwarded-For: 203.0.113.7\r\n"
            "X-Forwarded-For: 198.51.100.2, 10.0.0.1\r\nCookie: theme=dark; sid=abc123; lang=fr\r\n"
            "Accept: application/json\r\nUser-Agent: python-requests/2.31.0\r\n\r\n",
     "status": 200, "headers": [["Content-Type", "application/json"], ["X-Multi", "a"], ["X-Multi", "b"],
                                ["Set-Cookie", "a=1; Path=/"], ["Set-Cookie", "b=2"]], "body": 27},
    {"name": "encoded-path",
     "raw": "GET /caf%C3%A9/a%20b%22c/?x=%41&y HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8.5.0\r\nReferer: /from\r\n\r\n",
     "status": 404, "headers": [["Content-Type", "text/plain; charset=utf-8"]], "body": 9},
    {"name": "auth",
     "raw": "GET /private/report HTTP/1.1\r\nHost: example.com\r\nAuthorization: Basic " +
            basic('al"ice', "s3cret") + "\r\nUser-Agent: curl/8.5.0\r\n\r\n",
     "user": 'al"ice', "status": 200, "headers": [["Content-Type", "text/csv"]], "body": 2},
    {"name": "http10",
     "raw": "GET /old HTTP/1.0\r\nHost: example.com\r\nUser-Agent: Lynx/2.8.9rel.1\r\n\r\n",
     "status": 200, "headers": [["Content-Type", "text/plain"]], "body": 3},
    {"name": "no-content",
     "raw": "DELETE /items/7 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8.5.0\r\n\r\n",
     "status": 204, "headers": [], "body": 0},
    {"name": "server-error",
     "raw": "GET /boom HTTP/1.1\r\nHost: example.com\r\nUser-Agent: x\r\nReferer: https://ref.example/\r\n\r\n",
     "status": 500, "headers": [["Content-Type", "text/plain"]], "body": 21},
    {"name": "not-modified",
     "raw": "GET /static/app.css HTTP/1.1\r\nHost: example.com\r\nIf-None-Match: \"v1\"\r\nUser-Agent: " + UA + "\r\n\r\n",
     "status": 304, "headers": [["ETag", "\"v1\""]], "body": 0},
    {"name": "dot-segments",
     "raw": "GET /static//css/./x/../%2e%2e/app.css?v=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8.5.0\r\n\r\n",
     "status": 200, "headers": [["Content-Type", "text/css"]], "body": 10},
    {"name": "absolute-uri",
     "raw": "GET http://example.com/abs/path?x=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8.5.0\r\n\r\n",
     "status": 200, "headers": [["Content-Type", "text/plain"]], "body": 4},
    {"name": "lowercase-headers",
     "raw": "GET / HTTP/1.1\r\nhost: Example.COM:8080\r\nuser-agent: lower\r\nreferer: https://a.example/b?c=d\r\n\r\n",
     "status": 200, "headers": [["content-type", "text/plain"]], "body": 1},
]

APP = r'''
import json, os
CASES = {c["name"]: c for c in json.load(open(os.environ["GOLDEN_CASES"]))}
REASONS = {200: "OK", 201: "Created", 204: "No Content", 304: "Not Modified", 404: "Not Found", 500: "Internal Server Error"}
def app(environ, start_response):
    c = CASES[environ["HTTP_X_CASE"]]
    environ["wsgi.input"].read()
    start_response("%d %s" % (c["status"], REASONS[c["status"]]), [tuple(h) for h in c["headers"]])
    return [b"x" * c["body"]]
'''


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port):
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit("port %d did not open" % port)


def send(port, raw):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(raw)
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        data += chunk
    s.close()
    return data


def with_case(c):
    # X-Case goes right after the request line; Connection: close lets
    # us read the response to the end.
    line, rest = c["raw"].split("\r\n", 1)
    raw = line + "\r\nX-Case: " + c["name"] + "\r\nConnection: close\r\n" + rest
    return raw.encode("utf-8")


def wait_lines(path, n):
    deadline = time.time() + 10
    while time.time() < deadline:
        if os.path.exists(path):
            with open(path, "rb") as f:
                lines = f.read().split(b"\n")
            if len(lines) > n:
                return lines[:n]
        time.sleep(0.05)
    sys.exit("%s: fewer than %d lines" % (path, n))


def main():
    tmp = tempfile.mkdtemp(prefix="access-golden-")
    os.chmod(tmp, 0o755)
    procs = []
    try:
        with open(os.path.join(tmp, "cases.json"), "w") as f:
            json.dump(CASES, f)
        with open(os.path.join(tmp, "goldenapp.py"), "w") as f:
            f.write(APP)
        os.environ["TZ"] = TZ
        time.tzset()
        env = dict(os.environ, TZ=TZ, GOLDEN_CASES=os.path.join(tmp, "cases.json"), LC_ALL="C.UTF-8")

        # gunicorn, logging every format of a request in one line.
        gport = free_port()
        glog = os.path.join(tmp, "gunicorn.log")
        gfmt = SEP.join([GUNICORN_TIMING] + list(GUNICORN_FORMATS.values()))
        procs.append(subprocess.Popen(
            ["/usr/bin/gunicorn", "--bind", "127.0.0.1:%d" % gport, "--workers", "1",
             "--access-logfile", glog, "--access-logformat", gfmt, "--chdir", tmp, "goldenapp:app"],
            env=env, stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "gunicorn.err"), "w")))
        wait_port(gport)
        # A second gunicorn, without an access log, behind Apache.
        bport = free_port()
        procs.append(subprocess.Popen(
            ["/usr/bin/gunicorn", "--bind", "127.0.0.1:%d" % bport, "--workers", "1", "--chdir", tmp, "goldenapp:app"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_port(bport)

        # Apache as a reverse proxy in front of it, with Basic auth on /private.
        aport = free_port()
        alog = os.path.join(tmp, "apache.log")
        digest = base64.b64encode(hashlib.sha1(b"s3cret").digest()).decode()
        with open(os.path.join(tmp, "htpasswd"), "w") as f:
            f.write('al"ice:{SHA}%s\n' % digest)
        afmt = SEP.join([APACHE_TIMING] + list(APACHE_FORMATS.values()))
        mods = ["mpm_event", "authn_core", "authz_core", "auth_basic", "authn_file", "authz_user",
                "proxy", "proxy_http"]
        conf = "\n".join(
            ["ServerRoot %s" % tmp, "ServerName canonical.example", "Listen 127.0.0.1:%d" % aport,
             "PidFile %s/httpd.pid" % tmp, "ErrorLog %s/apache.err" % tmp, "User nobody", "Group nogroup"] +
            ["LoadModule %s_module /usr/lib/apache2/modules/mod_%s.so" % (m, m) for m in mods] +
            ['LogFormat "%s" golden' % afmt.replace('"', '\\"'),
             "CustomLog %s golden" % alog,
             'ProxyPass "/" "http://127.0.0.1:%d/"' % bport,
             "<Location /private>", "AuthType Basic", "AuthName golden",
             "AuthUserFile %s/htpasswd" % tmp, "Require valid-user", "</Location>"]) + "\n"
        with open(os.path.join(tmp, "httpd.conf"), "w") as f:
            f.write(conf)
        subprocess.run(["/usr/sbin/apache2", "-f", os.path.join(tmp, "httpd.conf"), "-k", "start"], env=env, check=True)
        wait_port(aport)

        out = {
            "comment": "Generated by gen_golden.py from %s and gunicorn %s; do not edit." % (
                subprocess.run(["/usr/sbin/apache2", "-v"], capture_output=True, text=True).stdout.split("\n")[0].replace("Server version: ", ""),
                subprocess.run(["/usr/bin/python3", "-c", "import gunicorn; print(gunicorn.__version__)"],
                               capture_output=True, text=True).stdout.strip()),
            "tz_offset_seconds": -(3 * 3600 + 30 * 60),
            "apache_formats": APACHE_FORMATS,
            "gunicorn_formats": GUNICORN_FORMATS,
            "cases": [],
        }
        for i, c in enumerate(CASES):
            raw = with_case(c)
            send(aport, raw)
            aline = wait_lines(alog, i + 1)[i]
            send(gport, raw)
            gline = wait_lines(glog, i + 1)[i]
            # Apache writes bytes; gunicorn writes str through a UTF-8
            # stream. Keep both as bytes decoded as latin-1 so every byte
            # survives JSON.
            aparts = aline.decode("latin-1").split(SEP)
            gparts = gline.decode("latin-1").split(SEP)
            out["cases"].append({
                "name": c["name"],
                "raw": raw.decode("latin-1"),
                "user": c.get("user", ""),
                "status": c["status"],
                "headers": c["headers"],
                # Bytes of body: Apache (and Caddy) count what went on
                # the wire, none for HEAD; gunicorn counts what the app
                # returned, even for HEAD.
                "size": 0 if c["raw"].startswith("HEAD ") else c["body"],
                "gunicorn_size": c["body"],
                "apache_timing": aparts[0],
                "apache": dict(zip(APACHE_FORMATS, aparts[1:])),
                "gunicorn_timing": gparts[0],
                "gunicorn": dict(zip(GUNICORN_FORMATS, gparts[1:])),
            })
        # glibc's strftime (which httpd's %{format}t ends up calling) on
        # dates around year and week boundaries.
        out["strftime_format"] = STRFTIME
        out["strftime"] = [[t, time.strftime(STRFTIME, time.localtime(t))] for t in STRFTIME_TIMES]
        with open(os.path.join(HERE, "golden.json"), "w") as f:
            json.dump(out, f, indent=1, ensure_ascii=True)
            f.write("\n")
        print("wrote %s (%d cases)" % (os.path.join(HERE, "golden.json"), len(CASES)))
    finally:
        pid = os.path.join(tmp, "httpd.pid")
        if os.path.exists(pid):
            subprocess.run(["/usr/sbin/apache2", "-f", os.path.join(tmp, "httpd.conf"), "-k", "stop"])
            time.sleep(1)
        for p in procs:
            p.terminate()
            p.wait(10)
        for name in ("apache.err", "gunicorn.err"):
            path = os.path.join(tmp, name)
            if os.path.exists(path) and os.path.getsize(path):
                sys.stderr.write("--- %s\n%s" % (name, open(path).read()[-3000:]))
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
