package rotate

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

var start = time.Date(2026, 11, 20, 10, 59, 30, 0, time.UTC)

// TestIdleRotationAtBoundary: the sink's own goroutine rotates at the
// boundary although nothing is written (nothing here calls tick).
func TestIdleRotationAtBoundary(t *testing.T) {
	dir := t.TempDir()
	h, clk := testWriter(t, dir, start, func(w *RotateWriter) { w.Every = "hourly" })
	mustWrite(t, h, "a", "b", "c")
	clk.Advance(31 * time.Second)
	backup := filepath.Join(dir, "app-2026-11-20T11-00-00.log.gz")
	waitFor(t, "the backup", func() bool { _, err := os.Stat(backup); return err == nil })
	settle(h)
	if got := lines(t, backup); !equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("backup holds %q", got)
	}
	if got := lines(t, filepath.Join(dir, "app.log")); got != nil {
		t.Fatalf("live file holds %q", got)
	}
	// Nothing was written since: the next boundary leaves no empty backup.
	clk.Advance(time.Hour)
	time.Sleep(20 * time.Millisecond)
	step(h, clk, 0)
	if got := names(t, dir); !equal(got, []string{"app-2026-11-20T11-00-00.log.gz", "app.log"}) {
		t.Fatalf("files: %q", got)
	}
}

func TestSizeRotationNeverOverwrites(t *testing.T) {
	dir := t.TempDir()
	h, _ := testWriter(t, dir, start, func(w *RotateWriter) { w.MaxSize = 20; w.Compress = "none"; w.Keep = -1 })
	// 7 lines of 8 bytes: two per file, all rotated within one second.
	var want []string
	for i := range 7 {
		want = append(want, fmt.Sprintf("line-%02d", i))
	}
	mustWrite(t, h, want...)
	settle(h)
	got := names(t, dir)
	wantNames := []string{
		"app-2026-11-20T10-59-30.log", "app-2026-11-20T10-59-30_001.log", "app-2026-11-20T10-59-30_002.log", "app.log",
	}
	if !equal(got, wantNames) {
		t.Fatalf("files %q, want %q", got, wantNames)
	}
	var all []string
	for _, n := range got {
		l := lines(t, filepath.Join(dir, n))
		if len(l) > 2 {
			t.Errorf("%s holds %d lines, more than max_size allows", n, len(l))
		}
		all = append(all, l...)
	}
	if !equal(all, want) {
		t.Fatalf("lines across files: %q", all)
	}
}

func TestCollisionWithExistingFiles(t *testing.T) {
	dir := t.TempDir()
	// Backups of an earlier run under the names the next rotation
	// would pick (a restart, a clock set back).
	taken := filepath.Join(dir, "app-2026-11-20T11-00-00.log.gz")
	if err := os.WriteFile(taken, []byte("earlier run"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "app-2026-11-20T11-00-00_001.log.zst"), []byte("old archive"), 0o600); err != nil {
		t.Fatal(err)
	}
	h, clk := testWriter(t, dir, start, func(w *RotateWriter) { w.Every = "hourly"; w.Keep = -1 })
	mustWrite(t, h, "x")
	step(h, clk, time.Minute)
	if got, _ := os.ReadFile(taken); string(got) != "earlier run" {
		t.Fatalf("overwrote %s: %q", taken, got)
	}
	if got := lines(t, filepath.Join(dir, "app-2026-11-20T11-00-00_002.log.gz")); !equal(got, []string{"x"}) {
		t.Fatalf("backup: %q (files %q)", got, names(t, dir))
	}
}

func TestSizeAndScheduleWhicheverFirst(t *testing.T) {
	dir := t.TempDir()
	h, clk := testWriter(t, dir, start, func(w *RotateWriter) {
		w.Every = "*/15 * * * *"
		w.MaxSize = 10
		w.Compress = "zstd"
		w.Keep = -1
	})
	mustWrite(t, h, "aaaa", "bbbb") // 10 bytes: fits
	step(h, clk, 10*time.Second)
	mustWrite(t, h, "cccc") // would exceed: size rotation at 10:59:40
	step(h, clk, 20*time.Second)
	// 11:00: scheduled rotation of "cccc"
	step(h, clk, 14*time.Minute)
	mustWrite(t, h, "dddd")
	step(h, clk, time.Minute) // 11:15
	want := map[string][]string{
		"app-2026-11-20T10-59-40.log.zst": {"aaaa", "bbbb"},
		"app-2026-11-20T11-00-00.log.zst": {"cccc"},
		"app-2026-11-20T11-15-00.log.zst": {"dddd"},
		"app.log":                         nil,
	}
	if got := names(t, dir); len(got) != len(want) {
		t.Fatalf("files %q", got)
	}
	for name, w := range want {
		if got := lines(t, filepath.Join(dir, name)); !equal(got, w) {
			t.Errorf("%s: %q, want %q", name, got, w)
		}
	}
}

