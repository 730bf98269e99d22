package integration

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// otlpSenderCaddyfile is a Caddy that takes records of app `shop` at
// /_applog, writes them to sent.log and exports them with the `otlp`
// writer to endpoint through a spool.
func otlpSenderCaddyfile(endpoint, spool string) string {
	return `{
	admin 127.0.0.1:{{.AdminPort}}
	applog {
		facility shop
	}
	log tootlp {
		include applog.shop
		level DEBUG
		output otlp ` + endpoint + ` {
			resource_attribute deployment.environment.name itest
			spool ` + spool + `
			backoff 100ms 1s
		}
		format json
	}
	log sent {
		include applog.shop
		level DEBUG
		output file {{.Dir}}/sent.log
		format json
	}
}

http://127.0.0.1:{{.HTTPPort}} {
	bind 127.0.0.1
	handle /_applog {
		log_ingest shop
	}
	handle /status {
		log_status
	}
}
`
}

// otlpWriterStatus returns the otlp writer's entry for endpoint on A's
// status page.
func otlpWriterStatus(t *testing.T, s *server, endpoint string) (tlsWriterSnap, bool) {
	t.Helper()
	return writerStatus(t, s, "otlp", endpoint)
}

// otlpReceiverCaddyfile is a Caddy whose log_ingest takes OTLP exports
// at /otlp/v1/logs and writes app shop's records to received.log.
const otlpReceiverCaddyfile = `{
	admin 127.0.0.1:{{.AdminPort}}
	applog {
		facility shop {
			level debug
		}
	}
	log received {
		include applog.shop
		level DEBUG
		output file {{.Dir}}/received.log
		format json
	}
}

http://127.0.0.1:{{.HTTPPort}} {
	bind 127.0.0.1
	handle /otlp/* {
		log_ingest
	}
}
`

// otlpEntry is what this test compares of an entry, sent and received.
type otlpEntry struct {
	App       string `json:"app"`
	LevelName string `json:"level_name"`
	Msg       string `json:"msg"`
}

// TestOTLPWriterToCaddy sends records under load from Caddy A's otlp
// writer to Caddy B's log_ingest OTLP door; B is stopped for 10 s and
// started again on the same port. Every record A accepted arrives at B,
// with its app, level name and message as A wrote them.
func TestOTLPWriterToCaddy(t *testing.T) {
	// Parallel: most of it is waiting out an outage under a light load.
	t.Parallel()
	peer, received := otlpStartReceiver(t)
	port := peer.port
	endpoint := fmt.Sprintf("http://127.0.0.1:%d/otlp/v1/logs", port)
	a := startCaddy(t, otlpSenderCaddyfile(endpoint, t.TempDir()))
	marker := tlsMarker("otlp")
	load := tlsStartLoad(a.URL("/_applog"), marker, 2, 5*time.Millisecond)
	defer load.stop()

	time.Sleep(2 * time.Second)
	peer.stop()
	atStop := load.acceptedNow()
	time.Sleep(10 * time.Second)
	t.Logf("%d accepted before B stopped, %d during the 10 s it was down", atStop, load.acceptedNow()-atStop)
	if ws, ok := otlpWriterStatus(t, a, endpoint); !ok || ws.Errors == 0 || ws.SpoolDepth == 0 {
		t.Errorf("status during the outage: %+v (found %v), want errors and a spool depth", ws, ok)
	}
	peer.start()
	time.Sleep(2 * time.Second)
	accepted, failed := load.stop()
	if failed > 0 {
		t.Errorf("%d requests to A failed: %v", failed, load.lastErr)
	}
	ty := tlsWaitAll(peer, marker, accepted, 60*time.Second)
	dups, extra := ty.duplicates()
	t.Logf("%d accepted, %d arrivals of %d distinct records, %d sent twice (%d extra)", len(accepted), len(ty.order), len(ty.counts), len(dups), extra)
	if miss := ty.missing(accepted); len(miss) > 0 {
		t.Fatalf("lost %d accepted records: %s\nA:\n%s", len(miss), tlsShort(miss), a.Output())
	}
	if ws, _ := otlpWriterStatus(t, a, endpoint); ws.SpoolDepth != 0 || ws.Dropped != 0 || ws.Entries < int64(len(accepted)) {
		t.Errorf("status once delivered: %+v, want %d entries, none held or dropped", ws, len(accepted))
	}

	// Field by field: every record as A wrote it is what B wrote.
	seqRe := regexp.MustCompile(regexp.QuoteMeta(marker) + ` seq=(\d+)`)
	bySeq := func(es []otlpEntry) map[int]otlpEntry {
		m := map[int]otlpEntry{}
		for _, e := range es {
			if sm := seqRe.FindStringSubmatch(e.Msg); sm != nil {
				n, _ := strconv.Atoi(sm[1])
				m[n] = e
			}
		}
		return m
	}
	var sentEntries []otlpEntry
	for _, line := range tlsFileLines(filepath.Join(a.Dir, "sent.log")) {
		var e otlpEntry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("sent.log: %v: %s", err, line)
		}
		sentEntries = append(sentEntries, e)
	}
	sent, got := bySeq(sentEntries), bySeq(received())
	if len(sent) < len(accepted) {
		t.Fatalf("A wrote %d records to sent.log, accepted %d", len(sent), len(accepted))
	}
	for _, seq := range accepted {
		if s, g := sent[seq], got[seq]; s != g || g.App != "shop" || g.LevelName == "" {
			t.Fatalf("record %d: sent %+v, received %+v", seq, s, g)
		}
	}
}

