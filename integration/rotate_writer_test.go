package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rotateCaddyfile logs app shop through the rotate writer; .Options is
// the writer's block.
const rotateCaddyfile = `{
	admin 127.0.0.1:{{.AdminPort}}
	applog {
		facility shop
	}
	log shop {
		include applog.shop
		output rotate {{.Dir}}/logs/shop.log {
			%s
		}
		format json
	}
}

http://127.0.0.1:{{.HTTPPort}} {
	bind 127.0.0.1
	handle /_applog/shop {
		log_ingest shop
	}
}
`

func rotateConfig(options ...string) string {
	return fmt.Sprintf(rotateCaddyfile, strings.Join(options, "\n\t\t\t"))
}

// loadGenerator posts NDJSON batches with unique messages from several
// goroutines and remembers every message Caddy accepted, and those of
// posts that failed without an answer.
//
// A reload makes a few posts fail that way (connection reset, or EOF),
// whatever the writer: the same happens with Caddy's own `file` writer.
// It looks like connections caught in the old server's listener as it
// closes (Caddy listens with SO_REUSEPORT, so old and new sockets exist
// side by side for a moment). Whether Caddy handled such a request
// cannot be known from here, so its records must be in at most one
// file; every answered one must be in exactly one.
type loadGenerator struct {
	url     string
	client  *http.Client
	prefix  string
	mu      sync.Mutex
	sent    []string
	unknown []string // messages of posts that got no answer
	refused []string // messages of posts Caddy refused
	posts   atomic.Int64
	failed  atomic.Int64
	lastErr atomic.Value
}

func newLoad(url, prefix string, localIP string) *loadGenerator {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	if localIP != "" {
		dialer.LocalAddr = &net.TCPAddr{IP: net.ParseIP(localIP)}
	}
	return &loadGenerator{
		url:    url,
		prefix: prefix,
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: dialer.DialContext, MaxIdleConnsPerHost: 16}},
	}
}

// run posts batches of size records from workers goroutines, pausing
// pause between batches, until stop is closed.
func (l *loadGenerator) run(workers, size int, pause time.Duration, stop <-chan struct{}) {
	var wg sync.WaitGroup
	for g := range workers {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var body bytes.Buffer
				var msgs []string
				for j := range size {
					m := fmt.Sprintf("%s-%d-%d-%d", l.prefix, g, i, j)
					msgs = append(msgs, m)
					fmt.Fprintf(&body, `{"level":"info","msg":%q,"logger":"load","pad":"%s"}`+"\n", m, strings.Repeat("x", 100))
				}
				l.posts.Add(1)
				resp, err := l.client.Post(l.url, "application/x-ndjson", &body)
				if err != nil {
					l.failed.Add(1)
					l.lastErr.Store(err.Error())
					l.mu.Lock()
					l.unknown = append(l.unknown, msgs...)
					l.mu.Unlock()
					continue
				}
				reply, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					// Caddy answered: nothing of the batch was written.
					l.failed.Add(1)
					l.lastErr.Store(fmt.Sprintf("%s: %s", resp.Status, reply))
					l.mu.Lock()
					l.refused = append(l.refused, msgs...)
					l.mu.Unlock()
					continue
				}
				l.mu.Lock()
				l.sent = append(l.sent, msgs...)
				l.mu.Unlock()
				time.Sleep(pause)
			}
		})
	}
	wg.Wait()
}

// logLines reads every entry of every file in dir (the live files and
// all backups, decompressed), in the order of the file names, and
// returns the files, a count per msg, and the msgs in that order.
func logLines(t *testing.T, dir string) (files []string, counts map[string]int, order []string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	counts = map[string]int{}
	for _, e := range entries {
		files = append(files, e.Name())
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("incomplete archive left behind: %s", e.Name())
			continue
		}
		for _, m := range fileMsgs(t, filepath.Join(dir, e.Name())) {
			counts[m]++
			order = append(order, m)
		}
	}
	sort.Strings(files)
	return files, counts, order
}

// fileMsgs returns the msg of every entry of one log file, decompressed
// by its suffix, in order.
func fileMsgs(t *testing.T, path string) []string {
	t.Helper()
	var msgs []string
	eachLine(t, path, func(line []byte) {
		var entry struct {
			Msg string `json:"msg"`
		}
		if err := json.Unmarshal(line, &entry); err != nil {
			t.Fatalf("%s: a line is not JSON (torn write?): %v: %q", path, err, line)
		}
		msgs = append(msgs, entry.Msg)
	})
	return msgs
}

