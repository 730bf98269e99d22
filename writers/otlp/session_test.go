package otlp

import (
	"compress/gzip"
	"context"
	stdtls "crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"

	collogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"

	"github.com/caddy-applog/caddy-applog/internal/forward"
	"github.com/caddy-applog/caddy-applog/internal/forward/forwardtest"
	"github.com/caddy-applog/caddy-applog/internal/testpki"
)

// collector is an in-process OTLP/HTTP logs endpoint over mutual TLS:
// it decodes each ExportLogsServiceRequest as a Collector's otlp
// receiver does and keeps every record's body.
type collector struct {
	srv *httptest.Server
	ca  *testpki.CA
	cli stdtls.Certificate

	mu         sync.Mutex
	got        []string
	exports    []*collogs.ExportLogsServiceRequest
	headers    []http.Header
	down       bool
	breakAfter int  // > 0: the request that reaches it is cut off unanswered
	rejects    bool // refuse records marked forwardtest.RejectPrefix, with a partial success
	maxRecords int  // > 0: an export of more records is a 413
	// answer, if set, answers each request instead.
	answer func(w http.ResponseWriter) bool
}

func startCollector(t testing.TB) *collector {
	t.Helper()
	c := &collector{ca: testpki.NewCA(t, "ca")}
	c.cli = c.ca.Issue(t, "client", x509.ExtKeyUsageClientAuth)
	c.srv = httptest.NewUnstartedServer(http.HandlerFunc(c.serve))
	c.srv.TLS = &stdtls.Config{
		Certificates: []stdtls.Certificate{c.ca.Issue(t, "localhost", x509.ExtKeyUsageServerAuth)},
		ClientAuth:   stdtls.RequireAndVerifyClientCert,
		ClientCAs:    c.ca.Pool,
	}
	c.srv.StartTLS()
	t.Cleanup(c.srv.Close)
	return c
}

func (c *collector) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/logs" || r.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "not an OTLP/HTTP protobuf logs export", http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	down, answer := c.down, c.answer
	c.mu.Unlock()
	if down {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	if answer != nil && answer(w) {
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
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req collogs.ExportLogsServiceRequest
	if err := proto.Unmarshal(data, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.maxRecords > 0 {
		n := 0
		for _, rl := range req.ResourceLogs {
			for _, sl := range rl.ScopeLogs {
				n += len(sl.LogRecords)
			}
		}
		if n > c.maxRecords {
			http.Error(w, "export too large", http.StatusRequestEntityTooLarge)
			return
		}
	}
	c.exports = append(c.exports, &req)
	c.headers = append(c.headers, r.Header.Clone())
	var rejected int64
	for _, rl := range req.ResourceLogs {
		for _, sl := range rl.ScopeLogs {
			for _, lr := range sl.LogRecords {
				b := lr.Body.GetStringValue()
				if c.rejects && strings.HasPrefix(b, forwardtest.RejectPrefix) {
					rejected++
					continue
				}
				c.got = append(c.got, b)
			}
		}
	}
	if c.breakAfter > 0 && len(c.got) >= c.breakAfter {
		// Received but never answered: the client sends them again.
		c.breakAfter = 0
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
			return
		}
	}
	resp := &collogs.ExportLogsServiceResponse{}
	if rejected > 0 {
		resp.PartialSuccess = &collogs.ExportLogsPartialSuccess{RejectedLogRecords: rejected, ErrorMessage: "marked for refusal"}
	}
	out, _ := proto.Marshal(resp)
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func (c *collector) Transport(t testing.TB) forward.Transport {
	return &transport{
		endpoint: c.srv.URL + "/v1/logs",
		client: &http.Client{Transport: &http.Transport{TLSClientConfig: &stdtls.Config{
			RootCAs: c.ca.Pool, ServerName: "localhost", Certificates: []stdtls.Certificate{c.cli}, MinVersion: stdtls.VersionTLS12,
		}}},
		gzip:    true,
		timeout: 5 * time.Second,
		mapper:  &mapper{hostname: "test-host", now: time.Now},
		log:     zaptest.NewLogger(t),
	}
}

func (c *collector) Name() string { return c.srv.URL }

func (c *collector) Received() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.got...)
}

