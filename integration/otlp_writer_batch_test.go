package integration

import (
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	collogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"
)

// otlpEndpoint is an OTLP/HTTP logs endpoint in the test process: it
// answers each export with admit's status (200: decoded and kept), and
// records every export it kept (its records' bodies and when it came)
// and every status it answered.
type otlpEndpoint struct {
	srv   *httptest.Server
	admit func(r *http.Request) int

	mu       sync.Mutex
	exports  []otlpExport
	statuses []int
}

type otlpExport struct {
	at     time.Time
	bodies []string
}

func startOTLPEndpoint(t *testing.T, admit func(r *http.Request) int) *otlpEndpoint {
	t.Helper()
	e := &otlpEndpoint{admit: admit}
	e.srv = httptest.NewServer(http.HandlerFunc(e.serve))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *otlpEndpoint) serve(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	if code := e.admit(r); code != http.StatusOK {
		e.mu.Lock()
		e.statuses = append(e.statuses, code)
		e.mu.Unlock()
		http.Error(w, http.StatusText(code), code)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	data, err := io.ReadAll(body)
	var req collogs.ExportLogsServiceRequest
	if err == nil {
		err = proto.Unmarshal(data, &req)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ex := otlpExport{at: at}
	for _, rl := range req.ResourceLogs {
		for _, sl := range rl.ScopeLogs {
			for _, lr := range sl.LogRecords {
				ex.bodies = append(ex.bodies, lr.Body.GetStringValue())
			}
		}
	}
	e.mu.Lock()
	e.exports = append(e.exports, ex)
	e.statuses = append(e.statuses, http.StatusOK)
	e.mu.Unlock()
	out, _ := proto.Marshal(&collogs.ExportLogsServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// tally counts marker's records in every export kept so far.
func (e *otlpEndpoint) tally(marker string) tlsTally {
	e.mu.Lock()
	defer e.mu.Unlock()
	var arrivals []tlsArrival
	for _, ex := range e.exports {
		for _, b := range ex.bodies {
			arrivals = append(arrivals, tlsArrival{msg: b})
		}
	}
	return tlsCount(arrivals, marker)
}

// answered returns how many requests got status code.
func (e *otlpEndpoint) answered(code int) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, c := range e.statuses {
		if c == code {
			n++
		}
	}
	return n
}

// since returns the exports kept after the first n.
func (e *otlpEndpoint) since(n int) []otlpExport {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.exports[min(n, len(e.exports)):])
}

func (e *otlpEndpoint) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.exports)
}

// otlpSenderWith is otlpSenderCaddyfile with extra options in the otlp
// writer's block.
func otlpSenderWith(t *testing.T, endpoint, spool string, options ...string) string {
	t.Helper()
	const at = "\t\t\tbackoff 100ms 1s\n"
	cfg := otlpSenderCaddyfile(endpoint, spool)
	if !strings.Contains(cfg, at) {
		t.Fatal("otlpSenderCaddyfile has no backoff line to put options after")
	}
	extra := at
	for _, o := range options {
		extra += "\t\t\t" + o + "\n"
	}
	return strings.Replace(cfg, at, extra, 1)
}

// TestOTLPWriterAuthKept: an endpoint that refuses the writer's
// credentials (401 without an API key, 403 with a revoked one) makes
// Caddy keep every entry in its spool, counting errors and saying why;
// a reload with the right key delivers them all, once each.
func TestOTLPWriterAuthKept(t *testing.T) {
	ep := startOTLPEndpoint(t, func(r *http.Request) int {
		switch r.Header.Get("X-Api-Key") {
		case "":
			return http.StatusUnauthorized
		case "new":
			return http.StatusOK
		default:
			return http.StatusForbidden
		}
	})
	endpoint := ep.srv.URL + "/v1/logs"
	spool := t.TempDir()
	a := startCaddy(t, otlpSenderWith(t, endpoint, spool))
	marker := tlsMarker("otlpauth")
	const n = 100

	// Without a key: 401.
	tlsPostRange(t, a.URL("/_applog"), marker, 0, n)
	if !tlsWaitFor(20*time.Second, func() bool { return ep.answered(http.StatusUnauthorized) >= 3 }) {
		t.Fatalf("the endpoint answered 401 %d times in 20 s, want 3 attempts", ep.answered(http.StatusUnauthorized))
	}
	ws, _ := otlpWriterStatus(t, a, endpoint)
	if ws.Errors == 0 || ws.SpoolDepth != n || ws.Dropped != 0 {
		t.Errorf("status after 401s: %+v, want errors, %d held, none dropped", ws, n)
	}
	if !strings.Contains(a.Output(), "refuses the writer's credentials") {
		t.Errorf("the 401s were not logged as the writer's credentials:\n%s", a.Output())
	}

	// A revoked key: 403.
	a.reload(otlpSenderWith(t, endpoint, spool, "header X-Api-Key old"))
	tlsPostRange(t, a.URL("/_applog"), marker, n, 2*n)
	if !tlsWaitFor(20*time.Second, func() bool { return ep.answered(http.StatusForbidden) >= 3 }) {
		t.Fatalf("the endpoint answered 403 %d times in 20 s, want 3 attempts", ep.answered(http.StatusForbidden))
	}
	if ws, _ := otlpWriterStatus(t, a, endpoint); ws.SpoolDepth != 2*n || ws.Dropped != 0 {
		t.Errorf("status after 403s: %+v, want %d held, none dropped", ws, 2*n)
	}
	if got := ep.count(); got != 0 {
		t.Fatalf("the endpoint kept %d exports while refusing them", got)
	}

	// The right key: everything arrives.
	a.reload(otlpSenderWith(t, endpoint, spool, "header X-Api-Key new"))
	tlsPostRange(t, a.URL("/_applog"), marker, 2*n, 3*n)
	want := make([]int, 3*n)
	for i := range want {
		want[i] = i
	}
	var ty tlsTally
	tlsWaitFor(30*time.Second, func() bool {
		ty = ep.tally(marker)
		return len(ty.missing(want)) == 0
	})
	if miss := ty.missing(want); len(miss) > 0 {
		t.Fatalf("lost %d records: %s\n%s", len(miss), tlsShort(miss), a.Output())
	}
	if dups, extra := ty.duplicates(); extra > 0 {
		t.Errorf("%d records arrived twice (%d extra): %s", len(dups), extra, tlsShort(dups))
	}
	if !tlsWaitFor(10*time.Second, func() bool {
		ws, _ = otlpWriterStatus(t, a, endpoint)
		return ws.SpoolDepth == 0 && ws.Entries == 3*n
	}) || ws.Dropped != 0 {
		t.Errorf("status once delivered: %+v, want %d entries, none held or dropped", ws, 3*n)
	}
	t.Logf("401 answered %d times, 403 %d times; %d exports delivered %d records", ep.answered(http.StatusUnauthorized), ep.answered(http.StatusForbidden), ep.count(), 3*n)
}

