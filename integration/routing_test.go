package integration

// The routing tests (issue 18) check, end to end against the real
// binary, that one `log` block whose rotate writer has a path template
// puts every entry in the file its fields name:
//
//   - TestRoutingTemplateFacilities: 40 apps × 3 facilities posted as
//     NDJSON by 4 clients through one `include applog` block writing to
//     {app}/{facility}.log, rotated by size (16 KiB) and every minute,
//     until a minute boundary has passed under load; then a reload
//     through the admin API changes the template to
//     {app}/{facility}-{level}.log (360 files, at most 100 open) while
//     the clients keep posting. Every record must be in exactly the file
//     its app, facility (and level) name under the template in force
//     when it was posted, none lost or repeated, every file rotated by
//     size, every file of the first template at the boundary too, and
//     nothing in the fallback. 10 to 70 s: it waits for the wall clock's
//     next minute.
//   - TestRoutingPerSiteAccess: 10 sites on one Caddy; 5 share one
//     global `log` block writing to sites/{request.host}.log, 5 import a
//     snippet whose `log` writes to persite/{host}.log (the Caddyfile's
//     {host}, read as the entry's request.host). Each site's file, its
//     backups included, must hold exactly that site's requests.
//   - TestRoutingUnplaced: entries a template cannot place (no value,
//     no default) land in the fallback file, default or configured, and
//     the status page counts them as the writer's `unplaced`; values
//     that try to climb out of the folder stay in it.
//
// The tests run one after the other. APPLOG_ROUTING_CADDY names another
// Caddy binary to run them against, such as one built with -race (as
// .ci/run builds it); a data race reported by it fails the test.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// routingBinary runs the test against APPLOG_ROUTING_CADDY if set. The
// routing tests are not parallel, so swapping the binary races nothing.
func routingBinary(t *testing.T) {
	t.Helper()
	bin := os.Getenv("APPLOG_ROUTING_CADDY")
	if bin == "" {
		return
	}
	saved := caddyBin
	caddyBin = bin
	t.Cleanup(func() { caddyBin = saved })
}

// routingHealthy fails t if Caddy reported a data race, a panic, an
// error, or an entry it failed to write.
func routingHealthy(t *testing.T, s *server) {
	t.Helper()
	out := s.Output()
	var errs []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, `"level":"error"`) || strings.Contains(l, " write error: ") {
			errs = append(errs, l)
		}
	}
	if len(errs) > 0 {
		t.Errorf("caddy logged %d errors, first:\n%s", len(errs), strings.Join(errs[:min(5, len(errs))], "\n"))
	}
	if n := strings.Count(out, "WARNING: DATA RACE"); n > 0 {
		t.Errorf("%d data races in Caddy:\n%s", n, out)
	}
	if strings.Contains(out, "panic") {
		t.Errorf("caddy's output mentions a panic:\n%s", out)
	}
}

const (
	routingApps = 40
	routingPad  = 100 // bytes of padding per record: entries of about 380 bytes
)

var (
	routingFacilities = []string{"web", "db.pool", "worker"}
	// The levels records are sent with, and zap's names for them in the
	// entry (and so in {level}).
	routingLevels     = []string{"info", "warning", "error"}
	routingLevelNames = []string{"info", "warn", "error"}
)

// routingCaddyfile has one log block for every app's records; its
// writer is rotate with file name tmpl and the given options.
func routingCaddyfile(tmpl string, options ...string) string {
	var b strings.Builder
	b.WriteString("{\n\tadmin 127.0.0.1:{{.AdminPort}}\n\tapplog {\n")
	for a := range routingApps {
		for _, f := range routingFacilities {
			fmt.Fprintf(&b, "\t\tfacility app%02d:%s\n", a, f)
		}
	}
	fmt.Fprintf(&b, "\t}\n\tlog apps {\n\t\tinclude applog\n\t\tformat json\n\t\toutput rotate {{.Dir}}/logs/%s {\n", tmpl)
	for _, o := range options {
		fmt.Fprintf(&b, "\t\t\t%s\n", o)
	}
	b.WriteString("\t\t}\n\t}\n}\n\nhttp://127.0.0.1:{{.HTTPPort}} {\n\tbind 127.0.0.1\n\tlog_ingest /_applog\n}\n")
	return b.String()
}