func (c *collector) SetDown(down bool) { c.mu.Lock(); c.down = down; c.mu.Unlock() }
func (c *collector) BreakAfter(n int)  { c.mu.Lock(); c.breakAfter = n; c.mu.Unlock() }
func (c *collector) RejectsMarked()    {}

// TestForward runs internal/forward's conformance suite over OTLP/HTTP
// with mutual TLS.
func TestForward(t *testing.T) {
	forwardtest.Run(t, func(t *testing.T) forwardtest.Peer {
		c := startCollector(t)
		c.rejects = true
		return c
	})
}

// TestAnswers checks what each kind of answer does to a batch: settled,
// refused for good, or an error asking for a retry after Retry-After.
func TestAnswers(t *testing.T) {
	recs := []forward.Record{{Data: []byte(`{"msg":"a"}`)}, {Data: []byte(`{"msg":"b"}`)}, {Data: []byte(`{"msg":"c"}`)}}
	for _, tc := range []struct {
		name          string
		status        int
		header        string
		body          []byte
		settled, rejd int64
		retryAfter    time.Duration
		wantErr       bool
		is            error // the error's class, if any
	}{
		{name: "ok", status: 200, settled: 3},
		{name: "partial", status: 200, body: mustMarshal(&collogs.ExportLogsServiceResponse{PartialSuccess: &collogs.ExportLogsPartialSuccess{RejectedLogRecords: 2}}), settled: 3, rejd: 2},
		{name: "partial beyond the batch", status: 200, body: mustMarshal(&collogs.ExportLogsServiceResponse{PartialSuccess: &collogs.ExportLogsPartialSuccess{RejectedLogRecords: 9}}), settled: 3, rejd: 3},
		{name: "bad request", status: 400, settled: 3, rejd: 3},
		{name: "unprocessable", status: 422, settled: 3, rejd: 3},
		{name: "gone", status: 410, settled: 3, rejd: 3},
		// About the writer, not its records: kept for a reload.
		{name: "unauthorized", status: 401, wantErr: true, is: errCredentials},
		{name: "forbidden", status: 403, wantErr: true, is: errCredentials},
		{name: "proxy auth", status: 407, wantErr: true, is: errCredentials},
		{name: "not found", status: 404, wantErr: true, is: errNoReceiver},
		{name: "misdirected", status: 421, wantErr: true, is: errMisdirected},
		{name: "too many", status: 429, header: "7", wantErr: true, retryAfter: 7 * time.Second},
		{name: "bad gateway", status: 502, wantErr: true},
		{name: "unavailable date", status: 503, header: time.Now().Add(time.Hour).UTC().Format(http.TimeFormat), wantErr: true, retryAfter: time.Hour},
		{name: "gateway timeout", status: 504, wantErr: true},
		{name: "internal error", status: 500, wantErr: true},
		{name: "request timeout", status: 408, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := startCollector(t)
			c.answer = func(w http.ResponseWriter) bool {
				if tc.header != "" {
					w.Header().Set("Retry-After", tc.header)
				}
				w.Header().Set("Content-Type", "application/x-protobuf")
				w.WriteHeader(tc.status)
				_, _ = w.Write(tc.body)
				return true
			}
			sess, err := c.Transport(t).Connect(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer sess.Close(true)
			err = sess.Send(recs)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Send: %v, want error %v", err, tc.wantErr)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("Send: %v, want it to be %v", err, tc.is)
			}
			if err != nil {
				if !strings.Contains(err.Error(), http.StatusText(tc.status)) {
					t.Errorf("error %q does not name the status", err)
				}
				if tc.retryAfter > 0 {
					// forward.RetryAfter's text carries the wait. A date
					// has whole seconds and the clock moves on, so the
					// wait may be a few seconds under the one asked.
					m := regexp.MustCompile(`\(retry after ([^)]+)\)`).FindStringSubmatch(err.Error())
					if m == nil {
						t.Fatalf("error %q carries no Retry-After wait", err)
					}
					got, perr := time.ParseDuration(m[1])
					if perr != nil || got > tc.retryAfter || got < tc.retryAfter-5*time.Second {
						t.Errorf("error %q: wait %s, want %s (up to 5 s less)", err, m[1], tc.retryAfter)
					}
				} else if strings.Contains(err.Error(), "retry after") {
					t.Errorf("error %q asks for a wait no header gave", err)
				}
			}
			ack, err := sess.Acked(0)
			if err != nil {
				t.Fatal(err)
			}
			if ack.Settled != tc.settled || ack.Rejected != tc.rejd {
				t.Errorf("ack %+v, want settled %d rejected %d", ack, tc.settled, tc.rejd)
			}
		})
	}
}