// otlpStartReceiver starts Caddy B (otlpReceiverCaddyfile) on a port it
// keeps across restarts; received reads every run's received.log.
func otlpStartReceiver(t *testing.T) (peer *tlsPeer, received func() []otlpEntry) {
	port := freePort(t)
	var runs []*server
	startB := func() {
		s := &server{t: t, Dir: t.TempDir(), HTTPPort: port, AdminPort: freePort(t)}
		if err := os.WriteFile(filepath.Join(s.Dir, "Caddyfile"), s.render(otlpReceiverCaddyfile), 0o644); err != nil {
			t.Fatal(err)
		}
		s.launch(t)
		runs = append(runs, s)
	}
	received = func() []otlpEntry {
		var out []otlpEntry
		for _, s := range runs {
			for _, line := range tlsFileLines(filepath.Join(s.Dir, "received.log")) {
				var e otlpEntry
				if json.Unmarshal([]byte(line), &e) == nil {
					out = append(out, e)
				}
			}
		}
		return out
	}
	peer = &tlsPeer{name: "caddy-otlp", port: port, t: t, start: startB,
		stop: func() { runs[len(runs)-1].stop() },
		outs: func() []tlsArrival {
			var out []tlsArrival
			for _, e := range received() {
				out = append(out, tlsArrival{app: e.App, severity: e.LevelName, msg: e.Msg})
			}
			return out
		}}
	startB()
	return peer, received
}

// otlpPeers are the ends the durability tests deliver to: Caddy B's
// log_ingest OTLP door, and a real Collector writing to its file
// exporter. Each starts the peer and returns the writer's endpoint.
var otlpPeers = []struct {
	name  string
	start func(*testing.T) (*tlsPeer, string)
}{
	{"caddy", func(t *testing.T) (*tlsPeer, string) {
		peer, _ := otlpStartReceiver(t)
		return peer, fmt.Sprintf("http://127.0.0.1:%d/otlp/v1/logs", peer.port)
	}},
	{"otelcol", func(t *testing.T) (*tlsPeer, string) {
		col := otlpStartCollector(t)
		return col.peer(t), col.endpoint()
	}},
}

// TestOTLPWriterCrash SIGKILLs Caddy A under load and starts it again on
// the same spool: no record A accepted is lost, at either peer.
func TestOTLPWriterCrash(t *testing.T) {
	for _, p := range otlpPeers {
		t.Run(p.name, func(t *testing.T) { otlpWriterCrash(t, p.start) })
	}
}

