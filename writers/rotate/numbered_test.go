package rotate

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// numbered opens a writer with `name_format numbered` on dir/app.log.
func numbered(t *testing.T, dir string, mod func(w *RotateWriter)) (*handle, *fakeClock) {
	t.Helper()
	return testWriter(t, dir, start, func(w *RotateWriter) {
		w.NameFormat = NumberedFormat
		if mod != nil {
			mod(w)
		}
	})
}

// writeFiles creates files in dir with the given contents.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// checkFiles fails unless dir holds exactly the files of want (in name
// order), each with want's lines, decompressed.
func checkFiles(t *testing.T, dir string, want map[string][]string) {
	t.Helper()
	var wantNames []string
	for n := range want {
		wantNames = append(wantNames, n)
	}
	slices.Sort(wantNames)
	if got := names(t, dir); !equal(got, wantNames) {
		t.Fatalf("files %q\nwant  %q", got, wantNames)
	}
	for _, n := range wantNames {
		if got := lines(t, filepath.Join(dir, n)); !equal(got, want[n]) {
			t.Errorf("%s holds %q, want %q", n, got, want[n])
		}
	}
}

// TestNumberedRotation rotates by size, one rotation at a time, and
// checks after each that app.log.1 is the newest backup, that the
// backups are compressed, and that keep 3 leaves no app.log.4.
func TestNumberedRotation(t *testing.T) {
	for _, tc := range []struct{ algo, suffix string }{{"gzip", ".gz"}, {"zstd", ".zst"}, {"none", ""}} {
		t.Run(tc.algo, func(t *testing.T) {
			dir := t.TempDir()
			// Lines of 8 bytes: two per file.
			h, _ := numbered(t, dir, func(w *RotateWriter) { w.MaxSize = 20; w.Keep = 3; w.Compress = tc.algo })
			var files [][]string // the content of each file, oldest first
			for i := range 14 {
				l := fmt.Sprintf("line-%02d", i)
				mustWrite(t, h, l)
				if i%2 == 0 {
					files = append(files, nil)
				}
				files[len(files)-1] = append(files[len(files)-1], l)
				settle(h)
				// The live file, then app.log.1, .2, .3: newest first.
				want := map[string][]string{"app.log": files[len(files)-1]}
				for n := 1; n <= 3 && len(files)-1-n >= 0; n++ {
					want[fmt.Sprintf("app.log.%d%s", n, tc.suffix)] = files[len(files)-1-n]
				}
				checkFiles(t, dir, want)
			}
			if r := h.sink.Load().meter.Rotations.Load(); r != 6 {
				t.Errorf("%d rotations, want 6", r)
			}
		})
	}
}

// TestNumberedBurst rotates many times faster than the archiver keeps
// up (several backups wait to be numbered while one is compressed), with
// keep all: every line is in exactly one file, and reading the highest
// number first and the live file last gives the lines in order.
func TestNumberedBurst(t *testing.T) {
	dir := t.TempDir()
	h, _ := numbered(t, dir, func(w *RotateWriter) { w.MaxSize = 64 << 10; w.Keep = -1; w.Compress = "gzip"; w.CompressLevel = 9 })
	const total = 60000 // ~40 rotations
	for i := range total {
		if _, err := fmt.Fprintf(h, "line %06d %s\n", i, strings.Repeat("x", 30)); err != nil {
			t.Fatal(err)
		}
	}
	settle(h)
	got := names(t, dir)
	n := len(got) - 1
	if n < 30 {
		t.Fatalf("only %d backups: %q", n, got)
	}
	var all []string
	for i := n; i >= 1; i-- {
		name := fmt.Sprintf("app.log.%d.gz", i)
		if !slices.Contains(got, name) {
			t.Fatalf("no %s in %q", name, got)
		}
		all = append(all, lines(t, filepath.Join(dir, name))...)
	}
	all = append(all, lines(t, filepath.Join(dir, "app.log"))...)
	if len(all) != total {
		t.Fatalf("%d lines, want %d", len(all), total)
	}
	for i, l := range all {
		if want := fmt.Sprintf("line %06d ", i); !strings.HasPrefix(l, want) {
			t.Fatalf("line %d is %q: out of order", i, l)
		}
	}
}

