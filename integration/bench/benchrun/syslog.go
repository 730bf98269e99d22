package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/caddy-applog/caddy-applog/integration/bench/internal/load"
)

// syslogRow is one daemon's result in part 1.
type syslogRow struct {
	Name     string
	Version  string
	Rate     float64       // messages per second
	CPU      time.Duration // daemon CPU per million messages
	PeakRSS  int64
	OutBytes float64   // bytes written to the file per message
	Err      error     // a failed run has no numbers
	Rates    []float64 // of each round
}

// syslogTarget is a daemon that receives the syslog load.
type syslogTarget struct {
	name, version string
	// start runs the daemon listening on port and writing every message
	// to out; dir is its scratch folder.
	start func(ctx context.Context, dir, out string, port int) (*daemon, error)
	// profile, if set, is called when the load starts.
	profile func(ctx context.Context)
}

// caddyVariant is a Caddy binary under test: the one built from the
// repository, and, with -compare-caddy, another build to A/B against.
type caddyVariant struct{ bin, label string }

func (o *options) caddyVariants() []caddyVariant {
	vs := []caddyVariant{{o.caddy, "caddy-applog"}}
	if o.compareCaddy != "" {
		vs = append(vs, caddyVariant{o.compareCaddy, "caddy-applog B"})
	}
	return vs
}

func (o *options) syslogTargets(ng *syslogNG) []syslogTarget {
	var ts []syslogTarget
	for _, v := range o.caddyVariants() {
		ts = append(ts, o.caddyTargets(v)...)
	}
	for _, format := range o.daemonFormats {
		json := format == "json"
		suffix := ""
		if json {
			suffix = ", JSON lines"
		}
		ts = append(ts, syslogTarget{
			name: "rsyslog (imtcp → omfile" + suffix + ")", version: o.rsyslogVersion,
			start: func(ctx context.Context, dir, out string, port int) (*daemon, error) {
				return startRsyslog(ctx, o.rsyslogd, dir, out, port, json)
			},
		})
		ts = append(ts, syslogTarget{
			name: "syslog-ng (syslog() → file()" + suffix + ")", version: o.syslogNGVersion,
			start: func(ctx context.Context, dir, out string, port int) (*daemon, error) {
				return startSyslogNG(ctx, ng, dir, out, port, o.syslogConns, json)
			},
		})
	}
	return ts
}

// caddyTargets are Caddy's syslog receiver writing with each of
// -caddy-outputs.
func (o *options) caddyTargets(v caddyVariant) []syslogTarget {
	var ts []syslogTarget
	for _, output := range o.caddyOutputs {
		var w string
		switch output {
		case "file":
			w = "output file OUT {\n\t\t\troll_disabled\n\t\t}"
		case "rotate":
			w = "output rotate OUT {\n\t\t\tmax_size 1000GiB\n\t\t\tcompress none\n\t\t}"
		case "rotate-batch":
			w = "output rotate OUT {\n\t\t\tmax_size 1000GiB\n\t\t\tcompress none\n\t\t\tflush batch\n\t\t}"
		case "rotate-flush":
			w = "output rotate OUT {\n\t\t\tmax_size 1000GiB\n\t\t\tcompress none\n\t\t\tflush 1s\n\t\t}"
		}
		var adminPort int
		t := syslogTarget{name: v.label + " (" + output + ")", version: o.caddyVersion}
		t.start = func(ctx context.Context, dir, out string, port int) (*daemon, error) {
			var err error
			if adminPort, err = freePort(); err != nil {
				return nil, err
			}
			cfg := fmt.Sprintf(`{
	admin 127.0.0.1:%d
	applog {
		syslog tcp/127.0.0.1:%d
		facility benchapp
	}
	log bench {
		include applog.benchapp
		%s
		format json
	}
}
`, adminPort, port, replaceOut(w, out))
			return startCaddy(ctx, v.bin, t.name, dir, cfg, port)
		}
		if o.pprofDir != "" && output == o.caddyOutputs[0] && v.bin == o.caddy {
			t.profile = func(ctx context.Context) {
				path := filepath.Join(o.pprofDir, "caddy-syslog.cpu.pprof")
				url := fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/profile?seconds=%d", adminPort, o.pprofSeconds)
				if err := fetch(ctx, url, path); err != nil {
					logf("profile: %v", err)
					return
				}
				logf("CPU profile of Caddy under the syslog load: %s (go tool pprof -top %s %s)", path, o.caddy, path)
			}
		}
		ts = append(ts, t)
	}
	return ts
}

func replaceOut(w, out string) string { return strings.ReplaceAll(w, "OUT", strconv.Quote(out)) }

// runSyslog sends the same load to one daemon and verifies its file.
func (o *options) runSyslog(ctx context.Context, t syslogTarget) syslogRow {
	row := syslogRow{Name: t.name, Version: t.version}
	dir, err := os.MkdirTemp(o.work, "syslog-")
	if err != nil {
		row.Err = err
		return row
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "out.log")
	port, err := freePort()
	if err != nil {
		row.Err = err
		return row
	}
	d, err := t.start(ctx, dir, out, port)
	if err != nil {
		row.Err = err
		return row
	}
	defer d.stop()

	cpu0, err := d.cpu()
	if err != nil {
		row.Err = err
		return row
	}
	runCtx, cancel := context.WithTimeout(ctx, o.syslogTimeout)
	defer cancel()
	if t.profile != nil {
		go t.profile(runCtx)
	}
	v := load.NewVerifier(o.syslogMsgs)
	start := time.Now()
	sendDone := make(chan error, 1)
	go func() {
		res, err := load.SendSyslog(runCtx, load.SyslogSpec{
			Addr: fmt.Sprintf("127.0.0.1:%d", port), Total: o.syslogMsgs, Conns: o.syslogConns, Size: o.syslogSize,
		})
		if err == nil && res.Sent != o.syslogMsgs {
			err = fmt.Errorf("sent %d of %d messages", res.Sent, o.syslogMsgs)
		}
		sendDone <- err
	}()
	end, ferr := v.Follow(runCtx, out, o.stall)
	if err := <-sendDone; err != nil {
		row.Err = fmt.Errorf("load generator: %w", err)
		return row
	}
	if ferr != nil {
		row.Err = ferr
		return row
	}
	if err := v.Settle(out, 300*time.Millisecond); err != nil {
		row.Err = fmt.Errorf("after all messages arrived: %w", err)
		return row
	}
	cpu1, err := d.cpu()
	if err != nil {
		row.Err = err
		return row
	}
	row.PeakRSS, err = load.PeakRSS(d.pid())
	if err != nil {
		row.Err = err
		return row
	}
	if fi, err := os.Stat(out); err == nil {
		row.OutBytes = float64(fi.Size()) / float64(o.syslogMsgs)
	}
	elapsed := end.Sub(start)
	row.Rate = float64(o.syslogMsgs) / elapsed.Seconds()
	row.CPU = time.Duration(float64(cpu1-cpu0) * 1e6 / float64(o.syslogMsgs))
	logf("%s: %d messages in %.2fs: %.0f msg/s, %.2f CPU s per 1M, peak RSS %s, verified",
		t.name, o.syslogMsgs, elapsed.Seconds(), row.Rate, row.CPU.Seconds(), mib(row.PeakRSS))
	return row
}
