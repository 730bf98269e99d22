package ratelog

import (
	"testing"
	"time"
)

func TestBurstThenOneAnInterval(t *testing.T) {
	r := Rate{Burst: 5, Every: time.Second}
	var l Limiter
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	let := 0
	for range 100 {
		if _, ok := l.Allow(r, t0); ok {
			let++
		}
	}
	if let != 5 {
		t.Fatalf("100 lines at once: %d let through, want the burst, 5", let)
	}
	if !l.Recent(r, t0) {
		t.Fatal("a limiter that spent its burst is not recent")
	}
	// One line back per interval, with the count of those held back.
	n, ok := l.Allow(r, t0.Add(time.Second))
	if !ok || n != 95 {
		t.Fatalf("after an interval: %d, %v; want 95 held back, let through", n, ok)
	}
	if _, ok := l.Allow(r, t0.Add(time.Second)); ok {
		t.Fatal("a second line in the same interval let through")
	}
	if n, ok := l.Allow(r, t0.Add(2*time.Second)); !ok || n != 1 {
		t.Fatalf("after another interval: %d, %v; want 1 held back, let through", n, ok)
	}
	// The whole burst back after Burst intervals.
	if l.Recent(r, t0.Add(7*time.Second)) {
		t.Fatal("a limiter idle for the whole burst is still recent")
	}
	let = 0
	for range 10 {
		if _, ok := l.Allow(r, t0.Add(7*time.Second)); ok {
			let++
		}
	}
	if let != 5 {
		t.Fatalf("after the burst came back: %d let through, want 5", let)
	}
	var fresh Limiter
	if fresh.Recent(r, t0) {
		t.Fatal("a new limiter is recent")
	}
}

// TestOneAnInterval checks a burst of one: a line, then none until a
// whole interval has gone by since it.
func TestOneAnInterval(t *testing.T) {
	r := Rate{Burst: 1, Every: 5 * time.Second}
	var l Limiter
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, step := range []struct {
		at   time.Duration
		ok   bool
		held int
	}{
		{0, true, 0}, {time.Second, false, 0}, {4999 * time.Millisecond, false, 0},
		{5 * time.Second, true, 2}, {7 * time.Second, false, 0}, {13 * time.Second, true, 1},
		{17 * time.Second, false, 0}, {18 * time.Second, true, 1},
	} {
		held, ok := l.Allow(r, t0.Add(step.at))
		if ok != step.ok || held != step.held {
			t.Errorf("at %v: %d, %v; want %d, %v", step.at, held, ok, step.held, step.ok)
		}
	}
	// A zero Burst is a burst of one.
	var z Limiter
	if _, ok := z.Allow(Rate{Every: time.Second}, t0); !ok {
		t.Fatal("a zero burst let nothing through")
	}
	if _, ok := z.Allow(Rate{Every: time.Second}, t0); ok {
		t.Fatal("a zero burst let two lines through")
	}
}
