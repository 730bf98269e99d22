package integration

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"sync/atomic"
	"testing"
	"time"
)

// TestTLSWriterPeerOutage stops the aggregator (rsyslog) for 30 seconds
// under continuous load and restarts it: every accepted record arrives;
// records sent twice may only be the last ones it had received before
// it stopped (the unacknowledged window).
func TestTLSWriterPeerOutage(t *testing.T) {
	// Parallel: most of it is waiting out an outage under a light load.
	t.Parallel()
	p := tlsNewPKI(t)
	peer := tlsStartRsyslog(t, p)
	s := startCaddy(t, tlsWriterCaddyfile(p, tlsWriterOpts{addr: peer.Addr(), cert: p.ClientCert, key: p.ClientKey, spool: t.TempDir()}))
	marker := tlsMarker("outage")
	load := tlsStartLoad(s.URL("/_applog"), marker, 2, 5*time.Millisecond)
	defer load.stop()

	time.Sleep(2 * time.Second)
	peer.stop()
	before := tlsCount(peer.outs(), marker).order
	atStop := load.acceptedNow()
	time.Sleep(30 * time.Second)
	ws, _ := tlsWriterStatus(t, s, peer.Addr())
	duringOutage := load.acceptedNow() - atStop
	t.Logf("outage: %d records had arrived, %d accepted during the 30s outage; status %+v", len(before), duringOutage, ws)
	if duringOutage == 0 || ws.SpoolDepth == 0 {
		t.Errorf("no load during the outage (%d accepted) or an empty spool (%+v)", duringOutage, ws)
	}
	peer.start()
	time.Sleep(2 * time.Second)
	accepted, failed := load.stop()
	if failed > 0 {
		t.Errorf("%d requests failed: %v", failed, load.lastErr)
	}
	ty := tlsWaitAll(peer, marker, accepted, 60*time.Second)
	t.Logf("outage: %d accepted, %d arrivals of %d distinct records", len(accepted), len(ty.order), len(ty.counts))
	if miss := ty.missing(accepted); len(miss) > 0 {
		t.Errorf("lost %d accepted records: %s", len(miss), tlsShort(miss))
	}
	tlsCheckDuplicates(t, "peer outage", before, ty)
	if !tlsWaitFor(5*time.Second, func() bool { ws, _ = tlsWriterStatus(t, s, peer.Addr()); return ws.SpoolDepth == 0 }) {
		t.Errorf("spool not empty after the peer came back: %+v", ws)
	}
}

// TestTLSWriterCrash SIGKILLs Caddy under load and starts it again on the
// same spool: no record that got an HTTP 2xx is lost; duplicates may only
// be the last records that had arrived before the crash.
func TestTLSWriterCrash(t *testing.T) {
	p := tlsNewPKI(t)
	peer := tlsStartSyslogNG(t, p)
	cfg := tlsWriterCaddyfile(p, tlsWriterOpts{addr: peer.Addr(), cert: p.ClientCert, key: p.ClientKey, spool: t.TempDir()})
	s := startCaddy(t, cfg)
	marker := tlsMarker("crash")
	load := tlsStartLoad(s.URL("/_applog"), marker, 3, 2*time.Millisecond)
	defer load.stop()

	time.Sleep(3 * time.Second)
	s.d.Kill()
	atKill := load.acceptedNow()
	time.Sleep(1500 * time.Millisecond) // the peer writes what it read
	before := tlsCount(peer.outs(), marker).order
	t.Logf("crash: %d accepted before SIGKILL, %d had arrived", atKill, len(before))

	s2 := startCaddy(t, cfg)
	load.retarget(s2.URL("/_applog"))
	time.Sleep(2 * time.Second)
	accepted, failed := load.stop()
	ty := tlsWaitAll(peer, marker, accepted, 30*time.Second)
	t.Logf("crash: %d accepted in all, %d requests failed while Caddy was down, %d arrivals of %d distinct records",
		len(accepted), failed, len(ty.order), len(ty.counts))
	if miss := ty.missing(accepted); len(miss) > 0 {
		t.Errorf("lost %d accepted records: %s\nafter restart:\n%s", len(miss), tlsShort(miss), s2.Output())
	}
	tlsCheckDuplicates(t, "SIGKILL", before, ty)
}

