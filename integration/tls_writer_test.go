package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestTLSWriterToPeers sends records through the `tls` writer (with a
// spool, and once without) to rsyslog, syslog-ng and a second Caddy, and
// checks that every record arrives once, in order, with its facility,
// severity, app-name and message.
func TestTLSWriterToPeers(t *testing.T) {
	p := tlsNewPKI(t)
	type variant struct {
		name, spool string
		start       func(*testing.T, *tlsPKI) *tlsPeer
	}
	var variants []variant
	for _, ps := range tlsPeerStarters {
		variants = append(variants, variant{ps.name, "spool", ps.start})
	}
	variants = append(variants, variant{"caddy-memory", "", tlsStartCaddyPeer})
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			peer := v.start(t, p)
			o := tlsWriterOpts{addr: peer.Addr(), cert: p.ClientCert, key: p.ClientKey}
			if v.spool != "" {
				o.spool = t.TempDir()
			}
			s := startCaddy(t, tlsWriterCaddyfile(p, o))
			marker := tlsMarker("order")
			const n, batch = 400, 50
			for from := 0; from < n; from += batch {
				tlsPostRange(t, s.URL("/_applog"), marker, from, from+batch)
			}
			peer.waitArrivals(marker, n, 30*time.Second)
			time.Sleep(300 * time.Millisecond)
			got := peer.waitArrivals(marker, n, 0)
			if len(got) != n {
				t.Fatalf("%d of %d records arrived\ncaddy:\n%s", len(got), n, s.Output())
			}
			seqRE := regexp.MustCompile(regexp.QuoteMeta(marker) + ` seq=(\d+)`)
			for i, a := range got {
				m := seqRE.FindStringSubmatch(a.msg)
				seq := -1
				if m != nil {
					seq, _ = strconv.Atoi(m[1])
				}
				if seq != i {
					t.Fatalf("arrival %d is record %d: out of order or repeated: %q", i, seq, a.msg)
				}
				want := tlsLevels[i%len(tlsLevels)].severity
				if a.facility != "local3" || a.severity != want || a.app != "shop" {
					t.Errorf("record %d: facility %q severity %q app %q, want local3 %s shop", i, a.facility, a.severity, a.app, want)
				}
				var inner map[string]any
				if err := json.Unmarshal([]byte(a.msg), &inner); err != nil {
					t.Errorf("record %d: message is not the JSON entry: %v: %q", i, err, a.msg)
				} else if inner["msg"] != tlsRecordMsg(marker, i) || inner["logger"] != "applog.shop.cart" {
					t.Errorf("record %d: %v", i, inner)
				}
			}
			var ws tlsWriterSnap
			if !tlsWaitFor(5*time.Second, func() bool {
				ws, _ = tlsWriterStatus(t, s, peer.Addr())
				return ws.SpoolDepth == 0 && ws.Entries >= n
			}) || ws.Dropped != 0 {
				t.Errorf("status after delivery: %+v", ws)
			}
		})
	}
}