// TestNumberedRecovery starts on a folder left by crashes at each step:
// in the middle of a shift (a gap), while compressing (a .tmp archive,
// a plain backup beside its archive), and with two backups still
// waiting to be numbered.
func TestNumberedRecovery(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"app.log.1":          "A\n",
		"app.log.1.gz.tmp":   "\x1f\x8b partial",
		"app.log.3":          "B\n", // app.log.2 moved here: the shift was cut short
		"app.log.5.zst.tmp":  "partial, without its plain backup",
		"app.log.pending-9":  "P2\n",
		"app.log.pending-10": "P3\n", // the newest: sequence numbers compare as numbers
		"app.log":            "live\n",
		// Not ours, and never touched.
		"app.log.01":        "zero-padded",
		"app.log.2.bz2":     "another compressor",
		"app.log.pending-x": "not a sequence",
		"app.log.1.old":     "a copy",
		"other.log.1":       "another file",
	})
	// Crashed after the archive's rename, before the plain file's removal.
	writeFiles(t, dir, map[string]string{"app.log.4": "C\n"})
	if err := compressFile(filepath.Join(dir, "app.log.4"), compression{algo: "zstd", mode: 0o600}); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, map[string]string{"app.log.4": "C\n"})

	h, _ := numbered(t, dir, func(w *RotateWriter) { w.Every = "hourly" })
	settle(h)
	checkFiles(t, dir, map[string][]string{
		"app.log":           {"live"},
		"app.log.1.gz":      {"P3"},
		"app.log.2.gz":      {"P2"},
		"app.log.3.gz":      {"A"},
		"app.log.4.gz":      {"B"},
		"app.log.5.zst":     {"C"}, // archives made under another compress option keep theirs
		"app.log.01":        {"zero-padded"},
		"app.log.2.bz2":     {"another compressor"},
		"app.log.pending-x": {"not a sequence"},
		"app.log.1.old":     {"a copy"},
		"other.log.1":       {"another file"},
	})
}

// TestNumberedKeepAndMaxAge: keep all keeps every backup; max_age
// removes backups by their modification time, and the numbers close
// up behind a removed one.
func TestNumberedKeepAndMaxAge(t *testing.T) {
	dir := t.TempDir()
	h, clk := numbered(t, dir, func(w *RotateWriter) { w.Every = "hourly"; w.MaxAge = 3 * 3600e9 })
	for i := range 5 {
		mustWrite(t, h, fmt.Sprint(i))
		step(h, clk, time.Hour)
	}
	want := map[string][]string{"app.log": nil}
	for n := 1; n <= 5; n++ {
		want[fmt.Sprintf("app.log.%d.gz", n)] = []string{fmt.Sprint(5 - n)}
	}
	checkFiles(t, dir, want)
	// The files were written on the real clock, the writer's is fake:
	// date them on the writer's clock. Backup 2 is older than max_age,
	// and so are 4 and 5 (rotated by hand long ago, say).
	now := clk.Now()
	for n, age := range map[int]time.Duration{1: time.Hour, 2: 4 * time.Hour, 3: 2 * time.Hour, 4: 5 * time.Hour, 5: 6 * time.Hour} {
		if err := os.Chtimes(filepath.Join(dir, fmt.Sprintf("app.log.%d.gz", n)), now, now.Add(-age)); err != nil {
			t.Fatal(err)
		}
	}
	mustWrite(t, h, "5")
	step(h, clk, time.Hour) // now one hour later: backup 3 is 3h old, not more
	checkFiles(t, dir, map[string][]string{
		"app.log":      nil,
		"app.log.1.gz": {"5"},
		"app.log.2.gz": {"4"},
		"app.log.3.gz": {"2"},
	})
	// The archive keeps its backup's modification time.
	info, err := os.Stat(filepath.Join(dir, "app.log.3.gz"))
	if err != nil {
		t.Fatal(err)
	}
	if !info.ModTime().Equal(now.Add(-2 * time.Hour)) {
		t.Errorf("app.log.3.gz dated %v, want %v", info.ModTime(), now.Add(-2*time.Hour))
	}
}