// routingRecord is where record n of client c goes: every 360
// consecutive records of a client cover each app, facility and level
// once, so that every file fills at the same pace.
func routingRecord(c, n int) (app, fac, level int) {
	return n % routingApps, (n/routingApps + c) % len(routingFacilities), (n/(routingApps*len(routingFacilities)) + c) % len(routingLevels)
}

func routingMsg(c, n int) string { return fmt.Sprintf("rt-%d-%08d", c, n) }

// Template choices for a record: posted (and answered) before the reload
// began, after it ended, or during it.
const (
	tmplA = 1 << iota
	tmplB
)

// routingPost is one NDJSON post: records first..first+n-1 of a client.
type routingPost struct {
	first, n   int
	start, end time.Time
	outcome    string // "accepted", "refused" (answered with an error), "unknown" (no answer)
	reason     string
}

// routingLoad posts numbered records from several clients, each a batch
// every interval, and keeps what became of every post.
type routingLoad struct {
	url      string
	clients  int
	batch    int
	interval time.Duration
	mu       sync.Mutex
	posts    [][]routingPost // by client
	accepted int
}

func (l *routingLoad) run(stop <-chan struct{}) {
	l.posts = make([][]routingPost, l.clients)
	var wg sync.WaitGroup
	for c := range l.clients {
		wg.Go(func() {
			hc := relHTTPClient()
			tick := time.NewTicker(l.interval)
			defer tick.Stop()
			for n := 0; ; n += l.batch {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				var body bytes.Buffer
				for i := n; i < n+l.batch; i++ {
					a, f, lv := routingRecord(c, i)
					fmt.Fprintf(&body, `{"level":%q,"msg":%q,"logger":"load","app":"app%02d","facility":%q,"pad":%q}`+"\n",
						routingLevels[lv], routingMsg(c, i), a, routingFacilities[f], strings.Repeat("p", routingPad))
				}
				p := routingPost{first: n, n: l.batch, start: time.Now()}
				resp, err := hc.Post(l.url, "application/x-ndjson", &body)
				if err != nil {
					p.outcome, p.reason = "unknown", relReason(err)
				} else {
					reply, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK && bytes.HasPrefix(reply, fmt.Appendf(nil, `{"accepted":%d,`, l.batch)) {
						p.outcome = "accepted"
					} else {
						p.outcome, p.reason = "refused", fmt.Sprintf("%s: %s", resp.Status, bytes.TrimSpace(reply))
					}
				}
				p.end = time.Now()
				l.mu.Lock()
				l.posts[c] = append(l.posts[c], p)
				if p.outcome == "accepted" {
					l.accepted += l.batch
				}
				l.mu.Unlock()
			}
		})
	}
	wg.Wait()
}

func (l *routingLoad) acceptedSoFar() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.accepted
}

// routingEntry is what the tests read of an entry.
type routingEntry struct {
	Msg      string  `json:"msg"`
	App      string  `json:"app"`
	Facility string  `json:"facility"`
	Level    string  `json:"level"`
	TS       float64 `json:"ts"`
	Request  struct {
		Host string `json:"host"`
		URI  string `json:"uri"`
	} `json:"request"`
}

// routingBackup matches a backup's name: <name>-<time>[_<n>].log.gz.
var routingBackup = regexp.MustCompile(`^(.+)-(\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2})(_\d{3,})?\.log(\.gz)?$`)

// routingSegment is one file of a rotated set: a backup or the live file.
type routingSegment struct {
	path    string
	time    string // the backup's time; "" for the live file
	counter string
	entries []routingEntry
}

