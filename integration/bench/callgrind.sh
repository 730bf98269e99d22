#!/usr/bin/env bash
# Counts the instructions Caddy spends per syslog message and per
# single-record post (log_ingest against a plain respond, over keep-alive
# and new connections) under valgrind's callgrind, with GOMAXPROCS=1.
# Timings on a shared machine move by more than the changes they are
# asked about; instruction counts repeat to within 1-2%, so this is what
# README's callgrind figures come from. Needs valgrind (apt-get install
# valgrind) and python3; not part of `go test ./...`.
#
#   integration/bench/callgrind.sh [messages] [posts]   (defaults 100000 3000)
set -euo pipefail

msgs=${1:-100000}
posts=${2:-3000}
command -v valgrind >/dev/null || { echo "callgrind.sh: valgrind not found (apt-get install valgrind)" >&2; exit 1; }
command -v callgrind_control >/dev/null || { echo "callgrind.sh: callgrind_control not found" >&2; exit 1; }
command -v python3 >/dev/null || { echo "callgrind.sh: python3 not found" >&2; exit 1; }

repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'kill "$vg" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
(cd "$repo" && go build -o "$work/caddy" ./cmd/caddy && go build -o "$work/loadgen" ./integration/bench/loadgen)

read -r admin http syslog < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(3)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')

cat > "$work/Caddyfile" <<EOF
{
	admin 127.0.0.1:$admin
	applog {
		syslog tcp/127.0.0.1:$syslog
		facility benchapp
		facility bench
		# the load's fixed timestamps: no arrival-time field
		max_clock_skew 87600h
	}
	log bench {
		include applog.benchapp applog.bench
		output rotate $work/out.log {
			max_size 1000GiB
			compress none
			flush batch
		}
		format json
	}
}

http://127.0.0.1:$http {
	bind 127.0.0.1
	handle /form {
		log_ingest bench
	}
	handle /plain {
		respond \`{"accepted":1,"filtered":0,"truncated":0}\` 200
	}
}
EOF

# The record Python's HTTPHandler posts (integration/bench/internal/load
# sends the same one), n times, on one connection or a new one each.
cat > "$work/post.py" <<'EOF'
import http.client, sys
port, path, n, keep = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4] == "keep"
body = ("name=shop.views&msg=user+%25s+logged+in+from+%25s+seq%3D%25d&args=%28%27alice%27%2C+%2710.0.0.7%27%2C+7%29"
        "&levelname=INFO&levelno=20&pathname=%2Fsrv%2Fshop%2Fviews.py&filename=views.py&module=views&exc_info=None"
        "&exc_text=None&stack_info=None&lineno=42&funcName=login&created=1796166959.4301264&msecs=430.0"
        "&relativeCreated=5012.345678329468&thread=140234234234112&threadName=MainThread&processName=MainProcess"
        "&process=4242&taskName=None")
c = None
for i in range(n):
    if c is None or not keep:
        c = http.client.HTTPConnection("127.0.0.1", port)
    c.request("POST", path, body, {"Content-Type": "application/x-www-form-urlencoded"})
    r = c.getresponse(); r.read()
    if r.status != 200:
        sys.exit("%s: status %d" % (path, r.status))
    if not keep:
        c.close()
EOF

cd "$work"
GOMAXPROCS=1 GODEBUG=asyncpreemptoff=1 valgrind --tool=callgrind --callgrind-out-file="$work/cg.%p" \
	"$work/caddy" run --config Caddyfile > "$work/valgrind.log" 2>&1 &
vg=$!
for _ in $(seq 240); do
	curl -s -o /dev/null "http://127.0.0.1:$admin/config/" && break
	kill -0 "$vg" 2>/dev/null || { cat "$work/valgrind.log" >&2; exit 1; }
	sleep 0.5
done

lines() { [ -f out.log ] && wc -l < out.log || echo 0; }
wait_lines() { # until out.log has $1 lines, at most 10 minutes
	for _ in $(seq 3000); do [ "$(lines)" -ge "$1" ] && return; sleep 0.2; done
	echo "callgrind.sh: out.log stopped at $(lines) lines, want $1" >&2; exit 1
}
# measure N CMD...: runs CMD between zeroing and dumping the counters
# and prints the instructions per unit (N units).
measure() {
	local n=$1; shift
	callgrind_control -z "$vg" > /dev/null 2>&1
	"$@"
	callgrind_control -d "$vg" > /dev/null 2>&1
	local f; f=$(ls -t "$work"/cg.*.* | head -1)
	awk -v n="$n" '/^(summary|totals):/ { printf "%.0f\n", $2 / n; exit }' "$f"
}

# send_syslog N: N messages over 4 connections, waited for in the file.
send_syslog() {
	local before; before=$(lines)
	"$work/loadgen" syslog -addr "127.0.0.1:$syslog" -n "$1" -conns 4 > /dev/null
	wait_lines $((before + $1))
}

send_syslog 20000 # warm-up
sys=$(measure "$msgs" send_syslog "$msgs")
echo "syslog over TCP → rotate (flush batch): $sys instructions per message ($msgs messages)"

echo
echo "| connections | log_ingest instructions/post | respond instructions/post | log_ingest / respond |"
echo "|---|--:|--:|--:|"
for mode in keep new; do
	python3 post.py "$http" /form 300 "$mode"
	python3 post.py "$http" /plain 300 "$mode"
	form=$(measure "$posts" python3 post.py "$http" /form "$posts" "$mode")
	plain=$(measure "$posts" python3 post.py "$http" /plain "$posts" "$mode")
	label=keep-alive; [ "$mode" = new ] && label="new connection per post"
	awk -v l="$label" -v f="$form" -v p="$plain" 'BEGIN { printf "| %s | %d | %d | %.2f |\n", l, f, p, f / p }'
done
curl -s -X POST "http://127.0.0.1:$admin/stop" > /dev/null || true
wait "$vg" 2>/dev/null || true