// TestNumberedPerHost: each host's file is numbered on its own, keep
// counts per host, and a start numbers the backups every host left
// waiting.
func TestNumberedPerHost(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"10.0.0.7-app.log.1":         "old 7\n",
		"10.0.0.7-app.log.pending-1": "waiting 7\n",
		"10.0.0.8-app.log.2.gz.tmp":  "partial",
	})
	h, clk := numbered(t, dir, func(w *RotateWriter) { w.Every = "hourly"; w.PerHost = true; w.Keep = 2; w.Compress = "none" })
	settle(h)
	checkFiles(t, dir, map[string][]string{
		"app.log":            nil,
		"10.0.0.7-app.log.1": {"waiting 7"},
		"10.0.0.7-app.log.2": {"old 7"},
	})
	for i := range 3 {
		mustWrite(t, h, fmt.Sprintf(`{"host":"10.0.0.7","i":%d}`, i), fmt.Sprintf(`{"host":"10.0.0.8","i":%d}`, i), fmt.Sprintf(`{"i":%d}`, i))
		step(h, clk, time.Hour)
	}
	checkFiles(t, dir, map[string][]string{
		"app.log":            nil,
		"app.log.1":          {`{"i":2}`},
		"app.log.2":          {`{"i":1}`},
		"10.0.0.7-app.log":   nil,
		"10.0.0.7-app.log.1": {`{"host":"10.0.0.7","i":2}`},
		"10.0.0.7-app.log.2": {`{"host":"10.0.0.7","i":1}`},
		"10.0.0.8-app.log":   nil,
		"10.0.0.8-app.log.1": {`{"host":"10.0.0.8","i":2}`},
		"10.0.0.8-app.log.2": {`{"host":"10.0.0.8","i":1}`},
	})
}

// TestNumberedTemplate: each file of a path template is numbered on its
// own, in its own folder.
func TestNumberedTemplate(t *testing.T) {
	dir := t.TempDir()
	h, clk := numbered(t, dir, func(w *RotateWriter) {
		w.Filename = filepath.Join(dir, "{app}", "{facility}.log")
		w.Every, w.Keep, w.Compress = "hourly", 2, "zstd"
	})
	files := [][2]string{{"a", "web"}, {"a", "db"}, {"b", "web"}}
	for hour := range 3 {
		for _, f := range files {
			mustWrite(t, h, fmt.Sprintf(`{"app":%q,"facility":%q,"hour":%d}`, f[0], f[1], hour))
		}
		step(h, clk, time.Hour)
	}
	for _, app := range []string{"a", "b"} {
		want := map[string][]string{}
		for _, f := range files {
			if f[0] != app {
				continue
			}
			entry := func(hour int) []string {
				return []string{fmt.Sprintf(`{"app":%q,"facility":%q,"hour":%d}`, f[0], f[1], hour)}
			}
			want[f[1]+".log"] = nil
			want[f[1]+".log.1.zst"] = entry(2)
			want[f[1]+".log.2.zst"] = entry(1)
		}
		checkFiles(t, filepath.Join(dir, app), want)
	}
}

// TestNumberedNeverOverwrites: a file in the way of a shift (put there
// behind the writer's back) stops the shift rather than being
// overwritten; the backups wait, and the next job numbers them.
func TestNumberedNeverOverwrites(t *testing.T) {
	dir := t.TempDir()
	h, clk := numbered(t, dir, func(w *RotateWriter) { w.Every = "hourly"; w.Compress = "none" })
	mustWrite(t, h, "a")
	step(h, clk, time.Hour)
	// The archiver took app.log.1 into account; it now appears a second
	// time as app.log.2 (in a real folder: another program, a restore).
	set := h.sink.Load().main.set
	ns := &numberedSet{dir: dir, live: "app.log", backups: map[int][]string{1: {""}}}
	writeFiles(t, dir, map[string]string{"app.log.2": "intruder\n", "app.log.pending-1": "b\n"})
	if err := ns.shiftIn(filepath.Join(dir, "app.log.pending-1"), 0); err == nil {
		t.Fatal("shifted onto an existing file")
	}
	checkFiles(t, dir, map[string][]string{
		"app.log":           nil,
		"app.log.1":         {"a"},
		"app.log.2":         {"intruder"},
		"app.log.pending-1": {"b"},
	})
	// A job lists the folder afresh: the intruder is a backup like the
	// others, and the waiting one is numbered.
	if p, err := nextPendingPath(set); err != nil || filepath.Base(p) != "app.log.pending-2" {
		t.Fatalf("next pending name %q, %v", p, err)
	}
	mustWrite(t, h, "c")
	step(h, clk, time.Hour)
	checkFiles(t, dir, map[string][]string{
		"app.log":   nil,
		"app.log.1": {"c"},
		"app.log.2": {"b"},
		"app.log.3": {"a"},
		"app.log.4": {"intruder"},
	})
}

// TestNumberedSwitch: switching a file from time-stamped names to
// numbered ones leaves the time-stamped backups alone.
func TestNumberedSwitch(t *testing.T) {
	dir := t.TempDir()
	h, clk := testWriter(t, dir, start, func(w *RotateWriter) { w.Every = "hourly" })
	mustWrite(t, h, "stamped")
	step(h, clk, time.Minute)
	h.Close()
	h, clk = testWriter(t, dir, clk.Now(), func(w *RotateWriter) { w.Every = "hourly"; w.NameFormat = NumberedFormat; w.Keep = 1 })
	for _, l := range []string{"one", "two"} {
		mustWrite(t, h, l)
		step(h, clk, time.Hour)
	}
	checkFiles(t, dir, map[string][]string{
		"app.log":                        nil,
		"app.log.1.gz":                   {"two"},
		"app-2026-11-20T11-00-00.log.gz": {"stamped"},
	})
}

