package rotate

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestRotateUnderLoadOnClock is integration's TestRotateUnderLoad on the
// fake clock: goroutines write while the file rotates by size many times
// and the clock is moved over three minute boundaries (`every "* * * * *"`,
// gzip), so that scheduled rotations fire from the sink's own goroutine
// in the middle of writes. Every entry must be in exactly one file, and
// reading the files in name order (backups by time, then the live file)
// must give each goroutine's entries in the order it wrote them.
func TestRotateUnderLoadOnClock(t *testing.T) {
	dir := t.TempDir()
	h, clk := testWriter(t, dir, start, func(w *RotateWriter) {
		w.Every = "* * * * *"
		w.MaxSize = 16 << 10
		w.Keep = -1
		w.Compress = "gzip"
	})
	const goroutines, between = 4, 2000 // entries written between two boundaries
	pad := strings.Repeat("x", 40)
	// The goroutines write while written < allowed, which the test raises
	// by between for each boundary, moving the clock halfway through.
	var written, allowed atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	counts := make([]int, goroutines) // each goroutine's entries
	for g := range goroutines {
		wg.Go(func() {
			for i := 0; ; {
				if written.Load() >= allowed.Load() {
					select {
					case <-stop:
						counts[g] = i
						return
					case <-time.After(100 * time.Microsecond):
					}
					continue
				}
				line := fmt.Sprintf("g%d-%05d %s\n", g, i, pad)
				if n, err := h.Write([]byte(line)); err != nil || n != len(line) {
					t.Errorf("write: %d, %v", n, err)
				}
				i++
				written.Add(1)
			}
		})
	}
	stopped := false
	stopWriters := func() {
		if !stopped {
			stopped = true
			close(stop)
			wg.Wait()
		}
	}
	defer stopWriters()
	// reach waits (bounded) until the goroutines wrote n entries.
	reach := func(n int64) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for written.Load() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%d entries written, want %d", written.Load(), n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	for k := 1; k <= 3; k++ {
		reach(allowed.Add(between) - between/2)
		clk.Advance(time.Minute)
		// The clock is mid-minute, so only the scheduled rotation makes
		// a backup named after the boundary itself.
		scheduled := filepath.Join(dir, start.Truncate(time.Minute).Add(time.Duration(k)*time.Minute).Format("app-2006-01-02T15-04-05.log.gz"))
		waitFor(t, filepath.Base(scheduled), func() bool { _, err := os.Stat(scheduled); return err == nil })
	}
	reach(allowed.Add(between))
	stopWriters()
	if err := h.Sync(); err != nil {
		t.Fatal(err)
	}
	settle(h)

	files := names(t, dir)
	if len(files) < 6 {
		t.Errorf("%d files, want several size and scheduled rotations: %q", len(files), files)
	}
	for _, n := range files {
		if n != "app.log" && !strings.HasSuffix(n, ".log.gz") {
			t.Errorf("backup %s is not compressed", n)
		}
	}
	// In name order: backups by time, then the live file.
	checkEntries(t, dir, files, pad, counts)
}
