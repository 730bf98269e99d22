// Package forwardtest is the conformance suite of internal/forward: the
// same tests of the spool, the memory queue, the hub and the sender run
// against every transport, through its real peer.
//
// A transport's package adds one test:
//
//	func TestForward(t *testing.T) {
//		forwardtest.Run(t, func(t *testing.T) forwardtest.Peer { return startMyPeer(t) })
//	}
//
// where its Peer starts the peer (a TLS aggregator, an OpenTelemetry
// Collector, a Kafka cluster) and reports what it received. A peer that
// can be taken down (Downer), made to break a session (Breaker) or made
// to refuse records for good (Rejecter) runs the tests that need it;
// the others are skipped, saying why. forwardtest.NewFake is an
// in-process peer with all of these, which internal/forward runs.
package forwardtest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/caddy-applog/caddy-applog/internal/forward"
)

// Peer is a running peer of one transport.
type Peer interface {
	// Transport returns a transport to the peer, as its module would
	// provision it.
	Transport(t testing.TB) forward.Transport
	// Name is the peer's address, for the hub's messages and meter. It
	// must differ between peers of one test process.
	Name() string
	// Received returns the payload of every record the peer received,
	// in order, duplicates included.
	Received() []string
}

// A Downer can refuse sessions: while down, no record reaches it.
type Downer interface{ SetDown(down bool) }

// A Breaker breaks its next session after n records, with records sent
// and not yet acknowledged.
type Breaker interface{ BreakAfter(n int) }

// A Rejecter refuses for good every record whose payload starts with
// RejectPrefix, and says so (an OTLP partial success, say): those are
// not in Received.
type Rejecter interface{ RejectsMarked() }

// A Configurer adjusts the Config the suite gives its transport as the
// transport's module would (forward.Config.MaxInflight, say).
type Configurer interface{ Configure(cfg *forward.Config) }

// RejectPrefix marks the records a Rejecter refuses.
const RejectPrefix = "reject "

// Run runs the suite, each test against a peer of its own.
func Run(t *testing.T, start func(t *testing.T) Peer) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, p Peer)
	}{
		{"InOrderOnce/spool", func(t *testing.T, p Peer) { testInOrderOnce(t, p, true) }},
		{"InOrderOnce/memory", func(t *testing.T, p Peer) { testInOrderOnce(t, p, false) }},
		{"PeerDown", testPeerDown},
		{"BrokenSessionResends", testBrokenSessionResends},
		{"Handover", testHandover},
		{"Released", testReleased},
		{"OnFullDropNewest", testOnFullDropNewest},
		{"Rejected", testRejected},
		{"OneConfigTwoSettings", testOneConfigTwoSettings},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, start(t)) })
	}
}

// config returns a writer's Config for p: key tells settings apart.
func config(t *testing.T, p Peer, key, dir string) *forward.Config {
	cfg := &forward.Config{
		Key:        key,
		Transport:  p.Transport(t),
		Name:       p.Name(),
		Buffer:     100000,
		BackoffMin: 50 * time.Millisecond,
		BackoffMax: 200 * time.Millisecond,
		Log:        zaptest.NewLogger(t),
	}
	if dir != "" {
		cfg.Spool = &forward.SpoolConfig{Dir: dir, MaxSize: 1 << 30, OnFull: "block"}
	}
	if c, ok := p.(Configurer); ok {
		c.Configure(cfg)
	}
	return cfg
}

func load(t *testing.T, cfg *forward.Config) (*forward.Hub, context.CancelFunc) {
	t.Helper()
	return Load(t, "forwardtest", cfg)
}