// TestNumberedTwoArchivers: the jobs of two archivers on one file's
// backups (a file handed from one writer to another, each with work
// queued for it) never run at once, so no backup is lost or misordered.
func TestNumberedTwoArchivers(t *testing.T) {
	dir := t.TempDir()
	set := fileSet{dir: dir, name: "app", base: "app", ext: ".log"}
	format, err := parseNameFormat(NumberedFormat, false)
	if err != nil {
		t.Fatal(err)
	}
	ret := retention{format: format, loc: time.UTC}
	comp := compression{algo: "gzip", mode: 0o600}
	var arch [2]*archiver
	for i := range arch {
		arch[i] = newArchiver(realClock{}, func(msg string, err error) { t.Errorf("archiver %d: %s: %v", i, msg, err) })
	}
	const rounds = 24
	for r := range rounds {
		// A rotation by whichever writer has the file now, and a start-up
		// job of the other for the same file.
		p, err := nextPendingPath(set)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for i := range 3000 {
			fmt.Fprintf(&b, "round %d line %d\n", r, i)
		}
		if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		arch[r%2].add(job{kind: jobCompress, plain: p, comp: comp, set: set, ret: ret})
		arch[(r+1)%2].add(job{kind: jobRecover, comp: comp, set: set, ret: ret})
	}
	for _, a := range arch {
		a.close()
	}
	want := map[string][]string{}
	for n := 1; n <= rounds; n++ {
		want[fmt.Sprintf("app.log.%d.gz", n)] = nil
	}
	if got := names(t, dir); !equal(got, slices.Sorted(maps.Keys(want))) {
		t.Fatalf("files %q", got)
	}
	for n := 1; n <= rounds; n++ {
		l := lines(t, filepath.Join(dir, fmt.Sprintf("app.log.%d.gz", n)))
		if r := rounds - n; len(l) != 3000 || l[0] != fmt.Sprintf("round %d line 0", r) || l[2999] != fmt.Sprintf("round %d line 2999", r) {
			t.Errorf("app.log.%d.gz: %d lines from %q, want round %d", n, len(l), l[0], r)
		}
	}
}

func TestNumberedFormatParsing(t *testing.T) {
	d := caddyfile.NewTestDispenser("rotate app.log {\nper_host\nname_format numbered\n}")
	var w RotateWriter
	if err := w.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	if got, _ := json.Marshal(w); string(got) != `{"filename":"app.log","per_host":true,"name_format":"numbered"}` {
		t.Fatalf("got %s", got)
	}
	f, err := parseNameFormat(NumberedFormat, true)
	if err != nil || !f.numbered {
		t.Fatalf("numbered: %+v, %v", f, err)
	}
	main := fileSet{dir: "/l", name: "app", base: "app", ext: ".log"}
	host := fileSet{dir: "/l", name: "10.0.0.7-app", base: "app", host: "10.0.0.7", ext: ".log"}
	for _, tc := range []struct {
		set     fileSet
		anyHost bool
		name    string
		match   bool
	}{
		{main, false, "app.log.1", true},
		{main, false, "app.log.12.gz", true},
		{main, false, "app.log.3.zst.tmp", true},
		{main, false, "app.log.pending-4", true},
		{main, false, "app.log", false},
		{main, false, "app.log.0", false},
		{main, false, "app.log.01", false},
		{main, false, "app.log.1.tmp", false},
		{main, false, "app.log.1.bz2", false},
		{main, false, "app.log.pending-", false},
		{main, false, "app-2026-11-21T00-00-00.log.gz", false},
		{main, false, "10.0.0.7-app.log.1", false},
		{main, true, "10.0.0.7-app.log.1", true},
		{main, true, "app.log.1", true},
		{main, true, "10.0.0.7-app.log.pending-1", true},
		{main, true, "other.log.1", false},
		{host, false, "10.0.0.7-app.log.1.gz", true},
		{host, false, "app.log.1", false},
		{host, false, "10.0.0.8-app.log.1", false},
	} {
		if got := numberedMatcher(tc.set, tc.anyHost).MatchString(tc.name); got != tc.match {
			t.Errorf("%s (any host %v): match %v, want %v", tc.name, tc.anyHost, got, tc.match)
		}
	}
}