// less orders segments as they were written: backups by time and
// counter, the live file last.
func (s *routingSegment) less(o *routingSegment) bool {
	if (s.time == "") != (o.time == "") {
		return o.time == ""
	}
	if s.time != o.time {
		return s.time < o.time
	}
	return s.counter < o.counter
}

// routingReadTree reads every file under root, keyed by the live file's
// path relative to root ("app07/web.log"), each set's segments in
// writing order. Plain backups (a compression not finished), archives
// being written and lines that are not JSON fail t.
func routingReadTree(t *testing.T, root string) map[string][]*routingSegment {
	t.Helper()
	sets := map[string][]*routingSegment{}
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		dir, name := filepath.Split(rel)
		seg := &routingSegment{path: rel}
		live := rel
		switch m := routingBackup.FindStringSubmatch(name); {
		case strings.HasSuffix(name, ".tmp"):
			t.Errorf("unfinished archive left behind: %s", rel)
			return nil
		case m != nil:
			if m[4] == "" {
				t.Errorf("backup %s is not compressed (after a graceful stop)", rel)
			}
			seg.time, seg.counter = m[2], m[3]
			live = dir + m[1] + ".log"
		}
		seg.entries = routingReadEntries(t, path)
		sets[live] = append(sets[live], seg)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, segs := range sets {
		sort.Slice(segs, func(i, j int) bool { return segs[i].less(segs[j]) })
	}
	return sets
}

func routingReadEntries(t *testing.T, path string) []routingEntry {
	t.Helper()
	var out []routingEntry
	eachLine(t, path, func(line []byte) {
		var e routingEntry
		if err := json.Unmarshal(line, &e); err != nil {
			t.Errorf("%s: a line is not JSON (torn write?): %v: %q", path, err, line)
			return
		}
		out = append(out, e)
	})
	return out
}

