// Command loadgen sends the benchmark suite's loads to a server of your
// choice, for profiling or for trying a configuration by hand (benchrun
// runs the same code against the daemons it starts):
//
//	loadgen syslog -addr 127.0.0.1:5514 -n 1000000 -conns 4 -size 200
//	loadgen ndjson -url http://127.0.0.1:8080/_applog/bench -n 1000000 -batch 100 -conc 4
//	loadgen form   -url http://127.0.0.1:8080/_applog/bench -conc 8 -duration 10s [-keepalive]
//	loadgen get    -addr 127.0.0.1:8080 -hosts a.test:8080,b.test:8080 -conns 8 -duration 10s
//
// With -verify <file>, it then checks that the file holds each message's
// sequence number ("seq=N") exactly once (waiting at most -stall for it
// to stop growing); a missing or repeated message is exit status 1.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"time"

	"github.com/caddy-applog/caddy-applog/integration/bench/internal/load"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	mode := os.Args[1]
	fs := flag.NewFlagSet(mode, flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:5514", "syslog, get: the server's TCP address")
	hosts := fs.String("hosts", "", "get: Host headers to cycle through, comma-separated (default: -addr)")
	path := fs.String("path", "/", "get: the request path")
	url := fs.String("url", "", "ndjson, form: the log_ingest URL")
	n := fs.Int("n", 100_000, "syslog, ndjson: messages or records to send")
	conns := fs.Int("conns", 4, "syslog, get: TCP connections (keep-alive for get)")
	size := fs.Int("size", 200, "syslog: bytes per message")
	batch := fs.Int("batch", 100, "ndjson: records per request")
	conc := fs.Int("conc", 4, "ndjson, form: concurrent clients")
	duration := fs.Duration("duration", 10*time.Second, "form, get: how long to send")
	keepAlive := fs.Bool("keepalive", false, "form: reuse connections (HTTPHandler opens one per record)")
	verify := fs.String("verify", "", "check this output file for every sequence number")
	stall := fs.Duration("stall", 20*time.Second, "with -verify: give up when the file stops growing for this long")
	timeout := fs.Duration("timeout", 10*time.Minute, "limit of the whole run")
	_ = fs.Parse(os.Args[2:])

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()

	if mode == "get" && *verify != "" {
		fatalf("-verify checks sequence numbers, which get requests do not carry")
	}
	want := *n
	start := time.Now()
	switch mode {
	case "syslog":
		res, err := load.SendSyslog(ctx, load.SyslogSpec{Addr: *addr, Total: *n, Conns: *conns, Size: *size})
		if err != nil {
			fatalf("%v", err)
		}
		fmt.Printf("sent %d messages (%d bytes) in %s: %.0f msg/s\n", res.Sent, res.Bytes, res.Elapsed, float64(res.Sent)/res.Elapsed.Seconds())
	case "ndjson", "form":
		if *url == "" {
			fatalf("-url is required")
		}
		var res load.Result
		if mode == "ndjson" {
			res = load.PostBatches(ctx, load.NewClient(*conc, true), load.BatchSpec{URL: *url, Total: *n, Batch: *batch, Conc: *conc})
		} else {
			var seq atomic.Int64
			res = load.PostForms(ctx, load.NewClient(*conc, *keepAlive), load.FormSpec{URL: *url, Conc: *conc, Duration: *duration, Seq: &seq})
			want = int(seq.Load())
		}
		fmt.Printf("%d requests (%d records) in %s: %.0f requests/s, %.0f records/s, p50 %s, p99 %s, %d errors\n",
			res.Requests, res.Records, res.Elapsed.Round(time.Millisecond), float64(res.Requests)/res.Elapsed.Seconds(),
			float64(res.Records)/res.Elapsed.Seconds(), res.Latencies.Percentile(50), res.Latencies.Percentile(99), res.Errors)
		if res.Errors > 0 {
			fatalf("first error: %v", res.FirstErr)
		}
	case "get":
		hs := strings.Split(*hosts, ",")
		if *hosts == "" {
			hs = []string{*addr}
		}
		res := load.Get(ctx, load.GetSpec{Addr: *addr, Hosts: hs, Path: *path, Conns: *conns, Duration: *duration})
		fmt.Printf("%d requests in %s: %.0f requests/s, per host %v, %d errors\n", res.Requests, res.Elapsed.Round(time.Millisecond),
			float64(res.Requests)/res.Elapsed.Seconds(), res.PerHost, res.Errors)
		if res.Errors > 0 {
			fatalf("first error: %v", res.FirstErr)
		}
	default:
		usage()
	}
	if *verify != "" {
		v := load.NewVerifier(want)
		end, err := v.Follow(ctx, *verify, *stall)
		if err == nil {
			err = v.Settle(*verify, 300*time.Millisecond)
		}
		if err != nil {
			fatalf("%s: %v (first missing: %v)", *verify, err, v.Missing(5))
		}
		fmt.Printf("%s: all %d sequence numbers present once; last one %s after the start: %.0f/s end to end\n",
			*verify, want, end.Sub(start).Round(time.Millisecond), float64(want)/end.Sub(start).Seconds())
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: loadgen syslog|ndjson|form|get [flags]  (loadgen <mode> -h lists them)")
	os.Exit(2)
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "loadgen: "+format+"\n", args...)
	os.Exit(1)
}
