#!/usr/bin/env bash
# The benchmark suite of caddy-applog: builds Caddy from this repository
# and integration/bench/benchrun, then runs every part (syslog over TCP
# against rsyslog and syslog-ng, NDJSON batches, HTTPHandler-style posts
# against a plain respond, the Go writer and encoder benchmarks, routing
# by log blocks and path templates, access logs on five sites with Caddy
# as shipped and with its logging core patched) and prints a Markdown
# table; on request, forwarding (the otlp, tls and kafka writers against
# each other and against an OpenTelemetry Collector, rsyslog and a kfake
# cluster fed directly, -parts forward: it builds the Collector of
# integration/otelcol). Options
# are benchrun's (run.sh -h lists them):
#
#   integration/bench/run.sh                  # full suite, about 10 minutes
#   integration/bench/run.sh -quick           # tiny counts (smoke test)
#   integration/bench/run.sh -out bench.md -pprof prof/
#   integration/bench/run.sh -parts forward   # forwarding only, a few minutes
#
# syslog-ng is found through APPLOG_SYSLOG_NG (an unpacked syslog-ng-core,
# as .ci/run prepares it), ~/.cache/caddy-applog/syslog-ng-core, or PATH.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/applog-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cd "$repo"
go build -o "$tmp/caddy" ./cmd/caddy
go build -o "$tmp/benchrun" ./integration/bench/benchrun
go build -o "$tmp/kfakepeer" ./integration/bench/kfakepeer
mkdir "$tmp/work"
# benchrun ends the daemons it started, on exit and on Ctrl-C.
"$tmp/benchrun" -caddy "$tmp/caddy" -forward-kfakepeer "$tmp/kfakepeer" -repo "$repo" -work "$tmp/work" "$@"