// TestOTLPWriterBatches checks exports by count and time through the
// real binary, with batch_records 10 and batch_timeout 250ms (long
// enough that a burst of one request's records, logged within a few
// milliseconds, is never split by the clock on a busy machine):
//
//   - a burst of 25 records in one request goes as 10, 10 and 5: full
//     exports at once, the rest after the timeout;
//   - a slow trickle (one record each 3 timeouts) goes one record an
//     export, each no sooner than the timeout after it was posted and
//     not much later.
func TestOTLPWriterBatches(t *testing.T) {
	const timeout = 250 * time.Millisecond
	ep := startOTLPEndpoint(t, func(*http.Request) int { return http.StatusOK })
	endpoint := ep.srv.URL + "/v1/logs"
	// A grouped fsync, so that the burst is not spread by 25 fsyncs.
	spool := t.TempDir() + " {\n\t\t\t\tfsync 100ms\n\t\t\t}"
	a := startCaddy(t, otlpSenderWith(t, endpoint, spool, "batch_records 10", fmt.Sprintf("batch_timeout %v", timeout)))
	marker := tlsMarker("otlpbatch")

	start := time.Now()
	tlsPostRange(t, a.URL("/_applog"), marker, 0, 25)
	tlsWaitFor(10*time.Second, func() bool { return ep.count() >= 3 })
	burst := ep.since(0)
	var sizes []int
	for _, ex := range burst {
		sizes = append(sizes, len(ex.bodies))
	}
	if !slices.Equal(sizes, []int{10, 10, 5}) {
		t.Fatalf("a burst of 25 went in exports of %v, want 10, 10, 5", sizes)
	}
	if d := burst[1].at.Sub(start); d >= timeout {
		t.Errorf("the second full export came %v after the burst was posted: a full export does not wait", d)
	}
	if d := burst[2].at.Sub(start); d < timeout {
		t.Errorf("the last 5 came %v after the burst was posted, before the %v timeout", d, timeout)
	}

	const trickle = 6
	var lates []time.Duration
	for i := range trickle {
		before := ep.count()
		posted := time.Now()
		tlsPostRange(t, a.URL("/_applog"), marker, 25+i, 26+i)
		time.Sleep(3 * timeout)
		got := ep.since(before)
		if len(got) != 1 || len(got[0].bodies) != 1 {
			t.Fatalf("trickle record %d: %d exports in 3 timeouts after it was posted, want one of 1", i, len(got))
		}
		late := got[0].at.Sub(posted)
		lates = append(lates, late)
		if late < timeout || late > timeout+time.Second {
			t.Errorf("trickle record %d came %v after it was posted, want the %v timeout (at most 1 s more)", i, late, timeout)
		}
	}
	t.Logf("burst of 25: exports of %v; trickle: each came after %v", sizes, lates)
	want := make([]int, 25+trickle)
	for i := range want {
		want[i] = i
	}
	ty := ep.tally(marker)
	if miss := ty.missing(want); len(miss) > 0 {
		t.Errorf("lost %d records: %s", len(miss), tlsShort(miss))
	}
	if dups, extra := ty.duplicates(); extra > 0 {
		t.Errorf("%d records arrived twice (%d extra)", len(dups), extra)
	}
}

// TestOTLPWriterExitSendsAtOnce: a batch waiting out a long
// batch_timeout is sent as Caddy exits, not left for the timeout (nor
// in the spool for the next start).
func TestOTLPWriterExitSendsAtOnce(t *testing.T) {
	ep := startOTLPEndpoint(t, func(*http.Request) int { return http.StatusOK })
	a := startCaddy(t, otlpSenderWith(t, ep.srv.URL+"/v1/logs", t.TempDir(), "batch_records 10", "batch_timeout 10m"))
	marker := tlsMarker("otlpexit")
	tlsPostRange(t, a.URL("/_applog"), marker, 0, 5)
	time.Sleep(500 * time.Millisecond)
	if n := ep.count(); n != 0 {
		t.Fatalf("%d exports before the 10m timeout of a batch of 5", n)
	}
	start := time.Now()
	a.stop()
	took := time.Since(start)
	ty := ep.tally(marker)
	if miss := ty.missing([]int{0, 1, 2, 3, 4}); len(miss) > 0 {
		t.Fatalf("Caddy exited in %v without sending %v", took, miss)
	}
	t.Logf("Caddy exited in %v, having sent the batch in %d export(s)", took, ep.count())
}