// TestTLSWriterWrongCertificate starts the writer with a client
// certificate from a CA the peer does not trust: the peer refuses it,
// Caddy says so naming the address, the records stay in the spool; after
// a reload with the right certificate every record arrives, once.
func TestTLSWriterWrongCertificate(t *testing.T) {
	p := tlsNewPKI(t)
	for _, ps := range tlsPeerStarters {
		t.Run(ps.name, func(t *testing.T) {
			peer := ps.start(t, p)
			o := tlsWriterOpts{addr: peer.Addr(), cert: p.RogueCert, key: p.RogueKey, spool: t.TempDir()}
			s := startCaddy(t, tlsWriterCaddyfile(p, o))
			marker := tlsMarker("rogue")
			const n = 20
			for seq := range n {
				tlsPostRange(t, s.URL("/_applog"), marker, seq, seq+1)
			}
			// The writer says why, naming the address.
			var errLine string
			if !tlsWaitFor(10*time.Second, func() bool {
				for _, line := range strings.Split(s.Output(), "\n") {
					if strings.Contains(line, peer.Addr()) && (strings.Contains(line, `"level":"error"`) || strings.Contains(line, `"level":"warn"`)) {
						errLine = line
						return true
					}
				}
				return false
			}) {
				t.Errorf("no error naming %s in Caddy's output:\n%s", peer.Addr(), s.Output())
			} else {
				t.Logf("writer error: %s", errLine)
			}
			// Give the writer several attempts (backoff 100ms-1s), then
			// nothing may have arrived and nothing may have left the spool.
			time.Sleep(2 * time.Second)
			if got := peer.waitArrivals(marker, 1, 0); len(got) != 0 {
				t.Errorf("%d records arrived with the rogue certificate", len(got))
			}
			ws, found := tlsWriterStatus(t, s, peer.Addr())
			if !found || ws.SpoolDepth != n || ws.Dropped != 0 {
				t.Errorf("status with the rogue certificate: found %v %+v, want spool_depth %d", found, ws, n)
			}
			if v, ok := tlsMetric(t, s, "caddy_applog_spool_depth", peer.Addr()); !ok || v != n {
				t.Errorf("caddy_applog_spool_depth = %v (found %v), want %d", v, ok, n)
			}

			o.cert, o.key = p.ClientCert, p.ClientKey
			s.reload(tlsWriterCaddyfile(p, o))
			want := make([]int, n)
			for i := range want {
				want[i] = i
			}
			ty := tlsWaitAll(peer, marker, want, 20*time.Second)
			if miss := ty.missing(want); len(miss) > 0 {
				t.Errorf("after the reload to the right certificate, missing %v\ncaddy:\n%s", miss, s.Output())
			}
			if dups, extra := ty.duplicates(); extra > 0 {
				t.Errorf("duplicates: %v", dups)
			}
			if !tlsWaitFor(5*time.Second, func() bool { ws, _ = tlsWriterStatus(t, s, peer.Addr()); return ws.SpoolDepth == 0 }) {
				t.Errorf("spool not empty after delivery: %+v", ws)
			}
		})
	}
}

// TestTLSWriterClientCertAutomate has the writer present a client
// certificate that Caddy's own tls app obtains from its internal CA (a
// `tls internal` site for the name); the peer trusts that CA's root.
func TestTLSWriterClientCertAutomate(t *testing.T) {
	p := tlsNewPKI(t)
	port, httpsPort := freePort(t), freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	o := tlsWriterOpts{
		addr: addr, automate: tlsClientName, spool: t.TempDir(),
		global: "\tauto_https disable_redirects\n\tskip_install_trust",
		sites:  fmt.Sprintf("\nhttps://%s:%d {\n\tbind 127.0.0.1\n\ttls internal\n\trespond \"ok\"\n}\n", tlsClientName, httpsPort),
	}
	s := startCaddy(t, tlsWriterCaddyfile(p, o))
	marker := tlsMarker("automate")
	const n = 10
	tlsPostRange(t, s.URL("/_applog"), marker, 0, n)

	root := filepath.Join(s.Dir, "data", "caddy", "pki", "authorities", "local", "root.crt")
	if !tlsWaitFor(20*time.Second, func() bool { _, err := os.Stat(root); return err == nil }) {
		t.Fatalf("Caddy's local CA root %s did not appear:\n%s", root, s.Output())
	}
	peer := tlsStartCaddyPeerCA(t, p, port, root)
	want := make([]int, n)
	for i := range want {
		want[i] = i
	}
	ty := tlsWaitAll(peer, marker, want, 30*time.Second)
	if miss := ty.missing(want); len(miss) > 0 {
		t.Fatalf("missing %v\ncaddy:\n%s", miss, s.Output())
	}
	if dups, extra := ty.duplicates(); extra > 0 {
		t.Errorf("duplicates: %v", dups)
	}
}
