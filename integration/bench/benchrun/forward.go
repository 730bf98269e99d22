package main

import (
	"bufio"
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"google.golang.org/protobuf/proto"

	collogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"

	"github.com/caddy-applog/caddy-applog/integration/bench/internal/load"
	"github.com/caddy-applog/caddy-applog/internal/testdaemon"
	"github.com/caddy-applog/caddy-applog/internal/testtool"
)

// Part 7, forwarding (issue 19): what Caddy's forwarding writers carry,
// against each other and against what their peer takes from a plain
// client. For each transport (fwdTransports), three paths:
//
//	spool:  part 1's syslog load into Caddy's syslog receiver, one log
//	        block writing it with the transport's writer through a disk
//	        spool (fsync 100ms by default: with fsync every, each write
//	        waits for its fsync, so the rows measure the disk and the
//	        number of connections more than the writer);
//	memory: the same, memory only (buffer as large as the load, so that
//	        nothing is dropped);
//	direct: a plain client in this program sending the peer the very
//	        payloads the writer sent (captured once, before the rounds,
//	        from the writer in memory mode), as the writer sends them: one
//	        export in flight, one connection, or a producer with the
//	        writer's client settings (kafka: the payloads are the record
//	        values, which the producer batches as the writer's does).
//
// Every run has a fresh peer (and a fresh Caddy); it ends when the peer
// has counted every record, not when Caddy accepted them. The rounds run
// every path in turn, in an order reversed each round, so each round's
// runs give one ratio per comparison: the median and range of those show
// how far the machine moved.
//
// A transport is an entry of fwdTransports: its peer, its writer's
// Caddyfile lines, a capture server that stands in for the peer, and its
// direct client. The "reference" one (tls, today's transport) is what
// every other writer is compared with.

// forwardFlags are the part's options.
type forwardFlags struct {
	msgs, rounds int
	transports   string
	otelcol      string
	kfakepeer    string
	fsync        string
}

var forwardOpts = func() *forwardFlags {
	f := &forwardFlags{}
	flag.IntVar(&f.msgs, "forward-msgs", 200_000, "forward part: records per run (part 1's messages: -syslog-conns, -syslog-size)")
	flag.IntVar(&f.rounds, "forward-rounds", 5, "forward part: rounds, each running every path of every transport")
	flag.StringVar(&f.transports, "forward-transports", "otlp,tls,kafka", "forward part: the transports, each with its writer's spool and memory rows and its peer fed directly")
	flag.StringVar(&f.otelcol, "forward-otelcol", "", "forward part: an OpenTelemetry Collector built from integration/otelcol (default: build it)")
	flag.StringVar(&f.kfakepeer, "forward-kfakepeer", "", "forward part: the kafka peer, integration/bench/kfakepeer (run.sh builds it; default: build it)")
	flag.StringVar(&f.fsync, "forward-fsync", "100ms", "forward part: the spool's fsync in the spool rows: every (each write waits for its fsync, shared by concurrent writes) or an interval")
	return f
}()

// The paths of a transport, in the order they run in a round.
const (
	fwdSpool  = "spool"
	fwdMemory = "memory"
	fwdDirect = "direct"
)

var fwdModes = []string{fwdSpool, fwdMemory, fwdDirect}

// fwdReference is the transport every other writer is compared with.
const fwdReference = "tls"

// fwdTransport is one transport of the part.
type fwdTransport struct {
	name string // the writer's module name, as in `output <name>`
	// prepare finds or builds the peer's programs, once, and returns the
	// peer's description for the report.
	prepare func(ctx context.Context, e *fwdEnv) (string, error)
	// startPeer runs a new peer with its files in dir.
	startPeer func(ctx context.Context, e *fwdEnv, dir string) (*fwdPeer, error)
	// output is the writer's log block lines (`output` with its options,
	// and `format`) sending to addr; spool is a folder, or "" for memory
	// only with buffer entries; extra goes inside the output block.
	output func(e *fwdEnv, addr, spool string, buffer int, extra string) string
	// captureExtra goes inside the output block of the capture run.
	captureExtra string
	// capture runs a stand-in peer that keeps the payloads the writer
	// sends. One that answers (OTLP) holds its first answer until
	// release, when the whole load is queued, so that every later batch
	// is full.
	capture func(e *fwdEnv, want int, release <-chan struct{}) (*fwdCapture, error)
	// direct sends payloads to p as the writer would; delivered is
	// closed once the peer has counted them all (or the run failed).
	direct     func(ctx context.Context, e *fwdEnv, p *fwdPeer, payloads [][]byte, delivered <-chan struct{}) error
	directDesc string
	// payloads names what the capture keeps when each is one record
	// (kafka's record values); "" for payloads of records.
	payloads string
}

// fwdPeer is a running peer.
type fwdPeer struct {
	d    *daemon
	addr string // host:port for the writer and the direct client (kafka: the brokers', space-separated)
	// wait returns when n records have arrived (the time the last was
	// counted), or fails when none has come for stall.
	wait func(ctx context.Context, n int, stall time.Duration) (time.Time, error)
	// settle checks, after a short wait, that no record arrived twice and
	// nothing else arrived.
	settle func() error
	close  func()
}

// fwdEnv is what every run shares: certificates, programs, the load.
type fwdEnv struct {
	o       *options
	dir     string
	ca      string // PEM files
	cert    string
	key     string
	roots   *x509.CertPool
	serverC tls.Certificate
	otelcol string
	kfake   string // kfakepeer
	msgs    int
}

