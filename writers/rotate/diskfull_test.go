//go:build linux

package rotate

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// limitFileSize makes writes past size bytes fail partway with EFBIG,
// as writes on a full disk fail with ENOSPC: the kernel writes what fits
// and refuses the rest. Go ignores SIGXFSZ, so the process carries on.
// It returns the function that lifts the limit (space is back).
func limitFileSize(t *testing.T, size uint64) (lift func()) {
	t.Helper()
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Skipf("getrlimit: %v", err)
	}
	lim := old
	lim.Cur = size
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Skipf("setrlimit: %v", err)
	}
	lifted := false
	lift = func() {
		if !lifted {
			lifted = true
			if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(lift)
	return lift
}

// TestFailedWriteLeavesNoTornLine: a write that fails partway is cut
// back, so after the disk has room again the next entry starts its own
// line, and a buffered writer works again (its failed batch is dropped,
// not kept to fail again).
func TestFailedWriteLeavesNoTornLine(t *testing.T) {
	for _, flush := range []time.Duration{0, 5 * time.Second, -1} {
		name := "flush=" + flush.String()
		if flush < 0 {
			name = "flush=batch"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			live := filepath.Join(dir, "app.log")
			h, clk := testWriter(t, dir, start, func(w *RotateWriter) {
				switch {
				case flush < 0:
					w.Flush = "batch"
				case flush == 0:
					w.Flush = "always"
				default:
					w.Flush = time.Duration(flush).String()
				}
			})
			step := func(h *handle, clk *fakeClock, d time.Duration) {
				if flush < 0 {
					_ = h.Sync() // what the flusher does, now; fails while the disk is full
					return
				}
				step(h, clk, d)
			}
			entry := func(name string) string { return name + strings.Repeat(".", 29-len(name)) } // 30 bytes with its newline
			mustWrite(t, h, entry("one"), entry("two"))
			step(h, clk, flush)
			lift := limitFileSize(t, 75) // room for two and a half entries
			errs0 := h.sink.Load().meter.Errors.Load()
			for _, e := range []string{entry("three"), entry("four")} {
				_, _ = h.Write([]byte(e + "\n")) // fails now (unbuffered) or at the flush
			}
			step(h, clk, flush)
			if got := h.sink.Load().meter.Errors.Load() - errs0; got != 2 {
				t.Errorf("%d write errors counted, want 2", got)
			}
			if info, err := os.Stat(live); err != nil || info.Size() != 60 {
				t.Fatalf("after the failed writes: size %v (%v), want 60: the torn entry must be cut off", info.Size(), err)
			}
			lift()
			mustWrite(t, h, entry("five"))
			step(h, clk, flush)
			if got, want := lines(t, live), []string{entry("one"), entry("two"), entry("five")}; !equal(got, want) {
				t.Fatalf("file holds %q, want %q", got, want)
			}
		})
	}
}
