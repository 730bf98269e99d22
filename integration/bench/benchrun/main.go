// Command benchrun is the benchmark suite of caddy-applog: it measures,
// on this machine and in one run, side by side,
//
//  1. syslog over TCP (octet-counted RFC 5424) into a file: Caddy with
//     the applog app's syslog receiver, rsyslog (imtcp → omfile) and
//     syslog-ng (syslog() → file()), with the same messages and
//     connections, every message verified in each file;
//  2. NDJSON batches posted to log_ingest, written by the rotate writer;
//  3. single-record form posts as Python's logging.handlers.HTTPHandler
//     sends them, to log_ingest and to a plain respond on the same Caddy;
//  4. the Go benchmarks of the rotate writer against Caddy's file writer
//     and of the access encoder against Caddy's json encoder;
//  5. routing (routing.go): one facility with 1 log block against 1 + 40
//     unrelated ones, and 40 facilities through one path template against
//     40 log blocks;
//  6. access logs on five sites, a log block each, against none, with
//     Caddy as shipped and with its logging core patched (access.go);
//  7. forwarding (forward.go, only when -parts names it): the otlp, tls
//     and kafka writers, spooled and in memory, against each other and
//     against their peers (an OpenTelemetry Collector, rsyslog on TLS, a
//     kfake cluster) fed the same payloads by a plain client;
//
// and prints a Markdown table of the results and their ratios. Run it
// through integration/bench/run.sh, which builds Caddy and this program:
//
//	integration/bench/run.sh            # the full suite, about 10 minutes
//	integration/bench/run.sh -quick     # tiny counts, a smoke test
//	integration/bench/run.sh -h         # every option
//
// A daemon that loses, repeats or mangles a message fails the run: its
// row says why instead of showing a number, and the exit status is 1.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/caddy-applog/caddy-applog/internal/testtool"
)

type options struct {
	// refEntry is caddy-applog's line for syslog message 0, which the
	// daemons' "entry" format must reproduce.
	refEntry                     []byte
	keep                         bool // keep each syslog run's folder
	caddy, repo, work, out       string
	compareCaddy                 string
	rsyslogd, syslogNGRoot       string
	parts                        map[string]bool
	syslogMsgs, syslogConns      int
	syslogSize, syslogRounds     int
	caddyOutputs                 []string
	httpFlush                    string
	formFlushes                  []string
	daemonFormats                []string
	ndjsonRecords, ndjsonBatch   int
	ndjsonConc                   int
	formConc, formRounds         int
	formPhase, formWarmup        time.Duration
	formModes                    []string
	goBenchTime                  string
	pprofDir                     string
	pprofSeconds                 int
	stall, syslogTimeout         time.Duration
	httpTimeout, timeout         time.Duration
	caddyVersion, rsyslogVersion string
	syslogNGVersion              string
}