func (e *fwdEnv) clientTLS() *tls.Config {
	return &tls.Config{RootCAs: e.roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}

// fwdTransports are the transports the part knows; -forward-transports
// picks among them.
var fwdTransports = []*fwdTransport{
	{
		name:      "otlp",
		prepare:   prepareOtelcol,
		startPeer: startOtelcolPeer,
		output: func(e *fwdEnv, addr, spool string, buffer int, extra string) string {
			return fmt.Sprintf("output otlp https://%s {\n\t\t\tca %s\n%s%s\t\t}\n\t\tformat json", addr, strconv.Quote(e.ca), fwdStorage(spool, buffer), extra)
		},
		// The capture's first answer waits until the whole load is
		// queued, so that every later export is a full batch: a longer
		// timeout than the default 10s keeps that first export alive.
		captureExtra: "\t\t\ttimeout 120s\n",
		capture:      captureOTLP,
		direct:       directOTLP,
		directDesc:   "Go client posting the writer's gzip'd protobuf exports, one in flight",
	},
	{
		name:      "tls",
		prepare:   prepareRsyslog,
		startPeer: startRsyslogTLSPeer,
		output: func(e *fwdEnv, addr, spool string, buffer int, extra string) string {
			return fmt.Sprintf("output tls %s {\n\t\t\tca %s\n%s%s\t\t}\n\t\tformat syslog", addr, strconv.Quote(e.ca), fwdStorage(spool, buffer), extra)
		},
		capture:    captureTLS,
		direct:     directTLS,
		directDesc: "Go client writing the writer's octet-counted frames over one TLS connection, 64KiB buffered",
	},
	{
		name:      "kafka",
		prepare:   prepareKfake,
		startPeer: startKfakePeer,
		output: func(e *fwdEnv, addr, spool string, buffer int, extra string) string {
			return fmt.Sprintf("output kafka %s {\n\t\t\ttopic %s\n\t\t\tca %s\n%s%s\t\t}\n\t\tformat json", addr, kafkaTopic, strconv.Quote(e.ca), fwdStorage(spool, buffer), extra)
		},
		capture:    captureKafka,
		direct:     directKafka,
		directDesc: "franz-go producer writing the writer's record values, with the writer's client settings",
		payloads:   "record values",
	},
}

// fwdStorage is a writer's spool or buffer lines.
func fwdStorage(spool string, buffer int) string {
	if spool != "" {
		return fmt.Sprintf("\t\t\tspool %s {\n\t\t\t\tfsync %s\n\t\t\t}\n", strconv.Quote(spool), forwardOpts.fsync)
	}
	return fmt.Sprintf("\t\t\tbuffer %d\n", buffer)
}

// forwardRun is one run of a path.
type forwardRun struct {
	Rate     float64       // records per second
	CaddyCPU time.Duration // per record; 0 for direct runs
	PeerCPU  time.Duration // per record
	PeakRSS  int64         // Caddy's
	Err      error
}

// forwardPath is a transport's path and its runs, one per round.
type forwardPath struct {
	tr   *fwdTransport
	mode string
	runs []forwardRun
}

func (p *forwardPath) label() string {
	switch p.mode {
	case fwdSpool:
		return fmt.Sprintf("`%s` writer, spool (`fsync %s`)", p.tr.name, forwardOpts.fsync)
	case fwdMemory:
		return fmt.Sprintf("`%s` writer, memory only", p.tr.name)
	}
	return p.tr.directDesc
}

func (p *forwardPath) err() error {
	for _, r := range p.runs {
		if r.Err != nil {
			return r.Err
		}
	}
	if len(p.runs) == 0 {
		return errors.New("no run")
	}
	return nil
}

// forwardReport is part 7's result.
type forwardReport struct {
	Msgs, Rounds, Buffer int
	Peers                map[string]string // transport: its peer's description
	Exports              map[string]string // transport: what the capture held
	paths                []*forwardPath
	err                  error // the part could not run
}

func (r *forwardReport) failed() bool {
	if r == nil {
		return false
	}
	if r.err != nil {
		return true
	}
	for _, p := range r.paths {
		if p.err() != nil {
			return true
		}
	}
	return false
}

func (r *forwardReport) path(transport, mode string) *forwardPath {
	for _, p := range r.paths {
		if p.tr.name == transport && p.mode == mode {
			return p
		}
	}
	return nil
}

func (o *options) runForward(ctx context.Context) *forwardReport {
	f := forwardOpts
	rep := &forwardReport{Msgs: f.msgs, Rounds: f.rounds, Buffer: max(100_000, f.msgs), Peers: map[string]string{}, Exports: map[string]string{}}
	var trs []*fwdTransport
	for _, name := range strings.Split(f.transports, ",") {
		i := slices.IndexFunc(fwdTransports, func(t *fwdTransport) bool { return t.name == name })
		if i < 0 {
			rep.err = fmt.Errorf("-forward-transports: unknown transport %q", name)
			return rep
		}
		trs = append(trs, fwdTransports[i])
	}
	dir, err := os.MkdirTemp(o.work, "forward-")
	if err != nil {
		rep.err = err
		return rep
	}
	defer os.RemoveAll(dir)
	e := &fwdEnv{o: o, dir: dir, msgs: f.msgs}
	if err := e.makeCerts(); err != nil {
		rep.err = err
		return rep
	}
	payloads := map[*fwdTransport][][]byte{}
	for _, t := range trs {
		desc, err := t.prepare(ctx, e)
		if err != nil {
			rep.err = fmt.Errorf("%s: %w", t.name, err)
			return rep
		}
		rep.Peers[t.name] = desc
		logf("forward: capturing what the %s writer sends", t.name)
		p, summary, err := o.captureWriter(ctx, e, t, rep.Buffer)
		if err != nil {
			rep.err = fmt.Errorf("capturing the %s writer's payloads: %w", t.name, err)
			return rep
		}
		payloads[t], rep.Exports[t.name] = p, summary
		for _, m := range fwdModes {
			rep.paths = append(rep.paths, &forwardPath{tr: t, mode: m})
		}
	}
	for r := range f.rounds {
		order := slices.Clone(rep.paths)
		if r%2 == 1 {
			slices.Reverse(order)
		}
		for _, p := range order {
			if ctx.Err() != nil {
				return rep
			}
			logf("forward round %d/%d: %s", r+1, f.rounds, p.label())
			run := o.fwdRun(ctx, e, p, rep.Buffer, payloads[p.tr])
			if run.Err != nil {
				logf("forward: %s: %v", p.label(), run.Err)
			}
			p.runs = append(p.runs, run)
		}
	}
	return rep
}

// fwdCaddyfile is a Caddy receiving the syslog load on port and
// writing it with output.
func fwdCaddyfile(admin, port int, output string) string {
	return fmt.Sprintf(`{
	admin 127.0.0.1:%d
	applog {
		syslog tcp/127.0.0.1:%d
		facility benchapp
		max_clock_skew 87600h
	}
	log forward {
		include applog.benchapp
		%s
	}
}
`, admin, port, output)
}

// startCaddy runs a Caddy in dir whose log block writes with output;
// it returns the syslog port.
func (e *fwdEnv) startCaddy(ctx context.Context, name, dir, output string) (*daemon, int, error) {
	admin, err := freePort()
	if err != nil {
		return nil, 0, err
	}
	port, err := freePort()
	if err != nil {
		return nil, 0, err
	}
	d, err := startCaddy(ctx, e.o.caddy, name, dir, fwdCaddyfile(admin, port, output), port)
	return d, port, err
}

// sendLoad sends part 1's load of e.msgs records to the syslog port.
func (e *fwdEnv) sendLoad(ctx context.Context, port int) error {
	res, err := load.SendSyslog(ctx, load.SyslogSpec{Addr: fmt.Sprintf("127.0.0.1:%d", port), Total: e.msgs, Conns: e.o.syslogConns, Size: e.o.syslogSize})
	if err == nil && res.Sent != e.msgs {
		err = fmt.Errorf("sent %d of %d messages", res.Sent, e.msgs)
	}
	if err != nil {
		return fmt.Errorf("load generator: %w", err)
	}
	return nil
}

// captureWriter runs the load through t's writer in memory mode to a
// stand-in peer and returns the payloads it sent, each record once.
func (o *options) captureWriter(ctx context.Context, e *fwdEnv, t *fwdTransport, buffer int) ([][]byte, string, error) {
	release := make(chan struct{})
	released := sync.OnceFunc(func() { close(release) })
	defer released()
	c, err := t.capture(e, e.msgs, release)
	if err != nil {
		return nil, "", err
	}
	defer c.close()
	dir, err := os.MkdirTemp(e.dir, t.name+"-capture-")
	if err != nil {
		return nil, "", err
	}
	defer os.RemoveAll(dir)
	d, port, err := e.startCaddy(ctx, "caddy ("+t.name+" capture)", dir, t.output(e, c.addr, "", buffer, t.captureExtra))
	if err != nil {
		return nil, "", err
	}
	defer d.stop()
	runCtx, cancel := context.WithTimeout(ctx, o.syslogTimeout)
	defer cancel()
	if err := e.sendLoad(runCtx, port); err != nil {
		return nil, "", err
	}
	// The load is in the writer's queue once Caddy's receiver has read
	// it, a moment after the sender closed its connections (were it not
	// all there yet, a few exports would be short: no harm to the count).
	time.Sleep(500 * time.Millisecond)
	released()
	if _, err := fwdWaitCount(runCtx, e.msgs, o.stall, false, "the "+t.name+" capture", c.count); err != nil {
		return nil, "", fmt.Errorf("%w\n%s", err, tail(d.Output()))
	}
	time.Sleep(300 * time.Millisecond)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.v.Err(); err != nil {
		return nil, "", err
	}
	total := 0
	for _, p := range c.payloads {
		total += len(p)
	}
	summary := fmt.Sprintf("%s payloads, %.1f records and %s each on average", thousands(len(c.payloads)),
		float64(e.msgs)/float64(len(c.payloads)), byteSize(total/len(c.payloads)))
	if t.payloads != "" {
		summary = fmt.Sprintf("%s %s, %s each on average", thousands(len(c.payloads)), t.payloads, byteSize(total/len(c.payloads)))
	}
	logf("forward: %s capture: %s", t.name, summary)
	return c.payloads, summary, nil
}

// fwdCapture is a stand-in peer: it keeps what the writer sends, and
// checks each record's sequence number.
type fwdCapture struct {
	addr     string
	close    func()
	mu       sync.Mutex
	v        *load.Verifier
	payloads [][]byte
}

func newCapture(want int) *fwdCapture { return &fwdCapture{v: load.NewVerifier(want)} }

// add keeps a payload and the records it carries (each a line with its
// sequence number).
func (c *fwdCapture) add(payload []byte, records ...[]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.payloads = append(c.payloads, payload)
	for _, r := range records {
		c.v.Line(r)
	}
}

// count is the number of records kept.
func (c *fwdCapture) count() (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.v.Lines, nil
}

// fwdWaitCount polls count until it reaches n (returning the time it
// did), it has not grown for stall, or ctx ends. With adaptive, it polls
// every 5ms only near the end: it waits half the time the records still
// missing should take at the rate so far, at most 100ms, because a poll
// costs the peer (a scrape of the Collector's metrics, about 1ms of its
// CPU) and the peer's CPU is measured.
func fwdWaitCount(ctx context.Context, n int, stall time.Duration, adaptive bool, what string, count func() (int, error)) (time.Time, error) {
	const fine, coarse = 5 * time.Millisecond, 100 * time.Millisecond
	start := time.Now()
	lastGrowth, last := start, -1
	timer := time.NewTimer(fine)
	defer timer.Stop()
	for {
		got, err := count()
		if err != nil {
			return time.Time{}, err
		}
		now := time.Now()
		if got >= n {
			return now, nil
		}
		if got != last {
			lastGrowth, last = now, got
		}
		if now.Sub(lastGrowth) > stall {
			return now, fmt.Errorf("%s: %d of %d records after none came for %s", what, got, n, stall)
		}
		wait := fine
		if adaptive {
			wait = coarse / 2
			if got > 0 {
				rest := time.Duration(float64(now.Sub(start)) * float64(n-got) / float64(got))
				wait = min(max(rest/2, fine), coarse)
			}
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return now, fmt.Errorf("%s: %d of %d records: %w", what, got, n, ctx.Err())
		case <-timer.C:
		}
	}
}

// fwdRun is one run of path p: a new peer, and Caddy or the direct
// client sending it the load.
func (o *options) fwdRun(ctx context.Context, e *fwdEnv, p *forwardPath, buffer int, payloads [][]byte) (run forwardRun) {
	runCtx, cancel := context.WithTimeout(ctx, o.syslogTimeout)
	defer cancel()
	dir, err := os.MkdirTemp(e.dir, p.tr.name+"-"+p.mode+"-")
	if err != nil {
		return forwardRun{Err: err}
	}
	defer os.RemoveAll(dir)
	peer, err := p.tr.startPeer(runCtx, e, dir)
	if err != nil {
		return forwardRun{Err: err}
	}
	defer peer.close()

	var caddy *daemon
	var port int
	if p.mode != fwdDirect {
		var spool string
		if p.mode == fwdSpool {
			spool = filepath.Join(dir, "spool")
		}
		caddy, port, err = e.startCaddy(runCtx, "caddy ("+p.label()+")", dir, p.tr.output(e, peer.addr, spool, buffer, ""))
		if err != nil {
			return forwardRun{Err: err}
		}
		defer caddy.stop()
		defer func() {
			if run.Err != nil {
				run.Err = fmt.Errorf("%w\nCaddy: %s", run.Err, tail(caddy.Output()))
			}
		}()
	}
	cpu := func() (caddyCPU, peerCPU time.Duration, err error) {
		if caddy != nil {
			if caddyCPU, err = caddy.cpu(); err != nil {
				return
			}
		}
		peerCPU, err = peer.d.cpu()
		return
	}
	c0, p0, err := cpu()
	if err != nil {
		return forwardRun{Err: err}
	}
	start := time.Now()
	sent := make(chan error, 1)
	delivered := make(chan struct{})
	go func() {
		if caddy != nil {
			sent <- e.sendLoad(runCtx, port)
		} else {
			sent <- p.tr.direct(runCtx, e, peer, payloads, delivered)
		}
	}()
	end, werr := peer.wait(runCtx, e.msgs, o.stall)
	close(delivered)
	if werr != nil {
		cancel() // a sender held up by a stalled peer returns now
	}
	if err := <-sent; err != nil && werr == nil {
		return forwardRun{Err: err}
	}
	if werr != nil {
		return forwardRun{Err: werr}
	}
	c1, p1, err := cpu()
	if err != nil {
		return forwardRun{Err: err}
	}
	if err := peer.settle(); err != nil {
		return forwardRun{Err: fmt.Errorf("after every record arrived: %w", err)}
	}
	elapsed := end.Sub(start)
	run = forwardRun{
		Rate:    float64(e.msgs) / elapsed.Seconds(),
		PeerCPU: (p1 - p0) / time.Duration(e.msgs),
	}
	if caddy != nil {
		run.CaddyCPU = (c1 - c0) / time.Duration(e.msgs)
		if run.PeakRSS, err = load.PeakRSS(caddy.pid()); err != nil {
			return forwardRun{Err: err}
		}
	}
	logf("%s: %d records in %.2fs: %.0f records/s, Caddy %.2f µs, peer %.2f µs CPU per record",
		p.label(), e.msgs, elapsed.Seconds(), run.Rate, float64(run.CaddyCPU)/1e3, float64(run.PeerCPU)/1e3)
	return run
}

// tail is the end of a daemon's output, for an error.
func tail(s string) string {
	if len(s) > 2000 {
		s = "…" + s[len(s)-2000:]
	}
	return s
}

func byteSize(n int) string {
	if n >= 10<<10 {
		return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// makeCerts makes a CA and a server certificate for 127.0.0.1, which
// every peer and capture presents; writers and clients verify it.
func (e *fwdEnv) makeCerts() error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "caddy-applog bench CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	e.ca, e.cert, e.key = filepath.Join(e.dir, "ca.pem"), filepath.Join(e.dir, "server.pem"), filepath.Join(e.dir, "server.key")
	for path, data := range map[string][]byte{
		e.ca:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		e.cert: certPEM,
		e.key:  keyPEM,
	} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return err
		}
	}
	e.roots = x509.NewCertPool()
	e.roots.AddCert(caCert)
	e.serverC, err = tls.X509KeyPair(certPEM, keyPEM)
	return err
}

