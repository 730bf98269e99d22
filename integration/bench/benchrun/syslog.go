package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/caddy-applog/caddy-applog/integration/bench/internal/load"
	"github.com/caddy-applog/caddy-applog/internal/testdaemon"
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
	// entry says how the daemon's line for a message compares with the
	// entry caddy-applog writes for it.
	entry entryCheck
	// msgs, if set, is the number of messages instead of -syslog-msgs.
	msgs int
	// programs are the messages' APP-NAMEs (load.SyslogSpec.Programs).
	programs []string
	// files, if set, are the files in dir the daemon writes the load
	// to, and place(seq) the index of the one message seq belongs in;
	// else every message belongs in out.
	files func(dir string) []string
	place func(seq int) int
}

// entryCheck is how a daemon's output is checked against caddy-applog's
// entry for the first message, which proves that "caddy-applog's entry"
// rows did the same work.
type entryCheck int

const (
	entryNone  entryCheck = iota
	entryRef              // caddy-applog: its line is the reference
	entryBytes            // must be byte for byte the reference
	entryJSON             // must be the same JSON value (keys in any order)
)

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

func (o *options) syslogTargets(ng *testdaemon.SyslogNG) []syslogTarget {
	var ts []syslogTarget
	for _, v := range o.caddyVariants() {
		ts = append(ts, o.caddyTargets(v)...)
	}
	for _, format := range o.daemonFormats {
		suffix := map[string]string{"json": ", JSON lines", "entry": ", caddy-applog's entry"}[format]
		rsyslogCheck, ngCheck := entryNone, entryNone
		if format == "entry" {
			rsyslogCheck, ngCheck = entryBytes, entryJSON
		}
		ts = append(ts, syslogTarget{
			name: "rsyslog (imtcp → omfile" + suffix + ")", version: o.rsyslogVersion, entry: rsyslogCheck,
			start: func(ctx context.Context, dir, out string, port int) (*daemon, error) {
				return startRsyslog(ctx, o.rsyslogd, dir, out, port, format)
			},
		})
		ts = append(ts, syslogTarget{
			name: "syslog-ng (syslog() → file()" + suffix + ")", version: o.syslogNGVersion, entry: ngCheck,
			start: func(ctx context.Context, dir, out string, port int) (*daemon, error) {
				return startSyslogNG(ctx, ng, dir, out, port, o.syslogConns, format)
			},
		})
	}
	return ts
}

// caddyTargets are Caddy's syslog receiver writing with each of
// -caddy-outputs. Each rotate output names its flush mode, in its row
// and its config, so that a row means the same whatever rotate's
// default is.
func (o *options) caddyTargets(v caddyVariant) []syslogTarget {
	var ts []syslogTarget
	for _, output := range o.caddyOutputs {
		var w string
		switch output {
		case "file":
			w = "output file OUT {\n\t\t\troll_disabled\n\t\t}"
		case "rotate-always":
			w = "output rotate OUT {\n\t\t\tmax_size 1000GiB\n\t\t\tcompress none\n\t\t\tflush always\n\t\t}"
		case "rotate-batch":
			w = "output rotate OUT {\n\t\t\tmax_size 1000GiB\n\t\t\tcompress none\n\t\t\tflush batch\n\t\t}"
		case "rotate-flush":
			w = "output rotate OUT {\n\t\t\tmax_size 1000GiB\n\t\t\tcompress none\n\t\t\tflush 1s\n\t\t}"
		}
		var adminPort int
		t := syslogTarget{name: v.label + " (" + output + ")", version: o.caddyVersion, entry: entryRef}
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
		max_clock_skew 87600h
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
	msgs := o.syslogMsgs
	if t.msgs > 0 {
		msgs = t.msgs
	}
	dir, err := os.MkdirTemp(o.work, "syslog-")
	if err != nil {
		row.Err = err
		return row
	}
	if !o.keep {
		defer os.RemoveAll(dir)
	}
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
		profiled := make(chan struct{})
		go func() { defer close(profiled); t.profile(runCtx) }()
		defer func() { cancel(); <-profiled }()
	}
	paths, place := []string{out}, func(int) int { return 0 }
	if t.files != nil {
		paths, place = t.files(dir), t.place
	}
	v := load.NewFilesVerifier(msgs, paths, place)
	defer v.Close()
	start := time.Now()
	sendDone := make(chan error, 1)
	go func() {
		res, err := load.SendSyslog(runCtx, load.SyslogSpec{
			Addr: fmt.Sprintf("127.0.0.1:%d", port), Total: msgs, Conns: o.syslogConns, Size: o.syslogSize, Programs: t.programs,
		})
		if err == nil && res.Sent != msgs {
			err = fmt.Errorf("sent %d of %d messages", res.Sent, msgs)
		}
		sendDone <- err
	}()
	end, ferr := v.Follow(runCtx, o.stall)
	if err := <-sendDone; err != nil {
		row.Err = fmt.Errorf("load generator: %w", err)
		return row
	}
	if ferr != nil {
		row.Err = ferr
		return row
	}
	if err := v.Settle(300 * time.Millisecond); err != nil {
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
	if err := o.checkEntry(t, out); err != nil {
		row.Err = err
		return row
	}
	for _, path := range paths {
		if fi, err := os.Stat(path); err == nil {
			row.OutBytes += float64(fi.Size()) / float64(msgs)
		}
	}
	elapsed := end.Sub(start)
	row.Rate = float64(msgs) / elapsed.Seconds()
	row.CPU = time.Duration(float64(cpu1-cpu0) * 1e6 / float64(msgs))
	logf("%s: %d messages in %.2fs: %.0f msg/s, %.2f CPU s per 1M, peak RSS %s, verified in %d file(s)",
		t.name, msgs, elapsed.Seconds(), row.Rate, row.CPU.Seconds(), mib(row.PeakRSS), len(paths))
	return row
}

// checkEntry compares the line of message 0 in out with caddy-applog's
// (kept from the first Caddy run) as t.entry asks.
func (o *options) checkEntry(t syslogTarget, out string) error {
	if t.entry == entryNone || t.entry == entryRef && o.refEntry != nil {
		return nil
	}
	line, err := firstSeqLine(out)
	if err != nil {
		return err
	}
	if t.entry == entryRef {
		o.refEntry = line
		return nil
	}
	if o.refEntry == nil {
		return errors.New("no caddy-applog entry to compare with (run a Caddy output too)")
	}
	same := bytes.Equal(line, o.refEntry)
	if t.entry == entryJSON {
		var a, b any
		same = json.Unmarshal(line, &a) == nil && json.Unmarshal(o.refEntry, &b) == nil && reflect.DeepEqual(a, b)
	}
	if !same {
		return fmt.Errorf("its line for message 0 is not caddy-applog's entry:\n  %s\n  %s", line, o.refEntry)
	}
	return nil
}

// firstSeqLine finds the line of sequence number 0 near the start of a
// file (each connection starts with its own range, the first with 0).
func firstSeqLine(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	head := make([]byte, 4<<20)
	n, _ := io.ReadFull(f, head)
	for line := range bytes.Lines(head[:n]) {
		if seq, ok := load.FindSeq(line); ok && seq == 0 {
			if line, ok = bytes.CutSuffix(line, []byte("\n")); !ok {
				return nil, fmt.Errorf("%s: the line for message 0 is not whole in its first %d bytes", path, n)
			}
			return line, nil
		}
	}
	return nil, fmt.Errorf("%s: no line for message 0 in its first %d bytes", path, n)
}