func main() {
	o := &options{}
	var parts, outputs, modes, formats, formFlushes string
	var quick bool
	flag.StringVar(&o.caddy, "caddy", "", "the Caddy binary, built from this repository (required)")
	flag.StringVar(&o.compareCaddy, "compare-caddy", "", "another Caddy build to A/B against in the syslog part (rows \"caddy-applog B\")")
	flag.StringVar(&o.repo, "repo", ".", "the repository, for the Go benchmarks")
	flag.StringVar(&o.work, "work", "", "scratch folder for the daemons' files (default: a new temporary folder)")
	flag.StringVar(&o.out, "out", "", "also write the Markdown report to this file")
	flag.StringVar(&o.rsyslogd, "rsyslogd", "rsyslogd", "rsyslogd binary")
	flag.StringVar(&o.syslogNGRoot, "syslog-ng-root", testtool.SyslogNGRoot(), "an unpacked syslog-ng-core package (empty: syslog-ng on PATH)")
	flag.StringVar(&parts, "parts", "syslog,ndjson,forms,gobench,routing,access", "the parts to run; forward (part 7) runs only when named")
	flag.IntVar(&o.syslogMsgs, "syslog-msgs", 1_000_000, "syslog messages per daemon and round")
	flag.IntVar(&o.syslogConns, "syslog-conns", 4, "TCP connections the syslog messages are spread over")
	flag.IntVar(&o.syslogSize, "syslog-size", 200, "bytes per syslog message (RFC 5424, without the octet count)")
	flag.IntVar(&o.syslogRounds, "syslog-rounds", 5, "rounds of the syslog part; each row is the median")
	flag.StringVar(&outputs, "caddy-outputs", "file,rotate-always,rotate-batch", "Caddy writers in the syslog part, each with its flush mode named whatever rotate's default: file, rotate-always (rotate with flush always: a write per entry, as Caddy's file writer), rotate-batch (rotate with flush batch, which writes what has gathered in one write, as rsyslog's omfile and syslog-ng's file() do), rotate-flush (rotate with flush 1s: its time includes up to 1s of waiting for the last flush)")
	flag.StringVar(&formats, "daemon-formats", "default,json,entry", "output formats of rsyslog and syslog-ng in the syslog part: default (their own line formats), json (a JSON object per line with the header fields and the message), entry (the JSON entry caddy-applog writes, with every one of its fields)")
	flag.StringVar(&o.httpFlush, "http-flush", "batch", "flush mode of the rotate writer in the NDJSON part: batch, always, or an interval (100ms)")
	flag.StringVar(&formFlushes, "form-flush", "batch,1s", "flush modes of the rotate writer to run the single-record posts with, each in its own rows: batch (every record written within microseconds), always, or an interval (1s: the writes amortized, so the rows measure log_ingest itself)")
	flag.IntVar(&o.ndjsonRecords, "ndjson-records", 1_000_000, "NDJSON records to post")
	flag.IntVar(&o.ndjsonBatch, "ndjson-batch", 100, "records per NDJSON batch")
	flag.IntVar(&o.ndjsonConc, "ndjson-conc", 4, "concurrent NDJSON posters")
	flag.IntVar(&o.formConc, "form-conc", 8, "concurrent single-record posters")
	flag.DurationVar(&o.formPhase, "form-phase", 3*time.Second, "length of one phase of single-record posts")
	flag.IntVar(&o.formRounds, "form-rounds", 8, "phases per route (alternating log_ingest and respond); each round's pair gives one ratio")
	flag.DurationVar(&o.formWarmup, "form-warmup", time.Second, "warm-up per route before the phases")
	flag.StringVar(&modes, "form-modes", "newconn,keepalive", "connection modes of single-record posts: newconn (as HTTPHandler), keepalive")
	flag.StringVar(&o.goBenchTime, "gobench-time", "1s", "-benchtime of the Go benchmarks")
	flag.StringVar(&o.pprofDir, "pprof", "", "save a CPU profile of Caddy under the syslog load in this folder")
	flag.IntVar(&o.pprofSeconds, "pprof-seconds", 5, "length of that profile")
	flag.DurationVar(&o.stall, "stall", 20*time.Second, "fail a syslog run when its file does not grow for this long")
	flag.DurationVar(&o.syslogTimeout, "syslog-timeout", 5*time.Minute, "limit of one syslog run")
	flag.DurationVar(&o.httpTimeout, "http-timeout", 5*time.Minute, "limit of one HTTP part")
	flag.DurationVar(&o.timeout, "timeout", 30*time.Minute, "limit of the whole suite")
	flag.BoolVar(&o.keep, "keep", false, "keep each syslog run's folder under -work (its config and output file), to look at what a daemon wrote")
	flag.BoolVar(&quick, "quick", false, "tiny counts, for a smoke test (explicit flags still apply)")
	flag.Parse()
	if quick {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for name, v := range map[string]string{
			"syslog-msgs": "20000", "syslog-rounds": "1", "ndjson-records": "20000", "form-phase": "300ms",
			"form-rounds": "2", "form-warmup": "100ms", "gobench-time": "2000x", "stall": "10s",
			"routing-msgs": "20000", "routing-rounds": "1",
			"access-phase": "300ms", "access-rounds": "2", "access-warmup": "100ms",
			"forward-msgs": "5000", "forward-rounds": "1",
		} {
			if !set[name] {
				_ = flag.Set(name, v)
			}
		}
	}
	if o.caddy == "" {
		fmt.Fprintln(os.Stderr, "benchrun: -caddy is required (integration/bench/run.sh builds it)")
		os.Exit(2)
	}
	o.parts = set(parts)
	o.caddyOutputs = strings.Split(outputs, ",")
	o.formModes = strings.Split(modes, ",")
	o.daemonFormats = strings.Split(formats, ",")
	for _, f := range o.daemonFormats {
		if f != "default" && f != "json" && f != "entry" {
			fatalf("-daemon-formats: unknown format %q", f)
		}
	}
	for _, w := range o.caddyOutputs {
		if !slices.Contains([]string{"file", "rotate-always", "rotate-batch", "rotate-flush"}, w) {
			fatalf("-caddy-outputs: unknown writer %q", w)
		}
	}
	o.formFlushes = strings.Split(formFlushes, ",")
	for _, f := range append([]string{o.httpFlush}, o.formFlushes...) {
		if _, err := time.ParseDuration(f); err != nil && f != "batch" && f != "always" {
			fatalf("-http-flush, -form-flush: want batch, always or an interval such as 100ms, got %q", f)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sig
		logf("%s: stopping", s)
		cancel()
		<-sig
		killAll()
		os.Exit(130)
	}()
	os.Exit(o.run(ctx))
}

func (o *options) run(ctx context.Context) int {
	defer killAll()
	if o.work == "" {
		dir, err := os.MkdirTemp("", "applog-bench-")
		if err != nil {
			fatalf("%v", err)
		}
		defer os.RemoveAll(dir)
		o.work = dir
	}
	var err error
	if o.caddy, err = filepath.Abs(o.caddy); err != nil {
		fatalf("%v", err)
	}
	if o.compareCaddy != "" {
		if o.compareCaddy, err = filepath.Abs(o.compareCaddy); err != nil {
			fatalf("%v", err)
		}
	}
	if o.pprofDir != "" {
		if err := os.MkdirAll(o.pprofDir, 0o755); err != nil {
			fatalf("%v", err)
		}
		if o.pprofDir, err = filepath.Abs(o.pprofDir); err != nil {
			fatalf("%v", err)
		}
	}
	rep := &report{opts: o, date: time.Now(), machine: machine()}
	logf("%s", rep.machine)
	o.caddyVersion = field(versionOf(nil, o.caddy, "version"), 0) // "v2.11.9 h1:..."

	if o.parts["syslog"] {
		rsyslogd, err := testtool.Find(o.rsyslogd)
		if err != nil {
			fatalf("rsyslogd not found (%v): install rsyslog, or run without the syslog part (-parts ndjson,forms,gobench,routing)", err)
		}
		o.rsyslogd = rsyslogd
		ng, err := findSyslogNG(o.syslogNGRoot)
		if err != nil {
			fatalf("%v; or run without the syslog part (-parts ndjson,forms,gobench,routing)", err)
		}
		o.rsyslogVersion = field(versionOf(nil, o.rsyslogd, "-v"), 1)                            // "rsyslogd  8.2302.0 (aka 2023.02) compiled with:"
		o.syslogNGVersion = strings.Trim(field(versionOf(ng.Env, ng.Bin, "--version"), 2), "()") // "syslog-ng 3 (3.38.1)"
		targets := o.syslogTargets(ng)
		runs := make([][]syslogRow, len(targets))
		for r := range o.syslogRounds {
			for i, t := range targets {
				if ctx.Err() != nil {
					break
				}
				logf("syslog round %d/%d: %s", r+1, o.syslogRounds, t.name)
				runs[i] = append(runs[i], o.runSyslog(ctx, t))
			}
		}
		for _, rs := range runs {
			rep.syslog = append(rep.syslog, medianSyslog(rs))
		}
	}
	if o.parts["ndjson"] && ctx.Err() == nil {
		row := o.runNDJSON(ctx)
		rep.ndjson = &row
	}
	if o.parts["forms"] {
		for _, flush := range o.formFlushes {
			for _, m := range o.formModes {
				if ctx.Err() != nil {
					break
				}
				rep.forms = append(rep.forms, o.runForms(ctx, flush, m == "keepalive"))
			}
		}
	}
	if o.parts["gobench"] && ctx.Err() == nil {
		rep.gobench = o.runGoBenches(ctx)
	}
	if o.parts["routing"] && ctx.Err() == nil {
		rep.routing = o.runRouting(ctx)
	}
	if o.parts["access"] && ctx.Err() == nil {
		rep.access = o.runAccess(ctx)
	}
	if o.parts["forward"] && ctx.Err() == nil {
		rep.forward = o.runForward(ctx)
	}

	text := rep.markdown()
	fmt.Print(text)
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(text), 0o644); err != nil {
			logf("writing %s: %v", o.out, err)
			return 1
		}
	}
	if ctx.Err() != nil {
		logf("stopped: %v", ctx.Err())
		return 1
	}
	if rep.failed() {
		return 1
	}
	return 0
}