// --- otlp: the OpenTelemetry Collector ---

// prepareOtelcol builds the Collector of integration/otelcol (its own
// module, outside the workspace), unless -forward-otelcol names one.
func prepareOtelcol(ctx context.Context, e *fwdEnv) (string, error) {
	bin := forwardOpts.otelcol
	if bin == "" {
		bin = filepath.Join(e.dir, "otelcol")
		logf("forward: building the Collector (integration/otelcol)")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
		cmd.Dir = filepath.Join(e.o.repo, "integration", "otelcol")
		cmd.Env = append(os.Environ(), "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("building the Collector: %w\n%s", err, out)
		}
	}
	e.otelcol = bin
	version := field(versionOf(nil, bin, "--version"), 2) // "otelcol version 0.165.0"
	return "OpenTelemetry Collector " + version + " (integration/otelcol): `otlp` receiver (HTTP, TLS) → `nop` exporter", nil
}

// startOtelcolPeer runs the Collector: its OTLP/HTTP receiver on TLS,
// the nop exporter (the cheapest sink: an export is answered once the
// pipeline took it), and its own metrics, where the receiver counts the
// records it accepted.
func startOtelcolPeer(ctx context.Context, e *fwdEnv, dir string) (*fwdPeer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	metrics, err := freePort()
	if err != nil {
		return nil, err
	}
	config := fmt.Sprintf(`receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:%d
        tls:
          cert_file: %s
          key_file: %s
exporters:
  nop:
service:
  telemetry:
    logs:
      level: warn
    metrics:
      level: basic
      readers:
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: %d
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [nop]
`, port, strconv.Quote(e.cert), strconv.Quote(e.key), metrics)
	path := filepath.Join(dir, "otelcol.yaml")
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		return nil, err
	}
	d, err := started(testdaemon.Start(ctx, "otelcol", exec.Command(e.otelcol, "--config", "file:"+path), port, metrics))
	if err != nil {
		return nil, err
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/metrics", metrics)
	counts := func() (accepted, other int, err error) {
		return otelcolCounts(ctx, url)
	}
	return &fwdPeer{
		d: d, addr: fmt.Sprintf("127.0.0.1:%d", port), close: d.stop,
		wait: func(ctx context.Context, n int, stall time.Duration) (time.Time, error) {
			return fwdWaitCount(ctx, n, stall, true, "the Collector's receiver", func() (int, error) {
				a, _, err := counts()
				return a, err
			})
		},
		settle: func() error {
			time.Sleep(300 * time.Millisecond)
			a, other, err := counts()
			if err != nil {
				return err
			}
			if a != e.msgs || other != 0 {
				return fmt.Errorf("the Collector's receiver accepted %d records (want %d) and refused or failed %d", a, e.msgs, other)
			}
			return nil
		},
	}, nil
}