func mustMarshal(m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

func TestRetryAfterHeader(t *testing.T) {
	now := time.Date(2026, 12, 5, 3, 0, 0, 0, time.UTC)
	for h, want := range map[string]time.Duration{
		"":                              0,
		"12":                            12 * time.Second,
		"-3":                            0,
		"soon":                          0,
		"Sat, 05 Dec 2026 03:00:30 GMT": 30 * time.Second,
		"Sat, 05 Dec 2026 02:00:00 GMT": 0,
	} {
		if got := retryAfter(h, now); got != want {
			t.Errorf("Retry-After %q: %v, want %v", h, got, want)
		}
	}
}

// TestGzip checks the export is gzip'd when asked and plain when not.
func TestGzip(t *testing.T) {
	for _, gz := range []bool{true, false} {
		c := startCollector(t)
		var enc string
		c.answer = func(w http.ResponseWriter) bool { return false }
		tr := c.Transport(t).(*transport)
		tr.gzip = gz
		sess, _ := tr.Connect(context.Background())
		if err := sess.Send([]forward.Record{{Data: []byte("plain line")}}); err != nil {
			t.Fatal(err)
		}
		sess.Close(true)
		c.mu.Lock()
		enc = c.headers[0].Get("Content-Encoding")
		c.mu.Unlock()
		if (enc == "gzip") != gz {
			t.Errorf("gzip %v: Content-Encoding %q", gz, enc)
		}
		if got := c.Received(); len(got) != 1 || got[0] != "plain line" {
			t.Errorf("received %q", got)
		}
	}
}

// TestTooLarge checks an export the endpoint finds too large (413) is
// sent again in halves, in order, and a single record too large is
// refused for good.
func TestTooLarge(t *testing.T) {
	var recs []forward.Record
	var want []string
	for i := range 7 {
		want = append(want, fmt.Sprintf("r%d", i))
		recs = append(recs, forward.Record{Data: []byte(want[i])})
	}
	for _, max := range []int{2, 1} {
		c := startCollector(t)
		c.maxRecords = max
		sess, _ := c.Transport(t).Connect(context.Background())
		if err := sess.Send(recs); err != nil {
			t.Fatal(err)
		}
		ack, _ := sess.Acked(0)
		sess.Close(true)
		if got := c.Received(); !slices.Equal(got, want) || ack != (forward.Ack{Settled: 7}) {
			t.Errorf("at most %d a request: received %q, ack %+v", max, got, ack)
		}
	}
	c := startCollector(t)
	c.maxRecords = 1
	sess, _ := c.Transport(t).Connect(context.Background())
	defer sess.Close(true)
	c.answer = func(w http.ResponseWriter) bool {
		http.Error(w, "too large", http.StatusRequestEntityTooLarge)
		return true
	}
	if err := sess.Send(recs[:3]); err != nil {
		t.Fatal(err)
	}
	if ack, _ := sess.Acked(0); ack != (forward.Ack{Settled: 3, Rejected: 3}) {
		t.Errorf("records each too large: ack %+v, want all 3 refused", ack)
	}
}
