package rotate

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// fakeClock is a clock that only moves when told to.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c  *fakeClock
	at time.Time
	ch chan time.Time
}

func newFakeClock(now time.Time) *fakeClock { return &fakeClock{now: now} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) TimerAt(at time.Time) timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: at, ch: make(chan time.Time, 1)}
	if !at.After(c.now) {
		t.ch <- c.now
		return t
	}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	for i, x := range t.c.timers {
		if x == t {
			t.c.timers = append(t.c.timers[:i], t.c.timers[i+1:]...)
			return true
		}
	}
	return false
}

// Advance moves the clock and fires the timers that are due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.timers[:0]
	for _, t := range c.timers {
		if !t.at.After(c.now) {
			t.ch <- c.now
		} else {
			kept = append(kept, t)
		}
	}
	c.timers = kept
}

// testWriter opens a rotate writer on dir/app.log with a fake clock
// starting at start, after mod adjusts its configuration.
func testWriter(t *testing.T, dir string, start time.Time, mod func(w *RotateWriter)) (*handle, *fakeClock) {
	t.Helper()
	clk := newFakeClock(start)
	// Each entry written at once unless a test says otherwise, so that
	// what a test reads does not depend on the flusher goroutine.
	w := &RotateWriter{Filename: filepath.Join(dir, "app.log"), clock: clk, Flush: "always"}
	if mod != nil {
		mod(w)
	}
	if err := w.setup(); err != nil {
		t.Fatal(err)
	}
	if err := w.Validate(); err != nil {
		t.Fatal(err)
	}
	wc, err := w.OpenWriter()
	if err != nil {
		t.Fatal(err)
	}
	h := wc.(*handle)
	t.Cleanup(func() { h.Close() })
	return h, clk
}

// step advances the clock and runs the sink's due work right away
// (the sink's own goroutine may run it too: the lock makes that
// harmless), then waits for the archiver.
func step(h *handle, clk *fakeClock, d time.Duration) {
	clk.Advance(d)
	s := h.sink.Load()
	s.mu.Lock()
	s.tick()
	s.mu.Unlock()
	s.emit()
	s.arch.wait()
}

// settle waits for the archiver of h's sink.
func settle(h *handle) { h.sink.Load().arch.wait() }

func mustWrite(t *testing.T, w io.Writer, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if _, err := w.Write([]byte(l + "\n")); err != nil {
			t.Fatal(err)
		}
	}
}

// names returns the sorted names of the files in dir.
func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

// content returns a file's content, decompressed by its suffix.
func content(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case strings.HasSuffix(path, ".gz"):
		r, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if data, err = io.ReadAll(r); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	case strings.HasSuffix(path, ".zst"):
		r, err := zstd.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		defer r.Close()
		if data, err = io.ReadAll(r); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	return string(data)
}

// lines returns the lines of a file, decompressed.
func lines(t *testing.T, path string) []string {
	t.Helper()
	c := strings.TrimSuffix(content(t, path), "\n")
	if c == "" {
		return nil
	}
	return strings.Split(c, "\n")
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// waitFor polls cond for up to 5 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