// otelcolCounts reads the receiver's counters from the Collector's
// metrics: otelcol_receiver_accepted_log_records, and the refused and
// failed ones.
func otelcolCounts(ctx context.Context, url string) (accepted, other int, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("the Collector's metrics: %w", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		name, _, ok := strings.Cut(line, "{")
		if !ok {
			continue
		}
		var into *int
		switch name {
		case "otelcol_receiver_accepted_log_records":
			into = &accepted
		case "otelcol_receiver_refused_log_records", "otelcol_receiver_failed_log_records":
			into = &other
		default:
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			return 0, 0, fmt.Errorf("the Collector's metrics: %q: %w", line, err)
		}
		*into += int(v)
	}
	return accepted, other, sc.Err()
}

// captureOTLP is an OTLP/HTTP endpoint over TLS that keeps each export
// as it came (gzip'd protobuf), reading its records' sequence numbers.
func captureOTLP(e *fwdEnv, want int, release <-chan struct{}) (*fwdCapture, error) {
	c := newCapture(want)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{TLSConfig: &tls.Config{Certificates: []tls.Certificate{e.serverC}}, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		<-release
		var export collogs.ExportLogsServiceRequest
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err == nil {
			var raw []byte
			if raw, err = io.ReadAll(zr); err == nil {
				err = proto.Unmarshal(raw, &export)
			}
		}
		if err != nil {
			http.Error(w, "capture: "+err.Error(), http.StatusBadRequest)
			return
		}
		var records [][]byte
		for _, rl := range export.ResourceLogs {
			for _, sl := range rl.ScopeLogs {
				for _, lr := range sl.LogRecords {
					records = append(records, []byte(lr.GetBody().GetStringValue()))
				}
			}
		}
		c.add(body, records...)
		w.Header().Set("Content-Type", "application/x-protobuf")
	})}
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.ServeTLS(ln, "", "") }()
	c.addr = ln.Addr().String()
	c.close = func() { srv.Close(); <-served }
	return c, nil
}

