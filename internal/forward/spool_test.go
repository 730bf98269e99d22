package forward

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-applog/caddy-applog/module/status"
)

func testSpool(t *testing.T, dir string, maxSize int64, onFull string) (*spool, *status.Writer) {
	t.Helper()
	meter := status.WriterMeter("tls-test", dir+onFull+fmt.Sprint(time.Now().UnixNano()))
	s, err := openSpool(dir, maxSize, onFull, 0, meter, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	return s, meter
}

// drain reads every record held, without committing.
func drain(t *testing.T, q queue) []record {
	t.Helper()
	var all []record
	from := q.head()
	for {
		recs, err := q.read(from, 1000, nil, 10*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			return all
		}
		all = append(all, recs...)
		from = recs[len(recs)-1].end
	}
}

func metas(recs []record) []meta {
	m := make([]meta, len(recs))
	for i, r := range recs {
		m[i] = meta{end: r.end, size: r.size, ts: r.ts}
	}
	return m
}

func TestSpoolKeepsUndeliveredAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	s, meter := testSpool(t, dir, 1<<30, "block")
	for i := range 100 {
		if err := s.put(fmt.Appendf(nil, "record %03d\n", i)); err != nil {
			t.Fatal(err)
		}
	}
	recs := drain(t, s)
	if len(recs) != 100 || string(recs[0].data) != "record 000" || string(recs[99].data) != "record 099" {
		t.Fatalf("read %d records, first %q", len(recs), recs[0].data)
	}
	s.commit(metas(recs[:40]))
	if got := meter.SpoolDepth.Load(); got != 60 {
		t.Errorf("depth after committing 40 of 100 = %d, want 60", got)
	}
	if meter.Entries.Load() != 40 || meter.Bytes.Load() != 40*10 {
		t.Errorf("delivered entries/bytes = %d/%d, want 40/400", meter.Entries.Load(), meter.Bytes.Load())
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}

	s2, _ := testSpool(t, dir, 1<<30, "block")
	defer s2.close()
	recs = drain(t, s2)
	if len(recs) != 60 || string(recs[0].data) != "record 040" {
		t.Fatalf("after reopening: %d records, first %q; want 60 from record 040", len(recs), recs[0].data)
	}
	if s2.depth() != 60 {
		t.Errorf("depth after reopening = %d, want 60", s2.depth())
	}
}