func TestMonthEnds(t *testing.T) {
	dir := t.TempDir()
	h, clk := testWriter(t, dir, time.Date(2026, 1, 31, 23, 59, 59, 0, time.UTC), func(w *RotateWriter) { w.Every = "monthly"; w.Keep = -1 })
	for _, month := range []string{"jan", "feb", "mar"} {
		mustWrite(t, h, month)
		step(h, clk, time.Second)
		// to the last second of the new month
		now := clk.Now()
		step(h, clk, now.AddDate(0, 1, 0).Add(-time.Second).Sub(now))
	}
	want := []string{"app-2026-02-01T00-00-00.log.gz", "app-2026-03-01T00-00-00.log.gz", "app-2026-04-01T00-00-00.log.gz", "app.log"}
	if got := names(t, dir); !equal(got, want) {
		t.Fatalf("files %q, want %q", got, want)
	}
	if got := lines(t, filepath.Join(dir, want[1])); !equal(got, []string{"feb"}) {
		t.Fatalf("February's backup holds %q", got)
	}
}

// TestLocalTimeDST rotates hourly on Berlin's clock across the autumn
// change: 02:00 happens twice, and the second backup of that wall-clock
// time gets a counter rather than overwriting the first.
func TestLocalTimeDST(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	dir := t.TempDir()
	from := time.Date(2026, 10, 25, 1, 30, 0, 0, berlin) // CEST
	h, clk := testWriter(t, dir, from, func(w *RotateWriter) {
		w.Every = "hourly"
		w.LocalTime = true
		w.loc = berlin
		w.Compress = "none"
		w.Keep = -1
	})
	for _, l := range []string{"01:30 CEST", "02:30 CEST", "02:30 CET", "03:30 CET"} {
		mustWrite(t, h, l)
		step(h, clk, time.Hour)
	}
	want := map[string]string{
		"app-2026-10-25T02-00-00.log":     "01:30 CEST",
		"app-2026-10-25T02-00-00_001.log": "02:30 CEST",
		"app-2026-10-25T03-00-00.log":     "02:30 CET",
		"app-2026-10-25T04-00-00.log":     "03:30 CET",
	}
	for name, w := range want {
		if got := lines(t, filepath.Join(dir, name)); !equal(got, []string{w}) {
			t.Errorf("%s: %q, want %q (files %q)", name, got, w, names(t, dir))
		}
	}
	// Spring: the hour 02:00-03:00 does not exist; rotations stay an hour apart.
	dir2 := t.TempDir()
	h2, clk2 := testWriter(t, dir2, time.Date(2026, 3, 29, 0, 30, 0, 0, berlin), func(w *RotateWriter) {
		w.Every = "hourly"
		w.LocalTime = true
		w.loc = berlin
		w.Compress = "none"
	})
	for range 3 {
		mustWrite(t, h2, "x")
		step(h2, clk2, time.Hour)
	}
	wantNames := []string{"app-2026-03-29T01-00-00.log", "app-2026-03-29T03-00-00.log", "app-2026-03-29T04-00-00.log", "app.log"}
	if got := names(t, dir2); !equal(got, wantNames) {
		t.Fatalf("files %q, want %q", got, wantNames)
	}
}