// directOTLP posts the exports in order, each after the last was
// answered, over one kept-alive client configured as the writer's is.
func directOTLP(ctx context.Context, e *fwdEnv, p *fwdPeer, payloads [][]byte, _ <-chan struct{}) error {
	ht := http.DefaultTransport.(*http.Transport).Clone()
	ht.TLSClientConfig = e.clientTLS()
	ht.Proxy = nil
	client := &http.Client{Transport: ht, Timeout: 30 * time.Second}
	defer ht.CloseIdleConnections()
	url := "https://" + p.addr + "/v1/logs"
	for i, body := range payloads {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/x-protobuf")
		req.Header.Set("Content-Encoding", "gzip")
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("export %d: %w", i, err)
		}
		answer, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("export %d: %w", i, err)
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("export %d: %s: %s", i, resp.Status, answer)
		}
	}
	return nil
}

// --- tls: rsyslog's imtcp on GnuTLS ---

func prepareRsyslog(_ context.Context, e *fwdEnv) (string, error) {
	bin, err := testtool.Find(e.o.rsyslogd)
	if err != nil {
		return "", fmt.Errorf("rsyslogd not found (%w): install rsyslog, or leave tls out of -forward-transports", err)
	}
	if !testdaemon.RsyslogGnuTLS() {
		return "", errors.New("rsyslog's gtls stream driver (Debian package rsyslog-gnutls) is not installed")
	}
	e.o.rsyslogd = bin
	return "rsyslog " + field(versionOf(nil, bin, "-v"), 1) + ": `imtcp` on GnuTLS (`gtls`, anonymous clients) → `omfile` (the message only)", nil
}