// TestTLSWriterReload reloads the config three times under load, keeping
// the spool: every accepted record arrives exactly once.
func TestTLSWriterReload(t *testing.T) {
	p := tlsNewPKI(t)
	peer := tlsStartCaddyPeer(t, p)
	o := tlsWriterOpts{addr: peer.Addr(), cert: p.ClientCert, key: p.ClientKey, spool: t.TempDir()}
	s := startCaddy(t, tlsWriterCaddyfile(p, o))
	marker := tlsMarker("reload")
	load := tlsStartLoad(s.URL("/_applog"), marker, 3, 2*time.Millisecond)
	defer load.stop()

	for i, v := range []struct{ extra, spoolOpts string }{
		{"\t\t\tdial_timeout 5s", "\t\t\t\tfsync 20ms"},
		{"\t\t\tdial_timeout 7s", "\t\t\t\tmax_size 512MiB"},
		{"", ""},
	} {
		time.Sleep(time.Second)
		o.extra, o.spoolOpts = v.extra, v.spoolOpts
		s.reload(tlsWriterCaddyfile(p, o))
		t.Logf("reload %d done, %d accepted so far", i+1, load.acceptedNow())
	}
	time.Sleep(time.Second)
	accepted, failed := load.stop()
	// A reload leaves a few posts without an answer (EOF, reset), with
	// any writer (see loadGenerator in rotate_writer_test.go): whether
	// their records were taken cannot be known, so they may arrive or
	// not, but at most once. A refusal is an error.
	if load.refused > 0 {
		t.Errorf("%d requests refused: %v", load.refused, load.lastErr)
	}
	ty := tlsWaitAll(peer, marker, accepted, 30*time.Second)
	t.Logf("reload: %d accepted, %d unanswered (%v), %d arrivals of %d distinct records",
		len(accepted), failed, load.lastErr, len(ty.order), len(ty.counts))
	if miss := ty.missing(accepted); len(miss) > 0 {
		t.Errorf("lost %d accepted records: %s", len(miss), tlsShort(miss))
	}
	if dups, extra := ty.duplicates(); extra > 0 {
		t.Errorf("%d duplicated records (%d extra copies): %s", len(dups), extra, tlsShort(dups))
	}
}