func TestKeepPrunesOnlyOwnBackups(t *testing.T) {
	dir := t.TempDir()
	others := []string{
		"app.log.1",                          // logrotate's
		"app-old.log.gz",                     // not a time
		"app-2026-13-45T00-00-00.log.gz",     // not a real time
		"other-2026-11-20T01-00-00.log.gz",   // another file's backup
		"app-2026-11-20T01-00-00.log.bak",    // another suffix
		"x-app-2026-11-20T01-00-00.log.gz",   // a per_host backup of another writer
		"app-2026-11-20T01-00-00.log.gz.old", // a copy
	}
	for _, n := range others {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("keep me"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	h, clk := testWriter(t, dir, start, func(w *RotateWriter) { w.Every = "hourly"; w.Keep = 2 })
	for i := range 5 {
		mustWrite(t, h, fmt.Sprint(i))
		step(h, clk, time.Hour)
	}
	want := append(slices.Clone(others), "app-2026-11-20T14-00-00.log.gz", "app-2026-11-20T15-00-00.log.gz", "app.log")
	slices.Sort(want)
	if got := names(t, dir); !equal(got, want) {
		t.Fatalf("files %q\nwant %q", got, want)
	}
	if got := lines(t, filepath.Join(dir, "app-2026-11-20T15-00-00.log.gz")); !equal(got, []string{"4"}) {
		t.Fatalf("newest backup holds %q", got)
	}
}

func TestMaxAge(t *testing.T) {
	dir := t.TempDir()
	h, clk := testWriter(t, dir, start, func(w *RotateWriter) {
		w.Every = "hourly"
		w.MaxAge = 3*3600e9 + 1 // a hair over 3 hours
	})
	for i := range 6 {
		mustWrite(t, h, fmt.Sprint(i))
		step(h, clk, time.Hour)
	}
	// now 16:59:30; backups from 14:00 on are at most 3h old
	want := []string{"app-2026-11-20T14-00-00.log.gz", "app-2026-11-20T15-00-00.log.gz", "app-2026-11-20T16-00-00.log.gz", "app.log"}
	if got := names(t, dir); !equal(got, want) {
		t.Fatalf("files %q, want %q", got, want)
	}
}

func TestCompressionFormatsAndMode(t *testing.T) {
	for _, tc := range []struct {
		algo   string
		level  int
		suffix string
	}{{"gzip", 0, ".gz"}, {"gzip", 9, ".gz"}, {"zstd", 0, ".zst"}, {"zstd", 19, ".zst"}, {"none", 0, ""}} {
		t.Run(fmt.Sprint(tc.algo, tc.level), func(t *testing.T) {
			dir := t.TempDir()
			h, clk := testWriter(t, dir, start, func(w *RotateWriter) {
				w.Every = "hourly"
				w.Compress = tc.algo
				w.CompressLevel = tc.level
				w.Mode = "0640"
			})
			var want []string
			for i := range 1000 {
				want = append(want, fmt.Sprintf(`{"level":"info","msg":"record %d","host":"10.0.0.1"}`, i))
			}
			mustWrite(t, h, want...)
			step(h, clk, time.Minute)
			backup := filepath.Join(dir, "app-2026-11-20T11-00-00.log"+tc.suffix)
			if got := lines(t, backup); !equal(got, want) {
				t.Fatalf("backup holds %d lines, want %d", len(got), len(want))
			}
			for _, p := range []string{backup, filepath.Join(dir, "app.log")} {
				info, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				if info.Mode().Perm() != 0o640 {
					t.Errorf("%s has mode %v, want 0640", p, info.Mode().Perm())
				}
			}
			if got := names(t, dir); len(got) != 2 {
				t.Fatalf("files %q", got)
			}
		})
	}
}

// TestRecovery starts a writer on a folder left by a crash at every step
// of compressFile.
func TestRecovery(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Crashed while writing the archive: plain + partial tmp.
	write("app-2026-11-20T01-00-00.log", "one\n")
	write("app-2026-11-20T01-00-00.log.gz.tmp", "\x1f\x8b partial")
	// Crashed after the rename, before removing the plain file.
	write("app-2026-11-20T02-00-00.log", "two\n")
	if err := compressFile(filepath.Join(dir, "app-2026-11-20T02-00-00.log"), compression{algo: "gzip", mode: 0o600}); err != nil {
		t.Fatal(err)
	}
	write("app-2026-11-20T02-00-00.log", "two\n")
	// A tmp without its plain file.
	write("app-2026-11-20T03-00-00.log.zst.tmp", "partial")
	// Crashed before compression started.
	write("app-2026-11-20T04-00-00.log", "four\n")
	// Not ours.
	write("app.log.tmp", "mine")

	h, _ := testWriter(t, dir, start, func(w *RotateWriter) { w.Every = "hourly" })
	settle(h)
	want := []string{"app-2026-11-20T01-00-00.log.gz", "app-2026-11-20T02-00-00.log.gz", "app-2026-11-20T04-00-00.log.gz", "app.log", "app.log.tmp"}
	if got := names(t, dir); !equal(got, want) {
		t.Fatalf("files %q, want %q", got, want)
	}
	for name, w := range map[string]string{want[0]: "one\n", want[1]: "two\n", want[2]: "four\n"} {
		if got := content(t, filepath.Join(dir, name)); got != w {
			t.Errorf("%s: %q, want %q", name, got, w)
		}
	}
}

// TestStaleFileRotatedOnOpen: Caddy was stopped before midnight and
// starts after it; yesterday's entries are rotated at once, under the
// name they would have had.
func TestStaleFileRotatedOnOpen(t *testing.T) {
	dir := t.TempDir()
	live := filepath.Join(dir, "app.log")
	if err := os.WriteFile(live, []byte("yesterday\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2026, 11, 19, 22, 0, 0, 0, time.UTC)
	if err := os.Chtimes(live, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	h, _ := testWriter(t, dir, start, func(w *RotateWriter) { w.Every = "daily" })
	mustWrite(t, h, "today")
	settle(h)
	if got := lines(t, filepath.Join(dir, "app-2026-11-20T00-00-00.log.gz")); !equal(got, []string{"yesterday"}) {
		t.Fatalf("backup holds %q (files %q)", got, names(t, dir))
	}
	if got := lines(t, live); !equal(got, []string{"today"}) {
		t.Fatalf("live file holds %q", got)
	}
}

func TestPerHost(t *testing.T) {
	dir := t.TempDir()
	h, clk := testWriter(t, dir, start, func(w *RotateWriter) { w.Every = "hourly"; w.PerHost = true; w.Compress = "none" })
	entries := map[string]string{
		`{"level":"info","host":"10.0.0.1","msg":"a"}`:                      "10.0.0.1-app.log",
		`{"msg":"b","attrs":{"host":"nested"},"host":"Example.COM"}`:        "example.com-app.log",
		`{"host":"::1","msg":"c"}`:                                          "__1-app.log",
		`{"host":"../../etc/passwd","msg":"d"}`:                             "_._.__etc_passwd-app.log",
		`{"host":"..","msg":"e"}`:                                           "_.-app.log",
		`{"host":"a\/b\u002e","msg":"f"}`:                                   "a_b.-app.log",
		`{"msg":"no host"}`:                                                 "app.log",
		`{"host":"","msg":"empty host"}`:                                    "app.log",
		`{"host":42,"msg":"number"}`:                                        "42-app.log",
		`2026/11/20 10:59:30.000 INFO not json`:                             "app.log",
		`{"msg":"s\"tr{ing","list":[1,{"host":"x"}],"host":"fe80::1%eth0"}`: "fe80__1_eth0-app.log",
	}
	for e := range entries {
		mustWrite(t, h, e)
	}
	for e, file := range entries {
		if got := lines(t, filepath.Join(dir, file)); !slices.Contains(got, e) {
			t.Errorf("%s not in %s (%q)", e, file, got)
		}
	}
	if n := h.sink.Load().meter.Unplaced.Load(); n != 3 {
		t.Errorf("counted %d unplaced entries (no host, empty host, not JSON), want 3", n)
	}
	// Each host's file rotates on its own, at the same boundary.
	step(h, clk, time.Minute)
	for _, want := range []string{"10.0.0.1-app-2026-11-20T11-00-00.log", "app-2026-11-20T11-00-00.log", "__1-app-2026-11-20T11-00-00.log"} {
		if _, err := os.Stat(filepath.Join(dir, want)); err != nil {
			t.Errorf("no %s: %q", want, names(t, dir))
		}
	}
	// Nothing escaped the folder.
	if err := filepath.Walk(filepath.Dir(dir), func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && !strings.HasPrefix(p, dir+string(filepath.Separator)) {
			t.Errorf("file outside the folder: %s", p)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func TestPerHostKeepIsPerHost(t *testing.T) {
	dir := t.TempDir()
	h, clk := testWriter(t, dir, start, func(w *RotateWriter) { w.Every = "hourly"; w.PerHost = true; w.Keep = 1 })
	for range 3 {
		mustWrite(t, h, `{"host":"a"}`, `{"host":"b"}`, `{}`)
		step(h, clk, time.Hour)
	}
	want := []string{
		"a-app-2026-11-20T13-00-00.log.gz", "a-app.log",
		"app-2026-11-20T13-00-00.log.gz", "app.log",
		"b-app-2026-11-20T13-00-00.log.gz", "b-app.log",
	}
	if got := names(t, dir); !equal(got, want) {
		t.Fatalf("files %q, want %q", got, want)
	}
}

func TestExternalMoveAndDelete(t *testing.T) {
	dir := t.TempDir()
	live := filepath.Join(dir, "app.log")
	h, clk := testWriter(t, dir, start, func(w *RotateWriter) { w.MaxSize = 1 << 20 })
	mustWrite(t, h, "before move")
	if err := os.Rename(live, live+".1"); err != nil {
		t.Fatal(err)
	}
	step(h, clk, checkInterval)
	mustWrite(t, h, "after move")
	if got := lines(t, live+".1"); !equal(got, []string{"before move"}) {
		t.Errorf("moved file holds %q", got)
	}
	if got := lines(t, live); !equal(got, []string{"after move"}) {
		t.Errorf("new file holds %q", got)
	}
	if err := os.Remove(live); err != nil {
		t.Fatal(err)
	}
	step(h, clk, checkInterval)
	mustWrite(t, h, "after delete")
	if got := lines(t, live); !equal(got, []string{"after delete"}) {
		t.Errorf("recreated file holds %q", got)
	}
	// Even the folder.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	step(h, clk, checkInterval)
	mustWrite(t, h, "after rm -r")
	if got := lines(t, live); !equal(got, []string{"after rm -r"}) {
		t.Errorf("recreated file holds %q", got)
	}
	// The sink's goroutine notices by itself too.
	if err := os.Rename(live, live+".2"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(checkInterval)
	waitFor(t, "the file to be recreated", func() bool { _, err := os.Stat(live); return err == nil })
}

func TestFlushInterval(t *testing.T) {
	dir := t.TempDir()
	live := filepath.Join(dir, "app.log")
	h, clk := testWriter(t, dir, start, func(w *RotateWriter) { w.Flush = "5s" })
	mustWrite(t, h, "buffered")
	if got := lines(t, live); got != nil {
		t.Fatalf("written before the interval: %q", got)
	}
	step(h, clk, 5*time.Second)
	if got := lines(t, live); !equal(got, []string{"buffered"}) {
		t.Fatalf("not flushed after the interval: %q", got)
	}
	mustWrite(t, h, "at close")
	h.Close()
	if got := lines(t, live); !equal(got, []string{"buffered", "at close"}) {
		t.Fatalf("not flushed at close: %q", got)
	}
}

// TestFlushBatch: with `flush batch` an entry reaches the file without
// any timer (the fake clock never moves), written by the flusher
// goroutine; Sync and Close write what is buffered at once.
func TestFlushBatch(t *testing.T) {
	dir := t.TempDir()
	live := filepath.Join(dir, "app.log")
	h, _ := testWriter(t, dir, start, func(w *RotateWriter) { w.Flush = "batch" })
	meter := h.sink.Load().meter
	entries0 := meter.Entries.Load()
	mustWrite(t, h, "one", "two")
	waitFor(t, "the flusher to write the batch", func() bool { return equal(lines(t, live), []string{"one", "two"}) })
	// Later batches kick the flusher again.
	for i := range 50 {
		mustWrite(t, h, fmt.Sprintf("e%02d", i))
	}
	waitFor(t, "the second batch", func() bool { return len(lines(t, live)) == 52 })
	if got := meter.Entries.Load() - entries0; got != 52 {
		t.Errorf("entries counted %d, want 52", got)
	}
	// Sync writes at once, whether or not the flusher has run.
	mustWrite(t, h, "synced")
	if err := h.Sync(); err != nil {
		t.Fatal(err)
	}
	if got := lines(t, live); len(got) != 53 || got[52] != "synced" {
		t.Fatalf("after Sync the file ends %q", got[max(len(got)-2, 0):])
	}
	mustWrite(t, h, "at close")
	h.Close()
	if got := lines(t, live); len(got) != 54 || got[53] != "at close" {
		t.Fatalf("after Close the file ends %q", got[max(len(got)-2, 0):])
	}
}

func TestWriteAfterClose(t *testing.T) {
	dir := t.TempDir()
	h, _ := testWriter(t, dir, start, nil)
	mustWrite(t, h, "open")
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, h, "closed")
	if got := lines(t, filepath.Join(dir, "app.log")); !equal(got, []string{"open", "closed"}) {
		t.Fatalf("file holds %q", got)
	}
}

func TestSameConfigDifferentOptionsRefused(t *testing.T) {
	dir := t.TempDir()
	gen := new(int)
	a := &RotateWriter{Filename: filepath.Join(dir, "app.log"), gen: gen}
	b := &RotateWriter{Filename: filepath.Join(dir, "app.log"), Keep: 3, gen: gen}
	for _, w := range []*RotateWriter{a, b} {
		if err := w.setup(); err != nil {
			t.Fatal(err)
		}
	}
	wa, err := a.OpenWriter()
	if err != nil {
		t.Fatal(err)
	}
	defer wa.Close()
	if _, err := b.OpenWriter(); err == nil || !strings.Contains(err.Error(), "different options") {
		t.Fatalf("got %v, want an error about different options", err)
	}
	// Another config (a reload) may change them.
	b.gen = new(int)
	wb, err := b.OpenWriter()
	if err != nil {
		t.Fatal(err)
	}
	wb.Close()
}

// TestReloadHandover writes from many goroutines through an old and a
// new writer for the same file with different options, closing the old
// one half way, as a Caddy reload does; every line must land exactly
// once across the live file and the backups.
func TestReloadHandover(t *testing.T) {
	dir := t.TempDir()
	clk := newFakeClock(start)
	open := func(mod func(w *RotateWriter)) *handle {
		w := &RotateWriter{Filename: filepath.Join(dir, "app.log"), clock: clk, Keep: -1, gen: new(int)}
		mod(w)
		if err := w.setup(); err != nil {
			t.Fatal(err)
		}
		wc, err := w.OpenWriter()
		if err != nil {
			t.Fatal(err)
		}
		return wc.(*handle)
	}
	old := open(func(w *RotateWriter) { w.MaxSize = 4096; w.Compress = "gzip" })
	const writers, perWriter = 6, 3000
	var wg sync.WaitGroup
	var newer *handle
	var newerOnce sync.Once
	ready := make(chan struct{})
	for g := range writers {
		wg.Go(func() {
			for i := range perWriter {
				w := old
				if i >= perWriter/2 {
					newerOnce.Do(func() {
						newer = open(func(w *RotateWriter) { w.MaxSize = 2048; w.Compress = "zstd"; w.Flush = "1ms" })
						close(ready)
					})
					<-ready
					if i%2 == 0 || i > perWriter*3/4 {
						w = newer
					}
				}
				if i == perWriter*3/4 && g == 0 {
					old.Close()
				}
				if _, err := fmt.Fprintf(w, "%d-%d\n", g, i); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	old.Close()
	newer.Close()
	seen := map[string]int{}
	zst := 0
	for _, n := range names(t, dir) {
		if strings.HasSuffix(n, ".zst") {
			zst++
		}
		for _, l := range lines(t, filepath.Join(dir, n)) {
			seen[l]++
		}
	}
	if zst == 0 {
		t.Errorf("the new options did not apply: no zstd backup in %q", names(t, dir))
	}
	for g := range writers {
		for i := range perWriter {
			if n := seen[fmt.Sprintf("%d-%d", g, i)]; n != 1 {
				t.Fatalf("line %d-%d found %d times", g, i, n)
			}
		}
	}
	if len(seen) != writers*perWriter {
		t.Fatalf("%d distinct lines, want %d", len(seen), writers*perWriter)
	}
}

func TestWriterKeyHasEveryOption(t *testing.T) {
	base := RotateWriter{Filename: "/var/log/app.log"}
	variants := []func(w *RotateWriter){
		func(w *RotateWriter) { w.Every = "daily" },
		func(w *RotateWriter) { w.MaxSize = 1 },
		func(w *RotateWriter) { w.Keep = 1 },
		func(w *RotateWriter) { w.MaxAge = 1 },
		func(w *RotateWriter) { w.Compress = "zstd" },
		func(w *RotateWriter) { w.CompressLevel = 1 },
		func(w *RotateWriter) { w.LocalTime = true },
		func(w *RotateWriter) { w.Mode = "0640" },
		func(w *RotateWriter) { w.PerHost = true },
		func(w *RotateWriter) { w.Flush = "1ns" },
		func(w *RotateWriter) { w.Flush = "batch" },
		func(w *RotateWriter) { w.NameFormat = "{name}.{time}{n}{ext}" },
		func(w *RotateWriter) { w.Filename = "/var/log/other.log" },
	}
	keys := map[string]bool{base.WriterKey(): true}
	for i, mod := range variants {
		w := base
		mod(&w)
		k := w.WriterKey()
		if keys[k] {
			t.Errorf("variant %d has the key of another: %s", i, k)
		}
		keys[k] = true
	}
}

// TestCaddyLifecycle loads real configs into Caddy, which never closes
// its pooled writers: the leases must detach the writers of unloaded
// and failed configs, re-attach a pooled writer Caddy hands out again,
// and shut the file down when no config uses it.
func TestCaddyLifecycle(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "caddy.log")
	load := func(keep int, extra string) error {
		return caddy.Load([]byte(fmt.Sprintf(`{"admin":{"disabled":true,"config":{"persist":false}},
			"logging":{"logs":{"default":{"writer":{"output":"rotate","filename":%q,"keep":%d,"compress":"none"}}}}%s}`, path, keep, extra)), true)
	}
	sinkState := func() (handles int, keep int) {
		registry.Lock()
		s := registry.sinks[path]
		registry.Unlock()
		if s == nil {
			return 0, 0
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.handles), s.opts.ret.keep
	}
	waitState := func(what string, handles, keep int) {
		t.Helper()
		waitFor(t, what, func() bool { h, k := sinkState(); return h == handles && k == keep })
	}
	defer caddy.Stop()

	if err := load(3, ""); err != nil {
		t.Fatal(err)
	}
	waitState("the first config's writer", 1, 3)
	if err := load(4, ""); err != nil {
		t.Fatal(err)
	}
	waitState("the old config's writer to be detached", 1, 4)
	if err := load(5, `,"apps":{"no_such_app":{}}`); err == nil {
		t.Fatal("a config with an unknown app loaded")
	}
	waitState("the failed config's writer to be detached and the options restored", 1, 4)
	caddy.Log().Info("with keep 4")
	if err := load(3, ""); err != nil { // Caddy's pool hands out the first writer again
		t.Fatal(err)
	}
	waitState("the first writer to be attached again", 1, 3)
	caddy.Log().Info("with keep 3 again")
	if err := caddy.Load([]byte(`{"admin":{"disabled":true,"config":{"persist":false}}}`), true); err != nil {
		t.Fatal(err)
	}
	waitState("the file to be shut down", 0, 0)
	var msgs []string
	for _, l := range lines(t, path) {
		var e struct{ Msg string }
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		msgs = append(msgs, e.Msg)
	}
	for _, want := range []string{"with keep 4", "with keep 3 again"} {
		if !slices.Contains(msgs, want) {
			t.Errorf("%q not logged: %q", want, msgs)
		}
	}
}

// TestExitDrainFlushes: the exit drain flushes and closes the file of a
// config Caddy never unloaded; later writes are appended without a sink.
// Unloading the config afterwards deletes the key.
func TestExitDrainFlushes(t *testing.T) {
	dir := t.TempDir()
	n := leases.Len()
	w := &RotateWriter{Filename: filepath.Join(dir, "app.log"), clock: newFakeClock(start), Flush: "1000s"}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	if err := w.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	wc, err := w.OpenWriter()
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, wc, "buffered")
	leases.Drain()
	if got := lines(t, filepath.Join(dir, "app.log")); !equal(got, []string{"buffered"}) {
		t.Fatalf("after the exit drain: %q", got)
	}
	mustWrite(t, wc, "last words") // appended without the sink
	if got := lines(t, filepath.Join(dir, "app.log")); !equal(got, []string{"buffered", "last words"}) {
		t.Fatalf("after the exit drain: %q", got)
	}
	cancel()
	waitFor(t, "the key to be deleted", func() bool { return leases.Len() == n })
}

// TestLeaseKeyDeleted: two configs share a key; the last one's end
// deletes it and detaches the handle, and a later config with the same
// options attaches the handle Caddy kept again.
func TestLeaseKeyDeleted(t *testing.T) {
	dir := t.TempDir()
	n := leases.Len()
	provision := func() (*RotateWriter, context.CancelFunc) {
		w := &RotateWriter{Filename: filepath.Join(dir, "app.log"), clock: newFakeClock(start)}
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		if err := w.Provision(ctx); err != nil {
			t.Fatal(err)
		}
		return w, cancel
	}
	w1, cancel1 := provision()
	wc, err := w1.OpenWriter()
	if err != nil {
		t.Fatal(err)
	}
	h := wc.(*handle)
	_, cancel2 := provision()
	cancel1()
	mustWrite(t, h, "one")
	if h.sink.Load() == nil {
		t.Fatal("unloading one of two configs detached their handle")
	}
	cancel2()
	waitFor(t, "the key to be deleted", func() bool { return leases.Len() == n && h.sink.Load() == nil })
	_, cancel3 := provision()
	if h.sink.Load() == nil {
		t.Fatal("a new config with the same options did not attach the handle Caddy kept")
	}
	mustWrite(t, h, "two")
	cancel3()
	waitFor(t, "the key to be deleted again", func() bool { return leases.Len() == n && h.sink.Load() == nil })
	if got := lines(t, filepath.Join(dir, "app.log")); !equal(got, []string{"one", "two"}) {
		t.Fatalf("file holds %q", got)
	}
}

// TestRotationFailureKeepsWriting: when a backup cannot be made (here,
// its name would be too long for the file system), entries keep going
// to the live file, and rotation is retried a minute later rather than
// at every write.
func TestRotationFailureKeepsWriting(t *testing.T) {
	dir := t.TempDir()
	live := strings.Repeat("x", 240) + ".log"
	clk := newFakeClock(start)
	w := &RotateWriter{Filename: filepath.Join(dir, live), clock: clk, MaxSize: 10, Compress: "none", Flush: "always"}
	if err := w.setup(); err != nil {
		t.Fatal(err)
	}
	wc, err := w.OpenWriter()
	if err != nil {
		t.Fatal(err)
	}
	h := wc.(*handle)
	defer h.Close()
	mustWrite(t, h, "aaaaaaaa", "bbbbbbbb", "cccccccc")
	if n := len(h.sink.Load().pending); n != 0 {
		t.Fatalf("%d messages left unlogged", n)
	}
	step(h, clk, 30*time.Second)
	mustWrite(t, h, "dddddddd")
	if got := lines(t, filepath.Join(dir, live)); !equal(got, []string{"aaaaaaaa", "bbbbbbbb", "cccccccc", "dddddddd"}) {
		t.Fatalf("live file: %q", got)
	}
	s := h.sink.Load()
	s.mu.Lock()
	retryAt := s.main.retryAt
	s.mu.Unlock()
	if want := start.Add(time.Minute); !retryAt.Equal(want) {
		t.Fatalf("next attempt at %s, want %s", retryAt, want)
	}
}

// TestCaddySharedFile: two log blocks naming one file share one open
// file; with different options in one config they are refused.
func TestCaddySharedFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "shared.log")
	cfg := func(keepA, keepB int) []byte {
		return []byte(fmt.Sprintf(`{"admin":{"disabled":true,"config":{"persist":false}},"logging":{"logs":{
			"a":{"writer":{"output":"rotate","filename":%q,"keep":%d},"include":["a"]},
			"b":{"writer":{"output":"rotate","filename":%q,"keep":%d},"include":["b"]}}}}`, path, keepA, path, keepB))
	}
	defer caddy.Stop()
	if err := caddy.Load(cfg(3, 3), true); err != nil {
		t.Fatal(err)
	}
	registry.Lock()
	s := registry.sinks[path]
	registry.Unlock()
	if s == nil {
		t.Fatal("no open file")
	}
	s.mu.Lock()
	n := len(s.handles)
	s.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d writers for one file with the same options, want 1", n)
	}
	err := caddy.Load(cfg(3, 4), true)
	if err == nil || !strings.Contains(err.Error(), "different options") {
		t.Fatalf("got %v, want an error about different options", err)
	}
}