// startRsyslogTLSPeer runs rsyslogd with imtcp on TLS writing each
// message's MSG to a file, which a verifier follows: every sequence
// number exactly once.
func startRsyslogTLSPeer(ctx context.Context, e *fwdEnv, dir string) (*fwdPeer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	out := filepath.Join(dir, "out.log")
	conf := fmt.Sprintf(`global(workDirectory=%q maxMessageSize="64k"
	defaultNetstreamDriver="gtls"
	defaultNetstreamDriverCAFile=%q
	defaultNetstreamDriverCertFile=%q
	defaultNetstreamDriverKeyFile=%q)
module(load="imtcp" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")
template(name="msg" type="string" string="%%msg%%\n")
ruleset(name="bench") {
	action(type="omfile" file=%q template="msg")
}
input(type="imtcp" address="127.0.0.1" port="%d" ruleset="bench")
`, dir, e.ca, e.cert, e.key, out, port)
	r := &testdaemon.Rsyslog{Bin: e.o.rsyslogd}
	d, err := started(r.Start(ctx, dir, conf, port))
	if err != nil {
		return nil, err
	}
	v := load.NewFilesVerifier(e.msgs, []string{out}, func(int) int { return 0 })
	return &fwdPeer{
		d: d, addr: fmt.Sprintf("127.0.0.1:%d", port),
		close: func() { v.Close(); d.stop() },
		wait: func(ctx context.Context, n int, stall time.Duration) (time.Time, error) {
			return v.Follow(ctx, stall)
		},
		settle: func() error { return v.Settle(300 * time.Millisecond) },
	}, nil
}

// captureTLS is an RFC 5425 server that keeps each octet-counted frame.
func captureTLS(e *fwdEnv, want int, _ <-chan struct{}) (*fwdCapture, error) {
	c := newCapture(want)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{e.serverC}})
	if err != nil {
		return nil, err
	}
	var wg sync.WaitGroup
	var connsMu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			connsMu.Lock()
			conns = append(conns, conn)
			connsMu.Unlock()
			wg.Go(func() {
				defer conn.Close()
				r := bufio.NewReaderSize(conn, 64<<10)
				for {
					n, err := readOctetCount(r)
					if err != nil {
						return
					}
					frame := make([]byte, n)
					if _, err := io.ReadFull(r, frame); err != nil {
						return
					}
					c.add(frame, frame)
				}
			})
		}
	})
	c.addr = ln.Addr().String()
	c.close = func() {
		ln.Close()
		connsMu.Lock()
		for _, conn := range conns {
			conn.Close()
		}
		connsMu.Unlock()
		wg.Wait()
	}
	return c, nil
}

// readOctetCount reads "LEN SP".
func readOctetCount(r *bufio.Reader) (int, error) {
	text, err := r.ReadString(' ')
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(text[:len(text)-1])
	if err != nil || n < 0 || n > 1<<20 {
		return 0, fmt.Errorf("bad octet count %q", text)
	}
	return n, nil
}

// directTLS writes the frames, octet-counted, over one TLS connection
// through a 64KiB buffer, and keeps it open until the peer has them all,
// as the writer's stays open.
func directTLS(ctx context.Context, e *fwdEnv, p *fwdPeer, frames [][]byte, delivered <-chan struct{}) error {
	d := tls.Dialer{Config: e.clientTLS()}
	conn, err := d.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	w := bufio.NewWriterSize(conn, 64<<10)
	var num []byte
	for _, f := range frames {
		num = strconv.AppendInt(num[:0], int64(len(f)), 10)
		num = append(num, ' ')
		if _, err := w.Write(num); err != nil {
			return err
		}
		if _, err := w.Write(f); err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	<-delivered
	return nil
}

// --- kafka: a kfake cluster ---

// The kafka peer: brokers and partitions of its one topic. Three
// brokers, as the writer's tests run and a cluster is deployed: the
// partitions' leaders are spread over them, so a producer keeps a
// connection to each and sends each its partitions' batches, as it
// would to Kafka (one broker would put every batch on one connection).
const (
	kafkaTopic      = "logs"
	kafkaBrokers    = 3
	kafkaPartitions = 6
)

// prepareKfake finds the kafka peer (run.sh builds it), or builds it.
func prepareKfake(ctx context.Context, e *fwdEnv) (string, error) {
	bin := forwardOpts.kfakepeer
	if bin == "" {
		bin = filepath.Join(e.dir, "kfakepeer")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./integration/bench/kfakepeer")
		cmd.Dir = e.o.repo
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("building kfakepeer: %w\n%s", err, out)
		}
	}
	e.kfake = bin
	version := field(versionOf(nil, bin, "-version"), 1) // "kfake v0.0.0-…"
	return fmt.Sprintf("kfake %s (franz-go's Kafka protocol server, integration/bench/kfakepeer, a process of its own): %d brokers on TLS, "+
		"topic `%s` with %d partitions, records kept in memory", version, kafkaBrokers, kafkaTopic, kafkaPartitions), nil
}

