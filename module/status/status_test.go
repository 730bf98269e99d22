package status

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRate(t *testing.T) {
	var c Counters
	t0 := time.Unix(1000, 0)
	for i := range 120 { // two minutes, 3 records a second
		c.Accept(t0.Add(time.Duration(i)*time.Second), 3)
	}
	now := t0.Add(120 * time.Second)
	if got := c.RatePerSecond(now); got != 3 {
		t.Fatalf("rate %v, want 3", got)
	}
	if got := c.RatePerSecond(now.Add(30 * time.Second)); got != 1.5 {
		t.Fatalf("rate half a minute later %v, want 1.5", got)
	}
	if c.Accepted.Load() != 360 {
		t.Fatalf("accepted %d", c.Accepted.Load())
	}
}

func TestRing(t *testing.T) {
	SetRecentSize(5)
	defer SetRecentSize(0)
	// Sequence numbers go on from any earlier ring of the process.
	base := Head()
	RecordBatch([]Entry{{Message: "0", App: "a"}, {Message: "1", App: "a"}})
	batch := []Entry{}
	for i := 2; i < 8; i++ { // longer than the ring: only the last 5 count
		batch = append(batch, Entry{Message: fmt.Sprint(i), App: "a"})
	}
	RecordBatch(batch)
	got := Recent(0, 0)
	if len(got) != 5 || got[0].Message != "3" || got[4].Message != "7" || got[4].Seq != base+7 {
		t.Fatalf("recent %+v", got)
	}
	if got := Recent(base+5, 0); len(got) != 2 || got[0].Message != "6" {
		t.Fatalf("since 6: %+v", got)
	}
	if got := Recent(base+1000, 0); len(got) != 0 {
		t.Fatalf("after the head: %+v", got)
	}
	if got := Recent(0, 2); len(got) != 2 || got[0].Message != "6" {
		t.Fatalf("max 2: %+v", got)
	}
	// Growing keeps what was there.
	SetRecentSize(10)
	RecordBatch([]Entry{{Message: "8"}})
	if got := Recent(0, 0); len(got) != 6 || got[0].Message != "3" || got[5].Seq != base+8 {
		t.Fatalf("after resize %+v", got)
	}
	// Long messages are cut; kept strings do not share the caller's.
	big := strings.Repeat("x", MaxEntryMessage+10) + "tail"
	RecordBatch([]Entry{{Message: big, Host: "h", Logger: "l", Facility: "f"}, {Message: "m", Host: "h2"}})
	last := Recent(base+8, 0)[0]
	if len(last.Message) != MaxEntryMessage || last.Host != "h" || last.Logger != "l" || last.Facility != "f" {
		t.Fatalf("entry %q %q %q", last.Host, last.Logger, last.Facility)
	}
	if next := Recent(base+9, 0)[0]; next.Message != "m" || next.Host != "h2" || next.Seq != base+10 {
		t.Fatalf("second entry of the batch %+v", next)
	}
}

func TestRingConcurrent(t *testing.T) {
	SetRecentSize(64)
	defer SetRecentSize(0)
	base := Head()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				RecordBatch([]Entry{{Message: fmt.Sprint(w, i)}, {Message: fmt.Sprint(w, i, "b")}})
			}
		}()
	}
	seen := base
	for range 100 {
		for _, e := range Recent(seen, 0) {
			if e.Seq <= seen {
				t.Fatalf("seq %d after %d", e.Seq, seen)
			}
			seen = e.Seq
		}
	}
	wg.Wait()
	if got := Recent(0, 0); len(got) != 64 || got[63].Seq != base+4000 {
		t.Fatalf("%d entries, last %d", len(got), got[len(got)-1].Seq)
	}
}

func TestSnapshot(t *testing.T) {
	now := time.Now()
	Facility("snap:a").Accept(now, 2)
	Facility("snap:a").Filtered.Add(1)
	Source("snap-door").Rejected.Add(3)
	w := WriterMeter("rotate", "/tmp/x.log")
	w.Bytes.Add(100)
	w.SpoolOldest.Store(now.Add(-2 * time.Second).UnixNano())
	s := Take(now)
	var found bool
	for _, f := range s.Facilities {
		if f.Name == "snap:a" && f.Accepted == 2 && f.Filtered == 1 {
			found = true
		}
	}
	if !found || s.Totals.Rejected < 3 || len(s.Writers) == 0 || s.Writers[0].Bytes != 100 || s.Writers[0].SpoolOldestAgeSeconds < 1.9 {
		t.Fatalf("snapshot %+v", s)
	}
}

// BenchmarkRecordBatch measures what the ring adds per record: filling an
// entry and RecordBatch's copy, for 100-record batches.
func BenchmarkRecordBatch(b *testing.B) {
	SetRecentSize(DefaultRecent)
	defer SetRecentSize(0)
	msg := strings.Repeat("request served ", 4)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		batch := make([]Entry, 0, 100)
		for range 100 {
			batch = append(batch, Entry{Time: now, Level: "info", LevelNo: 20, LevelName: "INFO", App: "bench",
				Facility: "web.requests", Host: "127.0.0.1", Logger: "web.requests", Message: msg, Source: "log_ingest"})
		}
		RecordBatch(batch)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*100), "ns/record")
}

// TestFollow: a follower keeps the ring on when the config asks for none,
// until a config load finds no follower; sequence numbers go on rising
// through a disable and an enable.
func TestFollow(t *testing.T) {
	SetFollowSize(8)
	defer SetFollowSize(0)
	SetRecentSize(0)
	RecordBatch([]Entry{{Message: "unseen"}})
	if RecentSize() != 0 {
		t.Fatalf("ring on without a page or a follower: %d", RecentSize())
	}
	start := Head()
	release := Follow()
	if RecentSize() != 8 {
		t.Fatalf("follower's ring %d, want 8", RecentSize())
	}
	RecordBatch([]Entry{{Message: "a"}})
	SetRecentSize(0) // a reload while the follower is there
	RecordBatch([]Entry{{Message: "b"}})
	release()
	release() // twice is once
	RecordBatch([]Entry{{Message: "c"}})
	got := Recent(start, 0)
	if len(got) != 3 || got[0].Message != "a" || got[2].Message != "c" || got[0].Seq != start+1 {
		t.Fatalf("followed %+v", got)
	}
	SetRecentSize(0) // the next load without a follower lets go
	if RecentSize() != 0 {
		t.Fatalf("ring still on: %d", RecentSize())
	}
	head := Head()
	if head != start+3 {
		t.Fatalf("head %d, want %d", head, start+3)
	}
	release = Follow()
	defer release()
	RecordBatch([]Entry{{Message: "d"}})
	if got := Recent(head, 0); len(got) != 1 || got[0].Seq != head+1 {
		t.Fatalf("after re-enabling %+v, want seq %d", got, head+1)
	}
}