// TestRoutingTemplateFacilities: see the top of the file.
func TestRoutingTemplateFacilities(t *testing.T) {
	routingBinary(t)
	const (
		sizeA = 16 << 10
		sizeB = 8 << 10
	)
	common := []string{`every "* * * * *"`, "compress gzip", "keep all", "flush batch"}
	cfgA := routingCaddyfile("{app}/{facility}.log", append(common, fmt.Sprintf("max_size %d", sizeA))...)
	// The second template names 360 files, more than max_open_files, so
	// files are closed and reopened as records come (LRU).
	cfgB := routingCaddyfile("{app}/{facility}-{level}.log", append(common, fmt.Sprintf("max_size %d", sizeB), "max_open_files 100")...)
	// Other templates for the same files: a new writer, which hands the
	// entries of a file to the old writer while that one owns it.
	cfgB2 := routingCaddyfile("{app}/{facility}-{level:none}.log", append(common, fmt.Sprintf("max_size %d", sizeB), "max_open_files 100")...)
	cfgA2 := routingCaddyfile("{app}/{facility:none}.log", append(common, fmt.Sprintf("max_size %d", sizeA), "max_open_files 50")...)
	phases := []struct {
		cfg  string
		tmpl int
	}{{cfgA, tmplA}, {cfgB, tmplB}, {cfgB2, tmplB}, {cfgB, tmplB}, {cfgB2, tmplB}, {cfgB, tmplB}, {cfgB2, tmplB}, {cfgA2, tmplA}}
	type window struct{ start, end time.Time }
	reloads := make([]window, len(phases)) // reloads[i]: into phase i
	s := startCaddy(t, cfgA)
	logs := filepath.Join(s.Dir, "logs")
	reload := func(i int) {
		reloads[i].start = time.Now()
		s.reload(phases[i].cfg)
		reloads[i].end = time.Now()
	}

	// About 3,200 records/s: 4 clients, 40 records every 50 ms.
	load := &routingLoad{url: s.URL("/_applog"), clients: 4, batch: 40, interval: 50 * time.Millisecond}
	stop := make(chan struct{})
	loaded := make(chan struct{})
	began := time.Now()
	go func() { load.run(stop); close(loaded) }()
	stopLoad := func() {
		select {
		case <-stop:
			return
		default:
		}
		close(stop)
		select {
		case <-loaded:
		case <-time.After(30 * time.Second):
			t.Fatal("clients did not stop within 30s")
		}
	}
	defer stopLoad()

	// Each record is about 380 bytes: each file of the first template
	// rotates by size after some 45 of its records, of the second after
	// 22. Every client covers every file in turn.
	filesA, filesB := routingApps*len(routingFacilities), routingApps*len(routingFacilities)*len(routingLevels)
	wantA, wantB := filesA*100, filesB*45

	// Phase A: until a minute boundary (one that comes 2 s or more after
	// the start, so every file holds records by then) has passed by 2 s,
	// and enough records were accepted for several size rotations.
	boundary := began.Add(2 * time.Second).Truncate(time.Minute).Add(time.Minute)
	deadline := boundary.Add(40 * time.Second)
	for time.Now().Before(boundary.Add(2*time.Second)) || load.acceptedSoFar() < wantA {
		if time.Now().After(deadline) {
			t.Fatalf("only %d records accepted by %v (want %d): the machine is too slow for this test", load.acceptedSoFar(), deadline.Sub(began).Round(time.Second), wantA)
		}
		time.Sleep(100 * time.Millisecond)
	}
	acceptedA := load.acceptedSoFar()

	// Phase B: until enough records for a size rotation of each file.
	reload(1)
	deadline = time.Now().Add(30 * time.Second)
	for load.acceptedSoFar()-acceptedA < wantB {
		if time.Now().After(deadline) {
			t.Fatalf("only %d records accepted in 30 s after the reload (want %d)", load.acceptedSoFar()-acceptedA, wantB)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Reloads every 500 ms between templates naming the same files, then
	// back to the first template's files, under another template.
	for i := 2; i < len(phases); i++ {
		reload(i)
		time.Sleep(500 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond)
	stopLoad()
	ran := time.Since(began)
	s.stop() // flushes the buffers and finishes the compressions
	routingHealthy(t, s)

	// Every post's records and the templates they may be under.
	type fate struct {
		outcome string
		tmpls   int
	}
	fates := make([][]fate, load.clients)
	var posts, unanswered, refused int
	var lastReason string
	for c, ps := range load.posts {
		for _, p := range ps {
			posts++
			// Phase i's config takes requests from the start of the
			// reload into it until the end of the reload out of it.
			tm := 0
			for i, ph := range phases {
				if (i == 0 || !p.end.Before(reloads[i].start)) && (i == len(phases)-1 || !p.start.After(reloads[i+1].end)) {
					tm |= ph.tmpl
				}
			}
			switch p.outcome {
			case "unknown":
				unanswered++
				lastReason = p.reason
			case "refused":
				refused++
				lastReason = p.reason
			}
			for len(fates[c]) < p.first+p.n {
				fates[c] = append(fates[c], fate{})
			}
			for i := p.first; i < p.first+p.n; i++ {
				fates[c][i] = fate{p.outcome, tm}
			}
		}
	}
	var took time.Duration
	for _, r := range reloads[1:] {
		took = max(took, r.end.Sub(r.start))
	}
	t.Logf("%d posts of %d records in %v (first reload after %v, %d reloads, the longest %v): %d records accepted, %d posts refused, %d unanswered (last: %s)",
		posts, load.batch, ran.Round(time.Millisecond), reloads[1].start.Sub(began).Round(time.Millisecond), len(reloads)-1, took.Round(time.Millisecond),
		load.accepted, refused, unanswered, lastReason)
	if refused > 0 {
		t.Errorf("%d posts refused, last: %s", refused, lastReason)
	}
	// A post racing the reload may find its kept-alive connection closed
	// under it (see loadGenerator): rare, and its records must then be
	// written at most once.
	if unanswered*100 > posts {
		t.Errorf("%d of %d posts got no answer, last: %s", unanswered, posts, lastReason)
	}

	sets := routingReadTree(t, logs)
	counts := make([][]int, load.clients)
	for c := range counts {
		counts[c] = make([]int, len(fates[c]))
	}
	bTime := boundary.UTC().Format("2006-01-02T15-04-05")
	bTS := float64(boundary.UnixNano()) / 1e9
	const slack = 1.5 // seconds between a record's arrival (its ts) and its write, at most
	var misplaced, strangers, entries, unordered, wrongSide int
	var setsA, setsB, sizeRotatedA, sizeRotatedB, scheduledA int
	for live, segs := range sets {
		app, file := filepath.Split(live)
		app = strings.TrimSuffix(app, "/")
		if app == "" {
			for _, seg := range segs {
				t.Errorf("%s (outside every app's folder) holds %d entries, first %+v", seg.path, len(seg.entries), seg.entries[:min(1, len(seg.entries))])
			}
			continue
		}
		stem := strings.TrimSuffix(file, ".log")
		isB := strings.Contains(stem, "-")
		boundarySeg := -1
		var sizeBackups int
		// Each client posts one batch after the other: its records are
		// in a file in the order it sent them.
		last := make([]int, load.clients)
		for c := range last {
			last[c] = -1
		}
		for i, seg := range segs {
			switch {
			case seg.time == "":
			case seg.time == bTime && seg.counter == "":
				boundarySeg = i
			default:
				sizeBackups++
			}
			for _, e := range seg.entries {
				entries++
				var c, n int
				if _, err := fmt.Sscanf(e.Msg, "rt-%d-%d", &c, &n); err != nil || c < 0 || c >= load.clients || n < 0 || n >= len(fates[c]) {
					strangers++
					if strangers <= 5 {
						t.Errorf("%s: an entry no client sent: %+v", seg.path, e)
					}
					continue
				}
				counts[c][n]++
				if n <= last[c] {
					unordered++
					if unordered <= 5 {
						t.Errorf("%s: %s comes after %s", seg.path, e.Msg, routingMsg(c, last[c]))
					}
				}
				last[c] = n
				a, f, lv := routingRecord(c, n)
				wantApp, wantFac, wantLevel := fmt.Sprintf("app%02d", a), routingFacilities[f], routingLevelNames[lv]
				ok := e.App == wantApp && e.Facility == wantFac && e.Level == wantLevel && app == wantApp
				tm := fates[c][n].tmpls
				switch {
				case stem == wantFac:
					ok = ok && tm&tmplA != 0
				case stem == wantFac+"-"+wantLevel:
					ok = ok && tm&tmplB != 0
				default:
					ok = false
				}
				if !ok {
					misplaced++
					if misplaced <= 5 {
						t.Errorf("%s: %s (app %s, facility %s, level %s, templates %b) is in the wrong file: %+v", seg.path, e.Msg, wantApp, wantFac, wantLevel, tm, e)
					}
				}
				// The first template's files rotate at the boundary:
				// what arrived well before it is in the backup named
				// after it or an earlier one, what arrived well after
				// it in a later one.
				if !isB && boundarySeg >= 0 && i > boundarySeg && e.TS < bTS-slack ||
					!isB && (boundarySeg < 0 || i <= boundarySeg) && e.TS > bTS+slack {
					wrongSide++
					if wrongSide <= 5 {
						t.Errorf("%s: %s arrived %.3fs from the boundary %s, on the wrong side of the scheduled rotation", seg.path, e.Msg, e.TS-bTS, bTime)
					}
				}
			}
		}
		if isB {
			setsB++
			if sizeBackups > 0 {
				sizeRotatedB++
			}
			if boundarySeg >= 0 {
				t.Errorf("%s: a backup named at the boundary %s, which passed before this template was loaded", live, bTime)
			}
			continue
		}
		setsA++
		if sizeBackups > 0 {
			sizeRotatedA++
		}
		if boundarySeg >= 0 {
			scheduledA++
		} else {
			var names []string
			for _, seg := range segs {
				names = append(names, filepath.Base(seg.path))
			}
			t.Errorf("%s: no backup named at the boundary %s: %q", live, bTime, names)
		}
	}
	var lost, dup, unknownFound int
	for c := range counts {
		for n, k := range counts[c] {
			switch fates[c][n].outcome {
			case "accepted":
				if k != 1 {
					if k == 0 {
						lost++
					} else {
						dup++
					}
					if lost+dup <= 5 {
						t.Errorf("accepted record %s found %d times", routingMsg(c, n), k)
					}
				}
			case "unknown":
				if k > 1 {
					t.Errorf("record %s of an unanswered post found %d times", routingMsg(c, n), k)
				}
				unknownFound += k
			default:
				if k > 0 {
					t.Errorf("record %s of a refused post found %d times", routingMsg(c, n), k)
				}
			}
		}
	}
	t.Logf("%d entries in %d files: template A %d files (%d rotated by size, %d at the boundary %s), template B %d files (%d rotated by size); lost %d, duplicated %d, misplaced %d, out of order %d, on the wrong side of the boundary %d, strangers %d; %d records of unanswered posts found",
		entries, len(sets), setsA, sizeRotatedA, scheduledA, bTime, setsB, sizeRotatedB, lost, dup, misplaced, unordered, wrongSide, strangers, unknownFound)
	if setsA != filesA || setsB != filesB {
		t.Errorf("want %d files of the first template and %d of the second, got %d and %d", filesA, filesB, setsA, setsB)
	}
	if sizeRotatedA != setsA || sizeRotatedB != setsB {
		t.Errorf("every file should have rotated by size: %d of %d and %d of %d did", sizeRotatedA, setsA, sizeRotatedB, setsB)
	}
}

// routingSitesCaddyfile: sites a to e write their access logs through
// one global log block, f to j each through their own block from one
// snippet, z has no access log.
const routingSitesCaddyfile = `{
	admin 127.0.0.1:{{.AdminPort}}
	log sites {
		include http.log.access.sites
		format json
		output rotate {{.Dir}}/sites/{request.host}.log {
			max_size 32KiB
			keep all
			flush batch
		}
	}
}

(site) {
	bind 127.0.0.1
	respond "{host} {uri}"
}

(persite) {
	import site
	log {
		output rotate {{.Dir}}/persite/{host}.log {
			max_size 32KiB
			keep all
		}
		format json
	}
}

http://a.test:{{.HTTPPort}}, http://b.test:{{.HTTPPort}}, http://c.test:{{.HTTPPort}}, http://d.test:{{.HTTPPort}}, http://e.test:{{.HTTPPort}} {
	import site
	log sites
}
http://f.test:{{.HTTPPort}} {
	import persite
}
http://g.test:{{.HTTPPort}} {
	import persite
}
http://h.test:{{.HTTPPort}} {
	import persite
}
http://i.test:{{.HTTPPort}} {
	import persite
}
http://j.test:{{.HTTPPort}} {
	import persite
}
http://z.test:{{.HTTPPort}} {
	import site
}
`

// TestRoutingPerSiteAccess: see the top of the file.
func TestRoutingPerSiteAccess(t *testing.T) {
	routingBinary(t)
	s := startCaddy(t, routingSitesCaddyfile)
	sites := strings.Split("a b c d e f g h i j z", " ")
	const perSite = 200 // about 450 bytes each: 2 rotations per file
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	for w := range 4 {
		wg.Go(func() {
			hc := relHTTPClient()
			for i := w; i < perSite; i += 4 {
				for _, site := range sites {
					// Host names are matched and filed without case.
					host := site + ".test"
					if i%3 == 0 {
						host = strings.ToUpper(host)
					}
					uri := fmt.Sprintf("/%s/%04d", site, i)
					req, _ := http.NewRequest(http.MethodGet, s.URL(uri), nil)
					req.Host = host
					resp, err := hc.Do(req)
					var body []byte
					if err == nil {
						body, _ = io.ReadAll(resp.Body)
						resp.Body.Close()
					}
					if err != nil || resp.StatusCode != http.StatusOK || string(body) != host+" "+uri {
						mu.Lock()
						failures = append(failures, fmt.Sprintf("%s%s: %v %q", host, uri, err, body))
						mu.Unlock()
					}
				}
			}
		})
	}
	wg.Wait()
	s.stop()
	routingHealthy(t, s)
	if len(failures) > 0 {
		t.Fatalf("%d requests failed, first: %s", len(failures), failures[0])
	}

	for _, form := range []struct {
		dir   string
		sites []string
	}{{"sites", sites[:5]}, {"persite", sites[5:10]}} {
		sets := routingReadTree(t, filepath.Join(s.Dir, form.dir))
		want := map[string]bool{}
		for _, site := range form.sites {
			want[site+".test.log"] = true
		}
		for live, segs := range sets {
			if !want[live] {
				for _, seg := range segs {
					t.Errorf("%s/%s: a file no site should have, %d entries", form.dir, seg.path, len(seg.entries))
				}
			}
		}
		for _, site := range form.sites {
			segs := sets[site+".test.log"]
			var got []string
			for _, seg := range segs {
				for _, e := range seg.entries {
					if !strings.EqualFold(e.Request.Host, site+".test") {
						t.Errorf("%s/%s: request to %s%s", form.dir, seg.path, e.Request.Host, e.Request.URI)
					}
					got = append(got, e.Request.URI)
				}
			}
			sort.Strings(got)
			var wantURIs []string
			for i := range perSite {
				wantURIs = append(wantURIs, fmt.Sprintf("/%s/%04d", site, i))
			}
			if strings.Join(got, " ") != strings.Join(wantURIs, " ") {
				t.Errorf("%s/%s.test.log and its backups: want the %d requests /%s/0000../%s/%04d once each, got %d: %.300q",
					form.dir, site, perSite, site, site, perSite-1, len(got), got)
			}
			if len(segs) < 2 {
				t.Errorf("%s/%s.test.log: not rotated (%d files)", form.dir, site, len(segs))
			}
		}
	}
}

// routingUnplacedCaddyfile: app shop files by {app}/{facility} with no
// default and the default fallback; app tenants by a field of attrs,
// with a fallback of its own.
const routingUnplacedCaddyfile = `{
	admin 127.0.0.1:{{.AdminPort}}
	applog {
		facility shop
		facility tenants
	}
	log shop {
		include applog.shop
		format json
		output rotate {{.Dir}}/u/{app}/{facility}.log
	}
	log tenants {
		include applog.tenants
		format json
		output rotate {{.Dir}}/t/{attrs.tenant}/{level}.log {
			fallback {{.Dir}}/no-tenant.log
		}
	}
}

http://127.0.0.1:{{.HTTPPort}} {
	bind 127.0.0.1
	handle /_applog/shop {
		log_ingest shop
	}
	handle /_applog/tenants {
		log_ingest tenants
	}
	handle /status {
		log_status
	}
}
`

// TestRoutingUnplaced: see the top of the file.
func TestRoutingUnplaced(t *testing.T) {
	routingBinary(t)
	s := startCaddy(t, routingUnplacedCaddyfile)
	send := func(path, ndjson string) {
		t.Helper()
		if code, reply := post(t, s.URL(path), "application/x-ndjson", []byte(ndjson), nil); code != http.StatusOK {
			t.Fatalf("POST %s: %d %s", path, code, reply)
		}
	}
	// shop: a record of the app itself (no logger, so no facility) has
	// nothing for {facility}.
	send("/_applog/shop", `{"msg":"s1","logger":"views"}
{"msg":"s2"}
{"msg":"s3","logger":"views"}
{"msg":"s4","logger":"root"}
`)
	// tenants: no tenant, an empty one, an object, and values that try to
	// leave the folder or hide a file.
	send("/_applog/tenants", `{"msg":"t1","tenant":"acme"}
{"msg":"t2"}
{"msg":"t3","tenant":""}
{"msg":"t4","tenant":{"id":7}}
{"msg":"t5","tenant":"../../escape","level":"error"}
{"msg":"t6","tenant":".hidden"}
{"msg":"t7","tenant":"ACME"}
`)

	msgs := func(rel string) string {
		var out []string
		for _, e := range routingReadEntries(t, filepath.Join(s.Dir, rel)) {
			out = append(out, e.Msg)
		}
		return strings.Join(out, ",")
	}
	// The status page, while Caddy runs: its counters are the process's.
	var st struct {
		Stats struct {
			Writers []struct {
				Kind     string `json:"kind"`
				Name     string `json:"name"`
				Entries  int64  `json:"entries"`
				Unplaced int64  `json:"unplaced"`
			} `json:"writers"`
		} `json:"stats"`
	}
	getJSON(t, s.URL("/status?format=json"), &st)
	metrics := scrape(t, s)
	s.stop()
	routingHealthy(t, s)

	for rel, want := range map[string]string{
		"u/shop/views.log":         "s1,s3",
		"u/unplaced.log":           "s2,s4",
		"t/acme/info.log":          "t1",
		"t/ACME/info.log":          "t7",
		"no-tenant.log":            "t2,t3,t4",
		"t/_._.__escape/error.log": "t5",
		"t/_hidden/info.log":       "t6",
	} {
		if got := msgs(rel); got != want {
			t.Errorf("%s: want %s, got %q", rel, want, got)
		}
	}
	// Nothing else anywhere.
	var files []string
	_ = filepath.WalkDir(s.Dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".log") {
			rel, _ := filepath.Rel(s.Dir, path)
			files = append(files, rel)
		}
		return nil
	})
	sort.Strings(files)
	if got := strings.Join(files, " "); got != "no-tenant.log t/ACME/info.log t/_._.__escape/error.log t/_hidden/info.log t/acme/info.log u/shop/views.log u/unplaced.log" {
		t.Errorf("log files: %s", got)
	}

	want := map[string][2]int64{ // entries, unplaced
		filepath.Join(s.Dir, "u/{app}/{facility}.log"):       {4, 2},
		filepath.Join(s.Dir, "t/{attrs.tenant}/{level}.log"): {7, 3},
	}
	for _, w := range st.Stats.Writers {
		if wv, ok := want[w.Name]; ok {
			if w.Kind != "rotate" || w.Entries != wv[0] || w.Unplaced != wv[1] {
				t.Errorf("status page, writer %s: %s with %d entries, %d unplaced; want rotate with %d, %d", w.Name, w.Kind, w.Entries, w.Unplaced, wv[0], wv[1])
			}
			delete(want, w.Name)
		}
	}
	for name := range want {
		t.Errorf("the status page lists no writer %s: %+v", name, st.Stats.Writers)
	}
	for name, n := range map[string]int{"u/{app}/{facility}.log": 2, "t/{attrs.tenant}/{level}.log": 3} {
		line := fmt.Sprintf(`caddy_applog_writer_unplaced_total{name=%q,writer="rotate"} %d`, filepath.Join(s.Dir, name), n)
		if !strings.Contains(metrics, line+"\n") {
			t.Errorf("the admin endpoint's /metrics has no line %s:\n%s", line, grepLines(metrics, "caddy_applog_writer_unplaced"))
		}
	}
}