// kafkaClient is a franz-go client of the brokers at addrs (the bench
// CA's TLS) with opts.
func (e *fwdEnv) kafkaClient(addrs []string, opts ...kgo.Opt) (*kgo.Client, error) {
	return kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addrs...), kgo.DialTLSConfig(e.clientTLS())}, opts...)...)
}

// startKfakePeer runs kfakepeer. The records are counted where Kafka's
// clients see them: the sum of the partitions' high watermarks (a
// ListOffsets request to their leaders), which a record reaches once a
// broker acknowledged it; settle reads them all back.
func startKfakePeer(ctx context.Context, e *fwdEnv, dir string) (*fwdPeer, error) {
	ports := make([]int, kafkaBrokers)
	var list, addrs []string
	for i := range ports {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
		list = append(list, strconv.Itoa(p))
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", p))
	}
	cmd := exec.Command(e.kfake, "-ports", strings.Join(list, ","), "-topic", kafkaTopic, "-partitions", strconv.Itoa(kafkaPartitions),
		"-cert", e.cert, "-key", e.key)
	cmd.Dir = dir
	d, err := started(testdaemon.Start(ctx, "kfakepeer", cmd, ports...))
	if err != nil {
		return nil, err
	}
	cl, err := e.kafkaClient(addrs)
	if err != nil {
		d.stop()
		return nil, err
	}
	count := func() (int, error) { return kafkaHighWatermarks(ctx, cl) }
	return &fwdPeer{
		d: d, addr: strings.Join(addrs, " "),
		close: func() { cl.Close(); d.stop() },
		wait: func(ctx context.Context, n int, stall time.Duration) (time.Time, error) {
			return fwdWaitCount(ctx, n, stall, true, "the cluster's high watermarks", count)
		},
		settle: func() error {
			time.Sleep(300 * time.Millisecond)
			n, err := count()
			if err != nil {
				return err
			}
			if n != e.msgs {
				return fmt.Errorf("the cluster holds %d records, want %d", n, e.msgs)
			}
			v := load.NewVerifier(e.msgs)
			rctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			if err := e.kafkaReadAll(rctx, addrs, n, func(value []byte) { v.Line(value) }); err != nil {
				return err
			}
			return v.Err()
		},
	}, nil
}

// kafkaHighWatermarks is the sum of the high watermarks of the topic's
// partitions.
func kafkaHighWatermarks(ctx context.Context, cl *kgo.Client) (int, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = kafkaTopic
	for p := range int32(kafkaPartitions) {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition = p
		rp.Timestamp = -1 // the latest offset: the high watermark
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return 0, fmt.Errorf("ListOffsets: %w", err)
	}
	sum, seen := 0, 0
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return 0, fmt.Errorf("ListOffsets: %s/%d: %w", t.Topic, p.Partition, err)
			}
			sum += int(p.Offset)
			seen++
		}
	}
	if seen != kafkaPartitions {
		return 0, fmt.Errorf("ListOffsets: %d partitions answered, want %d", seen, kafkaPartitions)
	}
	return sum, nil
}

// kafkaReadAll consumes the topic from its start until n records were
// read, passing each value to fn.
func (e *fwdEnv) kafkaReadAll(ctx context.Context, addrs []string, n int, fn func([]byte)) error {
	cl, err := e.kafkaClient(addrs, kgo.ConsumeTopics(kafkaTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	got := 0
	for got < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return fmt.Errorf("reading the topic back: %d of %d records: %w", got, n, ctx.Err())
		}
		fs.EachRecord(func(r *kgo.Record) {
			got++
			fn(r.Value)
		})
		if err := fs.Err0(); err != nil && got < n {
			return fmt.Errorf("reading the topic back: %d of %d records: %w", got, n, err)
		}
	}
	return nil
}

// captureKafka is a kfake cluster in this process, set up as the peer,
// with a consumer keeping each record's value as it arrives.
func captureKafka(e *fwdEnv, want int, _ <-chan struct{}) (*fwdCapture, error) {
	c := newCapture(want)
	cluster, err := kfake.NewCluster(kfake.NumBrokers(kafkaBrokers), kfake.SeedTopics(kafkaPartitions, kafkaTopic),
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{e.serverC}}))
	if err != nil {
		return nil, err
	}
	addrs := cluster.ListenAddrs()
	ctx, cancel := context.WithCancel(context.Background())
	read := make(chan struct{})
	go func() {
		defer close(read)
		// Ends with an error when closed early; the capture's wait
		// reports the count then.
		_ = e.kafkaReadAll(ctx, addrs, want, func(value []byte) {
			v := slices.Clone(value)
			c.add(v, v)
		})
	}()
	c.addr = strings.Join(addrs, " ")
	c.close = func() { cancel(); <-read; cluster.Close() }
	return c, nil
}

