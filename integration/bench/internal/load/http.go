package load

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// NewClient returns an HTTP client for conc concurrent workers. Without
// keepAlive every request opens a new connection, as Python's
// logging.handlers.HTTPHandler does.
func NewClient(conc int, keepAlive bool) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        conc,
			MaxIdleConnsPerHost: conc,
			DisableKeepAlives:   !keepAlive,
			DisableCompression:  true,
		},
	}
}

// Latencies summarises request durations.
type Latencies []time.Duration

// Percentile returns the p-th percentile (0 < p <= 100), nearest rank.
func (l Latencies) Percentile(p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	s := slices.Clone(l)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// BatchSpec describes an NDJSON load: Total records posted to URL in
// batches of Batch records by Conc workers.
type BatchSpec struct {
	URL   string
	Total int
	Batch int
	Conc  int
}

// Result is what a set of HTTP workers saw.
type Result struct {
	Requests  int           // answered 200
	Records   int           // in the requests answered 200
	Errors    int           // failed requests or other statuses
	FirstErr  error         // the first of them
	Elapsed   time.Duration // from the first request to the last answer
	Latencies Latencies     // of the requests answered 200
}

// NDJSONRecord appends record seq as a Go service's log/slog JSON
// handler writes it (the record of BenchmarkIngestNDJSON in
// handlers/ingest, with its sequence number in the message).
func NDJSONRecord(b []byte, seq int) []byte {
	return fmt.Appendf(b, `{"time":"2026-11-21T10:00:00.%09dZ","level":"INFO","msg":"request served seq=%d","logger":"web.requests","path":"/api/v1/items/%d","status":200,"duration":0.0123,"user":{"id":42,"roles":["a","b"]}}`+"\n",
		seq%1_000_000_000, seq, seq)
}

// PostBatches posts spec's records and waits for every answer.
func PostBatches(ctx context.Context, client *http.Client, spec BatchSpec) Result {
	batches := (spec.Total + spec.Batch - 1) / spec.Batch
	var next atomic.Int64
	return runWorkers(spec.Conc, func(w *worker) bool {
		k := int(next.Add(1) - 1)
		if k >= batches || ctx.Err() != nil {
			return false
		}
		w.body = w.body[:0]
		from, to := k*spec.Batch, min((k+1)*spec.Batch, spec.Total)
		for seq := from; seq < to; seq++ {
			w.body = NDJSONRecord(w.body, seq)
		}
		w.do(ctx, client, spec.URL, "application/x-ndjson", to-from)
		return true
	})
}

// FormSpec describes single-record posts: Conc workers post to URL for
// Duration, taking sequence numbers from Seq.
type FormSpec struct {
	URL      string
	Conc     int
	Duration time.Duration
	Seq      *atomic.Int64
}

// PostForms posts one Python LogRecord per request, form-encoded as
// logging.handlers.HTTPHandler sends it, until spec.Duration is over.
func PostForms(ctx context.Context, client *http.Client, spec FormSpec) Result {
	deadline := time.Now().Add(spec.Duration)
	return runWorkers(spec.Conc, func(w *worker) bool {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		w.body = FormRecord(w.body[:0], int(spec.Seq.Add(1)-1), time.Now())
		w.do(ctx, client, spec.URL, "application/x-www-form-urlencoded", 1)
		return true
	})
}

// FormRecord appends the body HTTPHandler posts for
// logging.getLogger("shop.views").info("user %s logged in from %s seq=%d", "alice", "10.0.0.7", seq)
// under Python 3.12: urllib.parse.urlencode(record.__dict__), every
// value str()-ed, in the order LogRecord sets its attributes.
func FormRecord(b []byte, seq int, now time.Time) []byte {
	created := float64(now.UnixNano()) / 1e9
	pairs := [...][2]string{
		{"name", "shop.views"},
		{"msg", "user %s logged in from %s seq=%d"},
		{"args", "('alice', '10.0.0.7', " + strconv.Itoa(seq) + ")"},
		{"levelname", "INFO"},
		{"levelno", "20"},
		{"pathname", "/srv/shop/views.py"},
		{"filename", "views.py"},
		{"module", "views"},
		{"exc_info", "None"},
		{"exc_text", "None"},
		{"stack_info", "None"},
		{"lineno", "42"},
		{"funcName", "login"},
		{"created", strconv.FormatFloat(created, 'f', 7, 64)},
		{"msecs", strconv.FormatFloat(float64(now.Nanosecond()/1e6), 'f', 1, 64)},
		{"relativeCreated", "5012.345678329468"},
		{"thread", "140234234234112"},
		{"threadName", "MainThread"},
		{"processName", "MainProcess"},
		{"process", "4242"},
		{"taskName", "None"},
	}
	for i, p := range pairs {
		if i > 0 {
			b = append(b, '&')
		}
		b = append(b, url.QueryEscape(p[0])...)
		b = append(b, '=')
		b = append(b, url.QueryEscape(p[1])...)
	}
	return b
}

// worker is one client goroutine's state.
type worker struct {
	body []byte
	res  Result
}

func (w *worker) do(ctx context.Context, client *http.Client, url, contentType string, records int) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(w.body))
	if err != nil {
		w.fail(err)
		return
	}
	req.Header.Set("Content-Type", contentType)
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		w.fail(err)
		return
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	switch {
	case err != nil:
		w.fail(err)
	case resp.StatusCode != http.StatusOK:
		w.fail(fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(body[:min(len(body), 200)])))
	default:
		w.res.Latencies = append(w.res.Latencies, time.Since(start))
		w.res.Requests++
		w.res.Records += records
	}
}

func (w *worker) fail(err error) {
	w.res.Errors++
	if w.res.FirstErr == nil {
		w.res.FirstErr = err
	}
}

// runWorkers runs conc workers calling step until it returns false, and
// merges their results.
func runWorkers(conc int, step func(*worker) bool) Result {
	workers := make([]*worker, conc)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range workers {
		w := &worker{}
		workers[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			for step(w) {
			}
		}()
	}
	wg.Wait()
	res := Result{Elapsed: time.Since(start)}
	for _, w := range workers {
		res.Requests += w.res.Requests
		res.Records += w.res.Records
		res.Errors += w.res.Errors
		if res.FirstErr == nil {
			res.FirstErr = w.res.FirstErr
		}
		res.Latencies = append(res.Latencies, w.res.Latencies...)
	}
	return res
}
