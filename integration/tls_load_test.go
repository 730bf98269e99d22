package integration

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// tlsWriterOpts shapes the sending Caddy's `output tls` block.
type tlsWriterOpts struct {
	addr      string // the peer
	cert, key string // client certificate; ignored with automate
	automate  string // client_cert_automate <name>
	spool     string // spool folder; "" for none
	spoolOpts string // lines inside the spool block
	extra     string // more lines inside the output block
	global    string // more global options
	sites     string // more site blocks
}

// tlsWriterCaddyfile is a Caddy that takes records of app `shop` at
// /_applog and sends them with the `tls` writer as RFC 5424 (facility
// local3), with its status page at /status.
func tlsWriterCaddyfile(p *tlsPKI, o tlsWriterOpts) string {
	var out strings.Builder
	fmt.Fprintf(&out, "{\n\tadmin 127.0.0.1:{{.AdminPort}}\n%s\n\tapplog {\n\t\tfacility shop\n\t}\n", o.global)
	fmt.Fprintf(&out, "\tlog totls {\n\t\tinclude applog.shop\n\t\tlevel DEBUG\n\t\toutput tls %s {\n", o.addr)
	fmt.Fprintf(&out, "\t\t\tca %s\n\t\t\tserver_name localhost\n", p.CA)
	if o.automate != "" {
		fmt.Fprintf(&out, "\t\t\tclient_cert_automate %s\n", o.automate)
	} else {
		fmt.Fprintf(&out, "\t\t\tclient_cert %s %s\n", o.cert, o.key)
	}
	if o.spool != "" {
		fmt.Fprintf(&out, "\t\t\tspool %s {\n%s\n\t\t\t}\n", o.spool, o.spoolOpts)
	}
	fmt.Fprintf(&out, "\t\t\tbackoff 100ms 1s\n%s\n\t\t}\n", o.extra)
	out.WriteString("\t\tformat syslog {\n\t\t\tfacility local3\n\t\t}\n\t}\n}\n\n")
	out.WriteString(`http://127.0.0.1:{{.HTTPPort}} {
	bind 127.0.0.1
	handle /_applog {
		log_ingest shop
	}
	handle /status {
		log_status
	}
}
`)
	out.WriteString(o.sites)
	return out.String()
}

// tlsMarker returns a string unique to one test run, put in every
// message so that counts never mix runs.
func tlsMarker(name string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "tlsrun-" + name + "-" + hex.EncodeToString(b[:])
}

// tlsLevels are levels posted in turn, with the syslog severity each
// must arrive as.
var tlsLevels = []struct{ level, severity string }{
	{"debug", "debug"}, {"info", "info"}, {"notice", "notice"}, {"warning", "warning"},
	{"error", "err"}, {"critical", "crit"}, {"alert", "alert"}, {"emerg", "emerg"},
}

// tlsRecordMsg is the message of record seq.
func tlsRecordMsg(marker string, seq int) string {
	return fmt.Sprintf("%s seq=%07d", marker, seq)
}

// tlsRecordJSON is record seq as posted: a JSON object.
func tlsRecordJSON(marker string, seq int) []byte {
	b, _ := json.Marshal(map[string]string{
		"msg": tlsRecordMsg(marker, seq), "level": tlsLevels[seq%len(tlsLevels)].level, "logger": "cart",
	})
	return b
}

// tlsPostRange posts records [from, to) in one ndjson request.
func tlsPostRange(t *testing.T, url, marker string, from, to int) {
	t.Helper()
	var body bytes.Buffer
	for seq := from; seq < to; seq++ {
		body.Write(tlsRecordJSON(marker, seq))
		body.WriteByte('\n')
	}
	if code, resp := post(t, url, "application/x-ndjson", body.Bytes(), nil); code != 200 {
		t.Fatalf("posting records %d-%d: %d %s", from, to-1, code, resp)
	}
}

// tlsLoad posts one record per request from several goroutines until
// stopped, remembering which records were accepted (HTTP 2xx).
type tlsLoad struct {
	url      atomic.Pointer[string]
	marker   string
	next     atomic.Int64
	stopping chan struct{}
	wg       sync.WaitGroup
	client   *http.Client

	mu       sync.Mutex
	accepted []int
	failed   int // requests that got no 2xx: refused, or unanswered
	refused  int // requests answered with another status
	lastErr  error
}

// tlsStartLoad starts workers posting to url, each pausing pause
// between requests.
func tlsStartLoad(url, marker string, workers int, pause time.Duration) *tlsLoad {
	l := &tlsLoad{marker: marker, stopping: make(chan struct{}), client: &http.Client{Timeout: 2 * time.Minute}}
	l.url.Store(&url)
	for range workers {
		l.wg.Add(1)
		go l.work(pause)
	}
	return l
}

func (l *tlsLoad) work(pause time.Duration) {
	defer l.wg.Done()
	for {
		select {
		case <-l.stopping:
			return
		default:
		}
		seq := int(l.next.Add(1) - 1)
		resp, err := l.client.Post(*l.url.Load(), "application/json", bytes.NewReader(tlsRecordJSON(l.marker, seq)))
		l.mu.Lock()
		switch {
		case err != nil:
			l.failed++
			l.lastErr = err
		case resp.StatusCode/100 == 2:
			l.accepted = append(l.accepted, seq)
		default:
			l.failed++
			l.refused++
			b, _ := io.ReadAll(resp.Body)
			l.lastErr = fmt.Errorf("%s: %s", resp.Status, b)
		}
		l.mu.Unlock()
		if resp != nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		if err != nil {
			time.Sleep(20 * time.Millisecond) // Caddy is down; do not spin
		}
		time.Sleep(pause)
	}
}

// retarget sends further requests to another URL (a restarted Caddy).
func (l *tlsLoad) retarget(url string) { l.url.Store(&url) }