// Load leases the hub of cfg (its spool folder's, or else its peer's)
// for a config of module that ends with the returned function or the
// test, as a writer's Provision does.
func Load(t testing.TB, module string, cfg *forward.Config) (*forward.Hub, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	key := "memory " + cfg.Name
	if cfg.Spool != nil {
		key = "spool " + cfg.Spool.Dir
	}
	h, err := forward.Acquire(ctx, module, key, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h, cancel
}

func write(t *testing.T, h *forward.Hub, cfg *forward.Config, payload string) {
	t.Helper()
	if _, err := h.Writer(cfg).Write([]byte(payload + "\n")); err != nil {
		t.Fatal(err)
	}
}

func record(i int) string { return fmt.Sprintf("record %05d", i) }

// WaitFor polls cond for up to limit.
func WaitFor(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// CheckAllOnce checks that got holds record 0..n-1 (as record formats
// them), each at least once, in order of first appearance, and returns
// how many were duplicates.
func CheckAllOnce(t testing.TB, got []string, n int) int {
	t.Helper()
	seen := map[string]bool{}
	next := 0
	for _, m := range got {
		if seen[m] {
			continue
		}
		seen[m] = true
		if want := record(next); m != want {
			t.Fatalf("record %d arrived as %q, out of order or unknown", next, m)
		}
		next++
	}
	if next != n {
		t.Fatalf("%d distinct records arrived, want %d", next, n)
	}
	return len(got) - n
}

// distinct counts the distinct payloads in got.
func distinct(got []string) int {
	seen := map[string]bool{}
	for _, m := range got {
		seen[m] = true
	}
	return len(seen)
}

// testInOrderOnce: on a healthy peer every record arrives once, in
// order, and the meter counts it delivered.
func testInOrderOnce(t *testing.T, p Peer, spool bool) {
	dir := ""
	if spool {
		dir = t.TempDir()
	}
	cfg := config(t, p, "a", dir)
	h, _ := load(t, cfg)
	before := h.Meter().Entries.Load()
	const n = 3000
	for i := range n {
		write(t, h, cfg, record(i))
	}
	WaitFor(t, 20*time.Second, "the queue to empty", func() bool { return h.Depth() == 0 })
	if dups := CheckAllOnce(t, p.Received(), n); dups != 0 {
		t.Errorf("%d duplicates on a healthy peer", dups)
	}
	m := h.Meter()
	if got := m.Entries.Load() - before; got != n || m.SpoolDepth.Load() != 0 || m.SpoolOldest.Load() != 0 {
		t.Errorf("meter: entries %d (want %d) depth %d oldest %d", got, n, m.SpoolDepth.Load(), m.SpoolOldest.Load())
	}
}

// testPeerDown: while the peer is down, records wait in the spool and
// errors are counted; once it is back, all arrive in order.
func testPeerDown(t *testing.T, p Peer) {
	d := takeDown(t, p)
	cfg := config(t, p, "a", t.TempDir())
	h, _ := load(t, cfg)
	errs := h.Meter().Errors.Load()
	const n = 500
	for i := range n {
		write(t, h, cfg, record(i))
	}
	WaitFor(t, 10*time.Second, "a failed attempt", func() bool { return h.Meter().Errors.Load() > errs })
	if got := h.Depth(); got != n {
		t.Fatalf("%d records held while the peer is down, want %d", got, n)
	}
	if h.LastError() == "" {
		t.Error("no reason recorded for the failed attempts")
	}
	d.SetDown(false)
	WaitFor(t, 20*time.Second, "the spool to empty once the peer is back", func() bool { return h.Depth() == 0 })
	CheckAllOnce(t, p.Received(), n)
}

// takeDown takes p down, or skips the test if it cannot be.
func takeDown(t *testing.T, p Peer) Downer {
	d, ok := p.(Downer)
	if !ok {
		t.Skip("the peer cannot be taken down")
	}
	d.SetDown(true)
	return d
}

// testBrokenSessionResends: what a broken session had not settled is
// sent again: every record arrives, in order of first appearance.
func testBrokenSessionResends(t *testing.T, p Peer) {
	b, ok := p.(Breaker)
	if !ok {
		t.Skip("the peer cannot break a session")
	}
	b.BreakAfter(300)
	cfg := config(t, p, "a", t.TempDir())
	h, _ := load(t, cfg)
	const n = 2000
	for i := range n {
		write(t, h, cfg, record(i))
	}
	WaitFor(t, 20*time.Second, "the spool to empty", func() bool { return h.Depth() == 0 })
	dups := CheckAllOnce(t, p.Received(), n)
	t.Logf("%d duplicates after the broken session (the unsettled window)", dups)
	if h.Meter().Errors.Load() == 0 {
		t.Error("no error counted for the broken session")
	}
}

// testHandover: a config with other settings takes over mid-stream;
// the old sender settles what it sent first, so nothing is doubled.
func testHandover(t *testing.T, p Peer) {
	dir := t.TempDir()
	a := config(t, p, "a", dir)
	h, cancelA := load(t, a)
	const n = 3000
	for i := range n {
		write(t, h, a, record(i))
		if i == n/2 {
			b := config(t, p, "b", dir)
			if h2, _ := load(t, b); h2 != h {
				t.Fatal("two configs on one spool got two hubs")
			}
			cancelA()
		}
		if i%100 == 0 {
			time.Sleep(5 * time.Millisecond)
		}
	}
	WaitFor(t, 20*time.Second, "the spool to empty", func() bool { return h.Depth() == 0 })
	if dups := CheckAllOnce(t, p.Received(), n); dups != 0 {
		t.Errorf("%d duplicates across a handover", dups)
	}
}

// testReleased checks a hub's life across configs: two configs share
// it, the last one's end drains it and deletes its key, an entry written
// after that waits in the spool, and the next config to use the spool
// sends it; every record arrives once, in order.
func testReleased(t *testing.T, p Peer) {
	dir := t.TempDir()
	key := "spool " + dir // as Load names it
	cfg1 := config(t, p, "a", dir)
	h1, cancel1 := load(t, cfg1)
	ew := h1.Writer(cfg1) // Caddy opens the key once and keeps the writer
	put := func(i int) {
		t.Helper()
		if _, err := ew.Write([]byte(record(i) + "\n")); err != nil {
			t.Fatal(err)
		}
	}
	h2, cancel2 := load(t, config(t, p, "a", dir))
	if h2 != h1 {
		t.Fatal("two configs on one spool got two hubs")
	}
	put(0)
	cancel1()
	put(1)
	cancel2()
	WaitFor(t, 10*time.Second, "the last config's end to delete the hub's key", func() bool { return !forward.Held(key) })
	// The key goes at once; the hub's sender then drains what is queued.
	WaitFor(t, 10*time.Second, "the 2 records to be sent as the hub closes", func() bool { return len(p.Received()) >= 2 })
	put(2)
	if forward.Held(key) {
		t.Fatal("an entry written while no config uses the spool left its key held")
	}
	_, cancel3 := load(t, config(t, p, "a", dir))
	WaitFor(t, 10*time.Second, "the spooled record to be sent", func() bool { return len(p.Received()) >= 3 })
	if dups := CheckAllOnce(t, p.Received(), 3); dups != 0 {
		t.Errorf("%d duplicates", dups)
	}
	cancel3()
	WaitFor(t, 10*time.Second, "the key to be deleted again", func() bool { return !forward.Held(key) })
}

// testOnFullDropNewest: a full spool refuses new records while the peer
// is down, counting them dropped; what it kept arrives in order.
func testOnFullDropNewest(t *testing.T, p Peer) {
	d := takeDown(t, p)
	cfg := config(t, p, "a", t.TempDir())
	cfg.Spool.MaxSize, cfg.Spool.OnFull = 1<<16, "drop_newest"
	h, _ := load(t, cfg)
	dropped := h.Meter().Dropped.Load()
	pad := strings.Repeat("x", 100-len(record(0))-1)
	const frame = 16 + 100
	fits := (1 << 16) / frame
	w := h.Writer(cfg)
	for i := range fits + 50 {
		_, err := w.Write([]byte(record(i) + " " + pad + "\n"))
		if (i < fits) != (err == nil) {
			t.Fatalf("write %d of a spool of %d: %v", i, fits, err)
		}
	}
	if got := h.Meter().Dropped.Load() - dropped; got != 50 {
		t.Errorf("dropped %d, want 50", got)
	}
	d.SetDown(false)
	WaitFor(t, 20*time.Second, "the spool to empty", func() bool { return h.Depth() == 0 })
	got := p.Received()
	for i := range got {
		got[i] = strings.TrimSuffix(got[i], " "+pad)
	}
	CheckAllOnce(t, got, fits)
}

// testRejected: records the peer refuses for good leave the queue,
// counted dropped, and are not sent again; the others are delivered.
func testRejected(t *testing.T, p Peer) {
	if _, ok := p.(Rejecter); !ok {
		t.Skip("the peer never refuses a record for good")
	}
	cfg := config(t, p, "a", t.TempDir())
	h, _ := load(t, cfg)
	m := h.Meter()
	entries, dropped := m.Entries.Load(), m.Dropped.Load()
	const n = 1000
	kept := 0
	for i := range n {
		if i%10 == 3 {
			write(t, h, cfg, RejectPrefix+record(i))
			continue
		}
		write(t, h, cfg, record(kept))
		kept++
	}
	WaitFor(t, 20*time.Second, "the spool to empty", func() bool { return h.Depth() == 0 })
	if dups := CheckAllOnce(t, p.Received(), kept); dups != 0 {
		t.Errorf("%d duplicates", dups)
	}
	if got := m.Dropped.Load() - dropped; got != int64(n-kept) {
		t.Errorf("dropped %d, want the %d refused", got, n-kept)
	}
	if got := m.Entries.Load() - entries; got != int64(kept) {
		t.Errorf("delivered %d, want %d", got, kept)
	}
	if distinct(p.Received()) != kept {
		t.Error("a refused record was received")
	}
}

// testOneConfigTwoSettings: two writers of one config on one spool
// with different settings are refused.
func testOneConfigTwoSettings(t *testing.T, p Peer) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := forward.Acquire(ctx, "forwardtest", "spool "+dir, config(t, p, "a", dir)); err != nil {
		t.Fatal(err)
	}
	_, err := forward.Acquire(ctx, "forwardtest", "spool "+dir, config(t, p, "b", dir))
	if err == nil || !strings.Contains(err.Error(), "differ in their connection settings") {
		t.Fatalf("two settings on one spool in one config: %v", err)
	}
}