// medianSyslog is the median of a daemon's rounds; any failed round
// fails the daemon.
func medianSyslog(rs []syslogRow) syslogRow {
	out := rs[0]
	for _, r := range rs {
		if r.Err != nil {
			return r
		}
	}
	med := func(f func(syslogRow) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		return median(v)
	}
	out.Rate = med(func(r syslogRow) float64 { return r.Rate })
	out.CPU = time.Duration(med(func(r syslogRow) float64 { return float64(r.CPU) }))
	out.OutBytes = med(func(r syslogRow) float64 { return r.OutBytes })
	for _, r := range rs {
		out.PeakRSS = max(out.PeakRSS, r.PeakRSS)
		out.Rates = append(out.Rates, r.Rate)
	}
	return out
}

// median is the middle of v (the mean of the two middle values for an
// even count); v is sorted in place.
func median(v []float64) float64 {
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// machine describes what the numbers were measured on.
func machine() string {
	cpu := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	loadavg := "?"
	if data, err := os.ReadFile("/proc/loadavg"); err == nil {
		loadavg = strings.Join(strings.Fields(string(data))[:3], " ")
	}
	nproc := strings.TrimSpace(outputOf("nproc"))
	return fmt.Sprintf("nproc %s (%s), %s, load average at start %s", nproc, cpu, runtime.Version(), loadavg)
}

func outputOf(name string, args ...string) string {
	out, _ := exec.Command(name, args...).Output()
	return string(out)
}

func set(list string) map[string]bool {
	m := map[string]bool{}
	for _, s := range strings.Split(list, ",") {
		m[strings.TrimSpace(s)] = true
	}
	return m
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s benchrun: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func fatalf(format string, args ...any) {
	logf(format, args...)
	killAll()
	os.Exit(2)
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// field returns the i-th space-separated field of s, or "?".
func field(s string, i int) string {
	f := strings.Fields(s)
	if i < len(f) {
		return f[i]
	}
	return "?"
}