func otlpWriterCrash(t *testing.T, startPeer func(*testing.T) (*tlsPeer, string)) {
	peer, endpoint := startPeer(t)
	cfg := otlpSenderCaddyfile(endpoint, t.TempDir())
	a := startCaddy(t, cfg)
	marker := tlsMarker("otlpcrash")
	load := tlsStartLoad(a.URL("/_applog"), marker, 3, 2*time.Millisecond)
	defer load.stop()
	time.Sleep(3 * time.Second)
	a.d.Kill()
	atKill := load.acceptedNow()
	a2 := startCaddy(t, cfg)
	load.retarget(a2.URL("/_applog"))
	time.Sleep(2 * time.Second)
	accepted, failed := load.stop()
	ty := tlsWaitAll(peer, marker, accepted, 60*time.Second)
	dups, extra := ty.duplicates()
	t.Logf("%d accepted before SIGKILL, %d in all (%d requests failed while A was down), %d arrivals of %d distinct, %d sent twice (%d extra)",
		atKill, len(accepted), failed, len(ty.order), len(ty.counts), len(dups), extra)
	if miss := ty.missing(accepted); len(miss) > 0 {
		t.Errorf("lost %d accepted records: %s\nafter restart:\n%s", len(miss), tlsShort(miss), a2.Output())
	}
}

// TestOTLPWriterReload reloads A three times under load with changed
// writer settings, keeping the spool: every record arrives exactly once,
// at either peer.
func TestOTLPWriterReload(t *testing.T) {
	for _, p := range otlpPeers {
		t.Run(p.name, func(t *testing.T) { otlpWriterReload(t, p.start) })
	}
}

func otlpWriterReload(t *testing.T, startPeer func(*testing.T) (*tlsPeer, string)) {
	peer, endpoint := startPeer(t)
	spool := t.TempDir()
	a := startCaddy(t, otlpSenderCaddyfile(endpoint, spool))
	marker := tlsMarker("otlpreload")
	load := tlsStartLoad(a.URL("/_applog"), marker, 3, 2*time.Millisecond)
	defer load.stop()
	for i, extra := range []string{"timeout 5s", "compression none", "batch_size 64KiB"} {
		time.Sleep(time.Second)
		cfg := strings.Replace(otlpSenderCaddyfile(endpoint, spool), "\t\t\tbackoff 100ms 1s\n", "\t\t\tbackoff 100ms 1s\n\t\t\t"+extra+"\n", 1)
		if !strings.Contains(cfg, "\t"+extra+"\n") {
			t.Fatalf("reload %d: the option was not put in the config", i+1)
		}
		a.reload(cfg)
		t.Logf("reload %d (%s) done, %d accepted so far", i+1, extra, load.acceptedNow())
	}
	time.Sleep(time.Second)
	accepted, failed := load.stop()
	if load.refused > 0 {
		t.Errorf("%d requests refused: %v", load.refused, load.lastErr)
	}
	ty := tlsWaitAll(peer, marker, accepted, 30*time.Second)
	t.Logf("%d accepted, %d unanswered (%v), %d arrivals of %d distinct records", len(accepted), failed, load.lastErr, len(ty.order), len(ty.counts))
	if miss := ty.missing(accepted); len(miss) > 0 {
		t.Errorf("lost %d accepted records: %s", len(miss), tlsShort(miss))
	}
	if dups, extra := ty.duplicates(); extra > 0 {
		t.Errorf("%d records arrived twice across reloads (%d extra): %s", len(dups), extra, tlsShort(dups))
	}
}