// directKafka produces the captured values to the topic as the writer
// does (its settings but the window: franz-go's defaults for linger and
// batches, which the writer keeps, and at most as many records
// unacknowledged as the writer's window), and returns once the brokers
// acknowledged them all.
func directKafka(ctx context.Context, e *fwdEnv, p *fwdPeer, values [][]byte, _ <-chan struct{}) error {
	cl, err := e.kafkaClient(strings.Fields(p.addr),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(kgo.SnappyCompression(), kgo.NoCompression()),
		kgo.MaxBufferedRecords(kafkaWindow),
		kgo.DefaultProduceTopic(kafkaTopic))
	if err != nil {
		return err
	}
	defer cl.Close()
	var errMu sync.Mutex
	var first error
	for _, v := range values {
		// Produce waits while the buffer holds the window.
		cl.Produce(ctx, &kgo.Record{Value: v}, func(_ *kgo.Record, err error) {
			if err != nil {
				errMu.Lock()
				first = cmp.Or(first, err)
				errMu.Unlock()
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	errMu.Lock()
	defer errMu.Unlock()
	return first
}

// kafkaWindow is the kafka writer's window: records sent and not yet
// acknowledged (writers/kafka's maxInflight).
const kafkaWindow = 10_000

// --- report ---

// ratios are the rounds' a/b of f, skipping rounds where b is 0.
func fwdRatios(a, b *forwardPath, f func(forwardRun) float64) []float64 {
	var v []float64
	for i := range min(len(a.runs), len(b.runs)) {
		if d := f(b.runs[i]); d != 0 {
			v = append(v, f(a.runs[i])/d)
		}
	}
	return v
}

func fwdMedian(runs []forwardRun, f func(forwardRun) float64) float64 {
	v := make([]float64, len(runs))
	for i, r := range runs {
		v[i] = f(r)
	}
	return median(v)
}

func fwdRate(r forwardRun) float64  { return r.Rate }
func fwdCaddy(r forwardRun) float64 { return float64(r.CaddyCPU) }
func fwdPeerC(r forwardRun) float64 { return float64(r.PeerCPU) }

// markdown writes part 7's section.
func (r *forwardReport) markdown(p func(format string, args ...any), o *options) {
	p("\n### 7. Forwarding: the writers against each other and against their peers fed directly\n\n")
	if r.err != nil {
		p("%s\n", failure(r.err))
		return
	}
	p("%s records per run: part 1's syslog messages (%d bytes, %d TCP connections) to Caddy's `syslog` receiver, one log block writing them "+
		"with the writer to its peer on loopback over TLS, a new Caddy and a new peer per run; the writers with their defaults "+
		"but a spool with `fsync %s`, or memory only with `buffer %d` (as large as the load, so nothing is dropped). "+
		"The direct rows send the peer the very payloads the writer sent (captured once, before the rounds, with every later export a full batch). "+
		"A run ends when the peer has counted every record: rsyslog's file, every sequence number exactly once; the Collector's "+
		"`otelcol_receiver_accepted_log_records`, exactly the load and none refused; the kafka cluster's high watermarks (ListOffsets), "+
		"exactly the load, every sequence number then read back exactly once. CPU is utime+stime over the run. "+
		"%d round(s), each running every path in turn (the order reversed each round); each round gives one ratio per comparison.\n\n",
		thousands(r.Msgs), o.syslogSize, o.syslogConns, forwardOpts.fsync, r.Buffer, r.Rounds)
	for _, t := range fwdTransports {
		if d, ok := r.Peers[t.name]; ok {
			p("- `%s`: %s; captured: %s.\n", t.name, d, r.Exports[t.name])
		}
	}
	p("\n| transport | path | records/s | range over rounds | Caddy CPU µs/record | peer CPU µs/record | Caddy peak RSS | all delivered |\n|---|---|--:|--:|--:|--:|--:|---|\n")
	for _, x := range r.paths {
		if err := x.err(); err != nil {
			p("| %s | %s | %s | | | | | no |\n", x.tr.name, x.label(), failure(err))
			continue
		}
		rates := make([]float64, len(x.runs))
		for i, run := range x.runs {
			rates[i] = run.Rate
		}
		caddyCPU, rss := "–", "–"
		if x.mode != fwdDirect {
			caddyCPU = fmt.Sprintf("%.2f", fwdMedian(x.runs, fwdCaddy)/1e3)
			var peak int64
			for _, run := range x.runs {
				peak = max(peak, run.PeakRSS)
			}
			rss = mib(peak)
		}
		p("| %s | %s | %s | %s | %s | %.2f | %s | yes |\n", x.tr.name, x.label(), thousands(int(fwdMedian(x.runs, fwdRate))), spread(rates),
			caddyCPU, fwdMedian(x.runs, fwdPeerC)/1e3, rss)
	}

	p("\n| ratio, same round | records/s: median of the rounds' ratios (range) | Caddy CPU per record | peer CPU per record |\n|---|--:|--:|--:|\n")
	row := func(name string, a, b *forwardPath, caddy bool) {
		if a == nil || b == nil || a.err() != nil || b.err() != nil {
			return
		}
		c := "–"
		if caddy {
			c = pairSpread(fwdRatios(a, b, fwdCaddy))
		}
		p("| %s | %s | %s | %s |\n", name, pairSpread(fwdRatios(a, b, fwdRate)), c, pairSpread(fwdRatios(a, b, fwdPeerC)))
	}
	for _, t := range fwdTransports {
		if t.name == fwdReference || r.Peers[t.name] == "" || r.Peers[fwdReference] == "" {
			continue
		}
		for _, m := range []string{fwdSpool, fwdMemory} {
			mode := map[string]string{fwdSpool: "spool", fwdMemory: "memory only"}[m]
			row(fmt.Sprintf("`%s` / `%s` writer, %s", t.name, fwdReference, mode), r.path(t.name, m), r.path(fwdReference, m), true)
		}
	}
	for _, t := range fwdTransports {
		if r.Peers[t.name] == "" {
			continue
		}
		row(fmt.Sprintf("`%s` writer, spool / its peer fed directly", t.name), r.path(t.name, fwdSpool), r.path(t.name, fwdDirect), false)
		row(fmt.Sprintf("`%s` writer, memory only / its peer fed directly", t.name), r.path(t.name, fwdMemory), r.path(t.name, fwdDirect), false)
		row(fmt.Sprintf("`%s` writer, spool / memory only", t.name), r.path(t.name, fwdSpool), r.path(t.name, fwdMemory), true)
	}
}