func TestSpoolCutsTornTail(t *testing.T) {
	dir := t.TempDir()
	s, _ := testSpool(t, dir, 1<<30, "block")
	for i := range 10 {
		if err := s.put(fmt.Appendf(nil, "r%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	seg := s.segs[len(s.segs)-1].f.Name()
	s.close()
	// A crash in the middle of a write leaves part of a frame.
	f, err := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{0, 0, 0, 50, 1, 2, 3, 4, 5, 6, 7})
	f.Close()
	before, _ := os.Stat(seg)

	s2, _ := testSpool(t, dir, 1<<30, "block")
	defer s2.close()
	if recs := drain(t, s2); len(recs) != 10 || string(recs[9].data) != "r9" {
		t.Fatalf("after a torn write: %d records", len(recs))
	}
	after, _ := os.Stat(seg)
	if after.Size() != before.Size()-11 {
		t.Errorf("segment is %d bytes, want the torn 11 cut from %d", after.Size(), before.Size())
	}
	// New records go after the good ones.
	if err := s2.put([]byte("r10")); err != nil {
		t.Fatal(err)
	}
	if recs := drain(t, s2); len(recs) != 11 || string(recs[10].data) != "r10" {
		t.Fatalf("after appending: %d records", len(recs))
	}
}

func TestSpoolSegmentsRollAndAreDeleted(t *testing.T) {
	dir := t.TempDir()
	s, _ := testSpool(t, dir, 1<<30, "block")
	defer s.close()
	s.segSize = 1000
	payload := make([]byte, 84) // 100-byte frames
	for range 95 {
		if err := s.put(payload); err != nil {
			t.Fatal(err)
		}
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "segment-*.spool"))
	if len(segs) != 10 {
		t.Fatalf("%d segments for 95 records of 100 bytes in 1000-byte segments, want 10", len(segs))
	}
	recs := drain(t, s)
	if len(recs) != 95 {
		t.Fatalf("read %d records across segments, want 95", len(recs))
	}
	s.commit(metas(recs[:55]))
	s.gc()
	segs, _ = filepath.Glob(filepath.Join(dir, "segment-*.spool"))
	if len(segs) != 5 {
		t.Errorf("%d segments left after delivering 55 records, want 5", len(segs))
	}
}

func TestSpoolOnFull(t *testing.T) {
	const frame = 16 + 100
	payload := func(i int) []byte { return fmt.Appendf(nil, "%-100d", i) }
	t.Run("drop_newest", func(t *testing.T) {
		s, meter := testSpool(t, t.TempDir(), 1<<16, "drop_newest")
		defer s.close()
		fits := (1 << 16) / frame
		for i := range fits + 50 {
			err := s.put(payload(i))
			if (i < fits) != (err == nil) {
				t.Fatalf("put %d: %v", i, err)
			}
		}
		recs := drain(t, s)
		if len(recs) != fits || meter.Dropped.Load() != 50 {
			t.Fatalf("held %d (want %d), dropped %d (want 50)", len(recs), fits, meter.Dropped.Load())
		}
		if string(recs[0].data[:1]) != "0" {
			t.Errorf("oldest held is %q, want record 0", recs[0].data[:4])
		}
	})
	t.Run("drop_oldest", func(t *testing.T) {
		s, meter := testSpool(t, t.TempDir(), 1<<16, "drop_oldest")
		defer s.close()
		fits := (1 << 16) / frame
		for i := range fits + 50 {
			if err := s.put(payload(i)); err != nil {
				t.Fatal(err)
			}
		}
		recs := drain(t, s)
		if len(recs) != fits || meter.Dropped.Load() != 50 {
			t.Fatalf("held %d (want %d), dropped %d (want 50)", len(recs), fits, meter.Dropped.Load())
		}
		if got := string(recs[0].data[:2]); got != "50" {
			t.Errorf("oldest held is %q, want record 50", recs[0].data[:4])
		}
	})
	t.Run("block", func(t *testing.T) {
		s, meter := testSpool(t, t.TempDir(), 1<<16, "block")
		defer s.close()
		fits := (1 << 16) / frame
		for i := range fits {
			if err := s.put(payload(i)); err != nil {
				t.Fatal(err)
			}
		}
		put := make(chan error)
		go func() { put <- s.put(payload(fits)) }()
		select {
		case err := <-put:
			t.Fatalf("put into a full spool returned (%v) instead of waiting", err)
		case <-time.After(200 * time.Millisecond):
		}
		recs := drain(t, s)
		s.commit(metas(recs[:1]))
		select {
		case err := <-put:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("put still blocked after room was freed")
		}
		if meter.Dropped.Load() != 0 {
			t.Errorf("block dropped %d", meter.Dropped.Load())
		}
	})
}

func TestSpoolConcurrentPutsAreAllKept(t *testing.T) {
	s, _ := testSpool(t, t.TempDir(), 1<<30, "block")
	defer s.close()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				if err := s.put(fmt.Appendf(nil, "%d-%d", g, i)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, r := range drain(t, s) {
		seen[string(r.data)] = true
	}
	if len(seen) != 1600 {
		t.Fatalf("%d distinct records after 8×200 concurrent puts", len(seen))
	}
	if s.synced.Load() != s.written.Load() {
		t.Errorf("synced %d of %d puts", s.synced.Load(), s.written.Load())
	}
}

// BenchmarkSpoolPut measures a put with fsync every (group commit
// across goroutines) and with a 100ms fsync interval.
func BenchmarkSpoolPut(b *testing.B) {
	rec := []byte(`<134>1 2026-11-21T10:00:00.000Z web-1 myapp 1234 - - {"level":"info","msg":"GET /api/items 200","duration":0.0123}`)
	for _, fsync := range []time.Duration{0, 100 * time.Millisecond} {
		b.Run(fmt.Sprintf("fsync=%v", fsync), func(b *testing.B) {
			s, err := openSpool(b.TempDir(), 1<<40, "block", fsync, status.WriterMeter("tls-bench", b.Name()), zap.NewNop())
			if err != nil {
				b.Fatal(err)
			}
			defer s.close()
			b.SetParallelism(16)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := s.put(rec); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// TestSpoolReopensWithCursorAtSegmentEnd: delivered exactly up to the
// end of a segment, a restart starts at the next one and reports the
// age of its first record.
func TestSpoolReopensWithCursorAtSegmentEnd(t *testing.T) {
	dir := t.TempDir()
	s, _ := testSpool(t, dir, 1<<30, "block")
	s.segSize = 1000
	payload := make([]byte, 84) // 100-byte frames: 10 to a segment
	for range 25 {
		if err := s.put(payload); err != nil {
			t.Fatal(err)
		}
	}
	recs := drain(t, s)
	s.commit(metas(recs[:10]))
	s.close()
	s2, meter := testSpool(t, dir, 1<<30, "block")
	defer s2.close()
	if got := len(drain(t, s2)); got != 15 {
		t.Fatalf("%d records after reopening, want 15", got)
	}
	if meter.SpoolDepth.Load() != 15 || meter.SpoolOldest.Load() == 0 {
		t.Errorf("depth %d, oldest %d: want 15 and the time of record 10", meter.SpoolDepth.Load(), meter.SpoolOldest.Load())
	}
}

// TestSpoolIntervalFsync: with an fsync interval, puts return before
// their fsync and are synced within the interval, also after a reload
// switched the policy from every to an interval.
func TestSpoolIntervalFsync(t *testing.T) {
	s, _ := testSpool(t, t.TempDir(), 1<<30, "block")
	defer s.close()
	s.setPolicy(1<<30, "block", 20*time.Millisecond)
	for i := range 10 {
		if err := s.put(fmt.Appendf(nil, "r%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.synced.Load() < s.written.Load() {
		if time.Now().After(deadline) {
			t.Fatalf("synced %d of %d puts after 5s with a 20ms interval", s.synced.Load(), s.written.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