// stop ends the load (waiting for requests in flight, bounded by the
// client's timeout) and returns the accepted records and failures.
func (l *tlsLoad) stop() (accepted []int, failed int) {
	select {
	case <-l.stopping:
	default:
		close(l.stopping)
	}
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.accepted), l.failed
}

// acceptedNow is the number of records accepted so far.
func (l *tlsLoad) acceptedNow() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.accepted)
}

// tlsTally counts the arrivals of one run's records by sequence number.
type tlsTally struct {
	counts map[int]int
	order  []int // sequence numbers in arrival order
}

// tlsCount reads the sequence numbers of marker's records out of
// arrivals (each message is the sender's JSON entry).
func tlsCount(arrivals []tlsArrival, marker string) tlsTally {
	re := regexp.MustCompile(regexp.QuoteMeta(marker) + ` seq=(\d+)`)
	tally := tlsTally{counts: map[int]int{}}
	for _, a := range arrivals {
		m := re.FindStringSubmatch(a.msg)
		if m == nil {
			continue
		}
		seq, _ := strconv.Atoi(m[1])
		tally.counts[seq]++
		tally.order = append(tally.order, seq)
	}
	return tally
}

// missing returns the records of want that never arrived.
func (ty tlsTally) missing(want []int) []int {
	var out []int
	for _, seq := range want {
		if ty.counts[seq] == 0 {
			out = append(out, seq)
		}
	}
	sort.Ints(out)
	return out
}

// duplicates returns the records that arrived more than once, and the
// number of extra copies.
func (ty tlsTally) duplicates() (seqs []int, extra int) {
	for seq, n := range ty.counts {
		if n > 1 {
			seqs = append(seqs, seq)
			extra += n - 1
		}
	}
	sort.Ints(seqs)
	return seqs, extra
}

// waitAll waits (bounded) until every record of want has arrived at peer,
// then a little longer for stragglers and duplicates, and returns the tally.
func tlsWaitAll(peer *tlsPeer, marker string, want []int, limit time.Duration) tlsTally {
	var ty tlsTally
	tlsWaitFor(limit, func() bool {
		ty = tlsCount(peer.outs(), marker)
		return len(ty.missing(want)) == 0
	})
	time.Sleep(time.Second)
	return tlsCount(peer.outs(), marker)
}

// tlsCheckDuplicates checks that the records that arrived twice are
// exactly the last ones that had arrived before the event (a peer
// outage, a crash): the window the sender had written but not yet seen
// acknowledged, sent again. It reports how many there were.
func tlsCheckDuplicates(t *testing.T, event string, before []int, ty tlsTally) {
	t.Helper()
	dups, extra := ty.duplicates()
	t.Logf("%s: %d records arrived twice or more (%d extra copies)", event, len(dups), extra)
	if len(dups) == 0 {
		return
	}
	if len(dups) > len(before) {
		t.Errorf("%s: %d duplicated records, but only %d had arrived before it: %v", event, len(dups), len(before), tlsShort(dups))
		return
	}
	tail := slices.Clone(before[len(before)-len(dups):])
	sort.Ints(tail)
	if !slices.Equal(tail, dups) {
		t.Errorf("%s: duplicated records %v are not the last %d that arrived before it (%v)", event, tlsShort(dups), len(dups), tlsShort(tail))
	}
}

// tlsShort abbreviates a long list of sequence numbers for messages.
func tlsShort(seqs []int) string {
	if len(seqs) <= 20 {
		return fmt.Sprint(seqs)
	}
	return fmt.Sprintf("%v ... %v (%d in all)", seqs[:10], seqs[len(seqs)-10:], len(seqs))
}

// tlsWriterSnap is one writer's entry on the status page.
type tlsWriterSnap struct {
	Kind       string  `json:"kind"`
	Name       string  `json:"name"`
	Entries    int64   `json:"entries"`
	Errors     int64   `json:"errors"`
	Dropped    int64   `json:"dropped"`
	SpoolDepth int64   `json:"spool_depth"`
	OldestAge  float64 `json:"spool_oldest_age_seconds"`
}

// tlsWriterStatus returns the `tls` writer's entry for addr in the
// status page's JSON.
func tlsWriterStatus(t *testing.T, s *server, addr string) (tlsWriterSnap, bool) {
	t.Helper()
	return writerStatus(t, s, "tls", addr)
}

// writerStatus returns the entry of the writer of kind (the module's
// name) named name in the status page's JSON.
func writerStatus(t *testing.T, s *server, kind, name string) (tlsWriterSnap, bool) {
	t.Helper()
	var body struct {
		Stats struct {
			Writers []tlsWriterSnap `json:"writers"`
		} `json:"stats"`
	}
	getJSON(t, s.URL("/status?format=json"), &body)
	for _, ws := range body.Stats.Writers {
		if ws.Kind == kind && ws.Name == name {
			return ws, true
		}
	}
	return tlsWriterSnap{}, false
}

// tlsMetric returns the value of metric for the `tls` writer named
// addr from Caddy's /metrics (the admin endpoint).
func tlsMetric(t *testing.T, s *server, metric, addr string) (float64, bool) {
	t.Helper()
	return writerMetric(t, s, metric, "tls", addr)
}

// writerMetric returns the value of metric for the writer of kind
// named name from Caddy's /metrics (the admin endpoint).
func writerMetric(t *testing.T, s *server, metric, kind, name string) (float64, bool) {
	t.Helper()
	for _, line := range strings.Split(scrape(t, s), "\n") {
		if !strings.HasPrefix(line, metric+"{") || !strings.Contains(line, `writer="`+kind+`"`) || !strings.Contains(line, `name="`+name+`"`) {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		return v, err == nil
	}
	return 0, false
}
