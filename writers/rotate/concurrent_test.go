package rotate

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestConcurrentWritesAcrossRotations has 8 goroutines write at once to a
// file that rotates by size every few entries, so that rotations fall
// between them: every entry must be in exactly one file, whole, each file
// within max_size, and the entry and byte counters exact.
//
// With `flush batch` the same holds once the batches are written (Sync).
func TestConcurrentWritesAcrossRotations(t *testing.T) {
	t.Run("flush=always", func(t *testing.T) { testConcurrentWrites(t, false) })
	t.Run("flush=batch", func(t *testing.T) { testConcurrentWrites(t, true) })
}

func testConcurrentWrites(t *testing.T, batch bool) {
	dir := t.TempDir()
	h, _ := testWriter(t, dir, start, func(w *RotateWriter) {
		w.MaxSize = 200
		w.Compress = "none"
		w.Keep = -1
		w.Flush = map[bool]string{true: "batch", false: "always"}[batch]
	})
	meter := h.sink.Load().meter
	entries0, bytes0 := meter.Entries.Load(), meter.Bytes.Load()
	const goroutines, each = 8, 500
	writeConcurrently(t, h, goroutines, each, func(g, i int) string { return fmt.Sprintf("g%d-%04d\n", g, i) }) // 8 bytes
	seen := map[string]int{}
	for _, n := range names(t, dir) {
		path := filepath.Join(dir, n)
		if size := len(content(t, path)); size > 200 {
			t.Errorf("%s is %d bytes, over max_size 200", n, size)
		}
		for _, l := range lines(t, path) {
			if len(l) != 7 || !strings.HasPrefix(l, "g") {
				t.Errorf("%s: torn or mixed line %q", n, l)
			}
			seen[l]++
		}
	}
	for g := range goroutines {
		for i := range each {
			if l := fmt.Sprintf("g%d-%04d", g, i); seen[l] != 1 {
				t.Fatalf("%s written %d times", l, seen[l])
			}
		}
	}
	if got := meter.Entries.Load() - entries0; got != goroutines*each {
		t.Errorf("entries counted %d, want %d", got, goroutines*each)
	}
	if got := meter.Bytes.Load() - bytes0; got != goroutines*each*8 {
		t.Errorf("bytes counted %d, want %d", got, goroutines*each*8)
	}
}

// TestFlushBatchOverflowConcurrent has 4 goroutines write 1.6 MB of
// entries with `flush batch`, so that batches overflow (the writer whose
// entry does not fit writes the batch itself, without the lock) and the
// file rotates by size between batches: every entry must be in exactly
// one file, whole, and each goroutine's entries in the order it wrote
// them.
func TestFlushBatchOverflowConcurrent(t *testing.T) {
	dir := t.TempDir()
	h, _ := testWriter(t, dir, start, func(w *RotateWriter) {
		w.MaxSize = 400 << 10
		w.Compress = "none"
		w.Keep = -1
		w.Flush = "batch"
	})
	const goroutines, each = 4, 2000
	pad := strings.Repeat("x", 188)
	writeConcurrently(t, h, goroutines, each, func(g, i int) string { return fmt.Sprintf("g%d-%05d %s\n", g, i, pad) }) // 198 bytes
	files := names(t, dir)
	if len(files) < 4 {
		t.Errorf("%d files, want rotations by size: %v", len(files), files)
	}
	checkEntries(t, dir, files, pad, []int{each, each, each, each})
}

// checkEntries reads files (of dir) in their order: every line must be
// an entry "g<g>-<i, 5 digits> <pad>", whole, and goroutine g's entries
// 0 to counts[g]-1 each there once, in the order it wrote them.
func checkEntries(t *testing.T, dir string, files []string, pad string, counts []int) {
	t.Helper()
	seen := map[string]int{}
	last := map[byte]int{}
	for _, n := range files {
		for _, l := range lines(t, filepath.Join(dir, n)) {
			id, rest, ok := strings.Cut(l, " ")
			if !ok || rest != pad || len(id) != 8 {
				t.Fatalf("%s: torn or mixed line %.40q", n, l)
			}
			seen[id]++
			var g byte
			var i int
			if _, err := fmt.Sscanf(id, "g%c-%d", &g, &i); err != nil {
				t.Fatalf("%s: line %q: %v", n, l, err)
			}
			if prev, ok := last[g]; ok && i <= prev {
				t.Fatalf("%s: %s comes after g%c-%05d", n, id, g, prev)
			}
			last[g] = i
		}
	}
	total := 0
	for g, count := range counts {
		for i := range count {
			if id := fmt.Sprintf("g%d-%05d", g, i); seen[id] != 1 {
				t.Fatalf("%s written %d times", id, seen[id])
			}
		}
		total += count
	}
	if len(seen) != total {
		t.Errorf("%d distinct entries in the files, %d written", len(seen), total)
	}
}

// writeConcurrently has goroutines write each entries at once through h,
// entry(g, i) being the i-th of goroutine g, then writes out what is
// buffered and waits for the archiver.
func writeConcurrently(t *testing.T, h *handle, goroutines, each int, entry func(g, i int) string) {
	t.Helper()
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				line := entry(g, i)
				if n, err := h.Write([]byte(line)); err != nil || n != len(line) {
					t.Errorf("write: %d, %v", n, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := h.Sync(); err != nil {
		t.Fatal(err)
	}
	settle(h)
}