// check fails unless every accepted message is in counts exactly once,
// those of unanswered posts at most once, and nothing else with the
// load's prefix is there. It allows unanswered posts only with
// allowUnanswered, and then at most 1% of them.
func (l *loadGenerator) check(t *testing.T, counts map[string]int, allowUnanswered bool) {
	t.Helper()
	if len(l.sent) == 0 {
		t.Fatal("nothing was sent")
	}
	if len(l.refused) > 0 {
		t.Fatalf("Caddy refused %d records, last: %v", len(l.refused), l.lastErr.Load())
	}
	if n := l.failed.Load(); n > 0 && (!allowUnanswered || n*100 > l.posts.Load()) {
		t.Fatalf("%d of %d posts got no answer, last: %v", n, l.posts.Load(), l.lastErr.Load())
	}
	known := map[string]bool{}
	for _, m := range l.sent {
		known[m] = true
		if n := counts[m]; n != 1 {
			t.Errorf("%s found %d times", m, n)
		}
	}
	for _, m := range l.unknown {
		known[m] = true
		if n := counts[m]; n > 1 {
			t.Errorf("%s (of an unanswered post) found %d times", m, n)
		}
	}
	for m, n := range counts {
		if strings.HasPrefix(m, l.prefix+"-") && !known[m] {
			t.Errorf("%s (%d times) was never sent", m, n)
		}
	}
}

var backupName = regexp.MustCompile(`^shop-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-(\d{2})(_\d{3,})?\.log(\.gz|\.zst)?$`)

// TestRotateUnderLoad posts records from several goroutines for 5
// seconds while the file rotates by size many times, with a schedule
// (`every "* * * * *"`) as well, then checks that every record is in
// exactly one file, in order. Rotation at the schedule's boundaries under
// load is checked on a fake clock by writers/rotate's
// TestRotateUnderLoadOnClock, rather than by waiting here for the wall
// clock's next minute; when one passes during the run all the same, its
// backup must be there.
func TestRotateUnderLoad(t *testing.T) {
	t.Parallel()
	s := startCaddy(t, rotateConfig(`every "* * * * *"`, "max_size 256KiB", "keep all", "compress gzip"))
	logs := filepath.Join(s.Dir, "logs")
	load := newLoad(s.URL("/_applog/shop"), "load", "")
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { load.run(4, 10, 10*time.Millisecond, stop); close(done) }()

	began := time.Now()
	time.Sleep(5 * time.Second)
	close(stop)
	<-done
	ended := time.Now()
	s.stop() // Caddy closes the writer, which waits for its compressions
	// A boundary passed with a second to spare (the writer's timer
	// fires at it, and the load goes on for that long after).
	boundary := began.Truncate(time.Minute).Add(time.Minute)
	crossed := ended.Sub(boundary) >= time.Second

	files, counts, order := logLines(t, logs)
	load.check(t, counts, false)
	scheduled := "shop-" + boundary.UTC().Format("2006-01-02T15-04-05") // named after the boundary itself
	var backups int
	var sawScheduled bool
	for _, f := range files {
		m := backupName.FindStringSubmatch(f)
		if m == nil {
			if f != "shop.log" {
				t.Errorf("unexpected file %s", f)
			}
			continue
		}
		if m[3] != ".gz" {
			t.Errorf("backup %s is not compressed", f)
		}
		backups++
		sawScheduled = sawScheduled || strings.HasPrefix(f, scheduled)
	}
	t.Logf("%d records in %s across %d backups", len(load.sent), time.Since(began).Round(time.Second), backups)
	if backups < 3 || crossed && !sawScheduled {
		t.Fatalf("want several size rotations (and one named %s* if the minute passed: %v), got files %q", scheduled, crossed, files)
	}
	// Each worker posts its batches one after the other, so reading the
	// files in name order (backups by time, then the live file) must give
	// each worker's records in the order it sent them.
	last := map[string][2]int{}
	for _, m := range order {
		var g, i, j int
		if _, err := fmt.Sscanf(m, "load-%d-%d-%d", &g, &i, &j); err != nil {
			continue
		}
		key := fmt.Sprint(g)
		if p, ok := last[key]; ok && (i < p[0] || (i == p[0] && j < p[1])) {
			t.Fatalf("%s comes after load-%d-%d-%d: the backup names do not sort by time", m, g, p[0], p[1])
		}
		last[key] = [2]int{i, j}
	}
}