// TestOTLPWriterCollector puts a real OpenTelemetry Collector
// (integration/otelcol: otlp receiver, contrib file exporter) after
// Caddy A's otlp writer and stops the Collector for 30 s under load.
// The file exporter writes an export before the Collector answers it,
// so a record missing from its file is one the writer gave up. Every
// record A accepted is in the file, with its app, level name, message
// and time as A wrote them.
func TestOTLPWriterCollector(t *testing.T) {
	// Parallel: most of it is waiting out an outage under a light load.
	t.Parallel()
	col := otlpStartCollector(t)
	peer := col.peer(t)
	a := startCaddy(t, otlpSenderCaddyfile(col.endpoint(), t.TempDir()))
	marker := tlsMarker("otlpcol")
	load := tlsStartLoad(a.URL("/_applog"), marker, 2, 5*time.Millisecond)
	defer load.stop()
	time.Sleep(2 * time.Second)
	peer.stop()
	atStop := load.acceptedNow()
	time.Sleep(30 * time.Second)
	t.Logf("%d accepted before the Collector stopped, %d during the 30 s it was down", atStop, load.acceptedNow()-atStop)
	peer.start()
	time.Sleep(2 * time.Second)
	accepted, failed := load.stop()
	if failed > 0 {
		t.Errorf("%d requests to A failed: %v", failed, load.lastErr)
	}
	ty := tlsWaitAll(peer, marker, accepted, 90*time.Second)
	dups, extra := ty.duplicates()
	t.Logf("%d accepted, %d arrivals of %d distinct records, %d sent twice (%d extra)", len(accepted), len(ty.order), len(ty.counts), len(dups), extra)
	if miss := ty.missing(accepted); len(miss) > 0 {
		t.Fatalf("lost %d accepted records: %s\nA:\n%s", len(miss), tlsShort(miss), a.Output())
	}
	got := map[string]otlpFileRecord{}
	for _, r := range col.records(t) {
		if body, ok := r.Body.(string); ok {
			got[body] = r
		}
	}
	compared := 0
	for _, line := range tlsFileLines(filepath.Join(a.Dir, "sent.log")) {
		var s struct {
			otlpEntry
			TS float64 `json:"ts"`
		}
		if err := json.Unmarshal([]byte(line), &s); err != nil {
			t.Fatalf("sent.log: %v: %s", err, line)
		}
		g, ok := got[s.Msg]
		if !ok {
			continue // accepted only as the load stopped: counted above
		}
		app, _ := g.Resource["service.name"].(string)
		// ts is seconds in a float64 (Caddy's default): a microsecond.
		if app != s.App || g.SeverityText != s.LevelName || math.Abs(float64(g.Time)/1e9-s.TS) > 1e-6 {
			t.Fatalf("sent %s\nthe file exporter has app %q, severity text %q, time %d", line, app, g.SeverityText, g.Time)
		}
		compared++
	}
	if compared < len(accepted) {
		t.Errorf("compared %d records of sent.log with the file exporter's, want all %d accepted", compared, len(accepted))
	}
}

// TestOTLPWriterPartialSuccess sends records of which B's facility
// refuses those below info (log_ingest answers with OTLP's partial
// success): A counts them dropped, never sends them again, and every
// other record arrives.
func TestOTLPWriterPartialSuccess(t *testing.T) {
	b := startCaddy(t, strings.Replace(otlpReceiverCaddyfile, "level debug", "level info", 1))
	endpoint := b.URL("/otlp/v1/logs")
	a := startCaddy(t, otlpSenderCaddyfile(endpoint, t.TempDir()))
	marker := tlsMarker("otlppartial")
	const n = 400
	tlsPostRange(t, a.URL("/_applog"), marker, 0, n)
	var want []int
	debug := 0
	for seq := range n {
		if tlsLevels[seq%len(tlsLevels)].level == "debug" {
			debug++
			continue
		}
		want = append(want, seq)
	}
	var ty tlsTally
	tlsWaitFor(30*time.Second, func() bool {
		var arrivals []tlsArrival
		for _, line := range tlsFileLines(filepath.Join(b.Dir, "received.log")) {
			var e otlpEntry
			if json.Unmarshal([]byte(line), &e) == nil {
				arrivals = append(arrivals, tlsArrival{msg: e.Msg})
			}
		}
		ty = tlsCount(arrivals, marker)
		return len(ty.missing(want)) == 0
	})
	if miss := ty.missing(want); len(miss) > 0 {
		t.Fatalf("lost %d records: %s", len(miss), tlsShort(miss))
	}
	if len(ty.counts) != len(want) {
		t.Errorf("%d distinct records arrived, want the %d at info or above", len(ty.counts), len(want))
	}
	var ws tlsWriterSnap
	if !tlsWaitFor(10*time.Second, func() bool {
		ws, _ = otlpWriterStatus(t, a, endpoint)
		return ws.SpoolDepth == 0 && ws.Dropped == int64(debug)
	}) {
		t.Errorf("status %+v, want %d dropped (the debug records B refused) and an empty spool", ws, debug)
	}
	if !strings.Contains(a.Output(), "the OTLP endpoint refused some records") {
		t.Errorf("the partial success was not logged:\n%s", a.Output())
	}
}