// TestTLSWriterSpoolFull fills a small spool while the peer is down, under
// each on_full policy, and accounts for every record: delivered plus
// dropped equals posted; drop_newest keeps the first records, drop_oldest
// the last; block holds requests up, loses nothing, and drains once the
// peer is back.
func TestTLSWriterSpoolFull(t *testing.T) {
	p := tlsNewPKI(t)
	const n = 500 // about 2.5 times what 64KiB holds (the smallest max_size)
	for _, policy := range []string{"drop_newest", "drop_oldest", "block"} {
		t.Run(policy, func(t *testing.T) {
			port := freePort(t)
			addr := fmt.Sprintf("127.0.0.1:%d", port)
			o := tlsWriterOpts{addr: addr, cert: p.ClientCert, key: p.ClientKey, spool: t.TempDir(),
				spoolOpts: "\t\t\t\tmax_size 64KiB\n\t\t\t\ton_full " + policy}
			s := startCaddy(t, tlsWriterCaddyfile(p, o))
			marker := tlsMarker("full-" + policy)

			// One record per request, one request at a time.
			var done atomic.Int64
			finished := make(chan error, 1)
			go func() {
				client := &http.Client{Timeout: time.Minute}
				for seq := range n {
					resp, err := client.Post(s.URL("/_applog"), "application/json", bytes.NewReader(tlsRecordJSON(marker, seq)))
					if err != nil {
						finished <- err
						return
					}
					resp.Body.Close()
					if resp.StatusCode != 200 {
						finished <- fmt.Errorf("record %d: %s", seq, resp.Status)
						return
					}
					done.Add(1)
				}
				finished <- nil
			}()

			if policy == "block" {
				// Requests stall once the spool is full, and stay stalled.
				time.Sleep(3 * time.Second)
				stalledAt := done.Load()
				time.Sleep(1500 * time.Millisecond)
				ws, _ := tlsWriterStatus(t, s, addr)
				t.Logf("block: %d of %d requests answered while the peer is down; status %+v", done.Load(), n, ws)
				if done.Load() != stalledAt || stalledAt >= n || stalledAt == 0 {
					t.Fatalf("block: %d then %d of %d requests answered: want a stall short of %d", stalledAt, done.Load(), n, n)
				}
			} else {
				select {
				case err := <-finished:
					if err != nil {
						t.Fatal(err)
					}
				case <-time.After(30 * time.Second):
					t.Fatalf("%s: posting %d records took over 30s (%d answered)", policy, n, done.Load())
				}
			}
			before, _ := tlsWriterStatus(t, s, addr)
			if before.SpoolDepth == 0 || (policy != "block" && before.Dropped == 0) {
				t.Errorf("with the peer down: %+v; want records spooled and (for drop policies) dropped", before)
			}

			peer := tlsStartCaddyPeerCA(t, p, port, p.CA)
			if policy == "block" {
				select {
				case err := <-finished:
					if err != nil {
						t.Fatal(err)
					}
				case <-time.After(30 * time.Second):
					t.Fatalf("block: requests still held up 30s after the peer came back (%d of %d answered)", done.Load(), n)
				}
			}
			var ws tlsWriterSnap
			var ty tlsTally
			tlsWaitFor(20*time.Second, func() bool {
				ws, _ = tlsWriterStatus(t, s, addr)
				ty = tlsCount(peer.outs(), marker)
				return len(ty.counts)+int(ws.Dropped) >= n && ws.SpoolDepth == 0
			})
			time.Sleep(time.Second)
			ws, _ = tlsWriterStatus(t, s, addr)
			ty = tlsCount(peer.outs(), marker)
			delivered := make([]int, 0, len(ty.counts))
			for seq := range ty.counts {
				delivered = append(delivered, seq)
			}
			sort.Ints(delivered)
			t.Logf("%s: posted %d, delivered %d, dropped %d (status %+v)", policy, n, len(delivered), ws.Dropped, ws)
			if dups, extra := ty.duplicates(); extra > 0 {
				t.Errorf("duplicates: %v", dups)
			}
			if len(delivered)+int(ws.Dropped) != n {
				t.Errorf("delivered %d + dropped %d != posted %d", len(delivered), ws.Dropped, n)
			}
			if m, ok := tlsMetric(t, s, "caddy_applog_writer_dropped_total", addr); !ok || int64(m) != ws.Dropped {
				t.Errorf("caddy_applog_writer_dropped_total = %v (found %v), status says %d", m, ok, ws.Dropped)
			}
			k := len(delivered)
			var want []int
			switch policy {
			case "drop_newest":
				for seq := range k {
					want = append(want, seq)
				}
			case "drop_oldest":
				for seq := n - k; seq < n; seq++ {
					want = append(want, seq)
				}
			case "block":
				for seq := range n {
					want = append(want, seq)
				}
				if ws.Dropped != 0 {
					t.Errorf("block dropped %d records", ws.Dropped)
				}
			}
			if !slices.Equal(delivered, want) {
				t.Errorf("%s delivered %s, want %s", policy, tlsShort(delivered), tlsShort(want))
			}
		})
	}
}