// TestRotateReloadUnderLoad reloads Caddy through the admin API three
// times while records keep coming, alternating options that change the
// writer's key (size, compression, batch or interval buffering, per_host), and checks that
// no record is lost or written twice and that the new options applied.
func TestRotateReloadUnderLoad(t *testing.T) {
	t.Parallel()
	configA := rotateConfig("max_size 128KiB", "keep all", "compress gzip", "flush batch")
	configB := rotateConfig("max_size 64KiB", "keep all", "compress zstd", "flush 100ms", "per_host")
	s := startCaddy(t, configA)
	logs := filepath.Join(s.Dir, "logs")
	load := newLoad(s.URL("/_applog/shop"), "reload", "")
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { load.run(3, 10, 5*time.Millisecond, stop); close(done) }()
	for _, cfg := range []string{configB, configA, configB} {
		time.Sleep(1500 * time.Millisecond)
		s.reload(cfg)
	}
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	<-done
	s.stop()

	files, counts, _ := logLines(t, logs)
	load.check(t, counts, true)
	var gz, zst, perHost bool
	for _, f := range files {
		gz = gz || strings.HasSuffix(f, ".log.gz")
		zst = zst || strings.HasSuffix(f, ".log.zst")
		perHost = perHost || f == "127.0.0.1-shop.log"
	}
	t.Logf("%d records across %d files; %d of %d posts unanswered during reloads", len(load.sent), len(files), load.failed.Load(), load.posts.Load())
	if !gz || !zst || !perHost {
		t.Fatalf("both configs' options should show (gzip and zstd backups, a per_host file): %q", files)
	}
}

// TestRotateExternalMove moves and then deletes the live file behind
// Caddy's back, as logrotate without a postrotate signal would; Caddy
// must notice and write to a new file at the same path.
func TestRotateExternalMove(t *testing.T) {
	t.Parallel()
	s := startCaddy(t, rotateConfig("max_size 10MiB", "compress none"))
	live := filepath.Join(s.Dir, "logs", "shop.log")
	send := func(msgs ...string) {
		t.Helper()
		var body bytes.Buffer
		for _, m := range msgs {
			fmt.Fprintf(&body, `{"msg":%q}`+"\n", m)
		}
		if st, reply := post(t, s.URL("/_applog/shop"), "application/x-ndjson", body.Bytes(), nil); st != 200 {
			t.Fatalf("post: %d %s", st, reply)
		}
	}
	// With flush batch, the default, an entry reaches the file a moment
	// after its post is answered: wait (bounded) for what is expected.
	msgsOf := func(path, want string) string {
		var got string
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			var out []string
			for _, l := range readLines(t, path) {
				out = append(out, fmt.Sprint(l["msg"]))
			}
			if got = strings.Join(out, ","); got == want || time.Now().After(deadline) {
				return got
			}
		}
	}
	send("one", "two")
	if got := msgsOf(live, "one,two"); got != "one,two" {
		t.Fatalf("live file: %q", got)
	}
	if err := os.Rename(live, live+".moved"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // the writer checks its files every second
	send("three")
	if got := msgsOf(live, "three"); got != "three" {
		t.Fatalf("new file after the move: %q", got)
	}
	if got := msgsOf(live+".moved", "one,two"); got != "one,two" {
		t.Fatalf("moved file: %q", got)
	}
	if err := os.Remove(live); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	send("four")
	if got := msgsOf(live, "four"); got != "four" {
		t.Fatalf("new file after the deletion: %q", got)
	}
}

// TestRotatePerHost sends from two loopback addresses; with per_host,
// each lands in its own file, named after the address Caddy saw.
func TestRotatePerHost(t *testing.T) {
	t.Parallel()
	s := startCaddy(t, rotateConfig("every hourly", "per_host"))
	logs := filepath.Join(s.Dir, "logs")
	for _, ip := range []string{"127.0.0.1", "127.0.0.2"} {
		client := newLoad(s.URL("/_applog/shop"), "", ip).client // connects from ip
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL("/_applog/shop"), strings.NewReader(`{"msg":"hello from `+ip+`"}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("post from %s: %s", ip, resp.Status)
		}
	}
	for _, ip := range []string{"127.0.0.1", "127.0.0.2"} {
		lines := waitLines(t, filepath.Join(logs, ip+"-shop.log"), 1)
		if len(lines) != 1 || lines[0]["msg"] != "hello from "+ip || lines[0]["host"] != ip {
			t.Errorf("%s-shop.log: %v", ip, lines)
		}
	}
	if lines := readLines(t, filepath.Join(logs, "shop.log")); len(lines) != 0 {
		t.Errorf("the main file got host entries: %v", lines)
	}
}
