package lifecycle

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type value struct {
	name   string
	closed atomic.Int32
	hold   chan struct{} // Destruct waits for it, if set
}

func (v *value) Destruct() error {
	if v.hold != nil {
		<-v.hold
	}
	v.closed.Add(1)
	return nil
}

func TestPoolSharesAndDeletes(t *testing.T) {
	p := NewPool[*value]()
	made := 0
	construct := func() (*value, error) { made++; return &value{name: "a"}, nil }
	a1, err := p.Acquire("a", construct)
	if err != nil {
		t.Fatal(err)
	}
	a2, _ := p.Acquire("a", construct)
	if a1 != a2 || made != 1 {
		t.Fatalf("two acquires of one key made %d values", made)
	}
	if v, ok := p.Load("a"); !ok || v != a1 {
		t.Fatal("Load does not find the key's value")
	}
	if err := p.Release("a"); err != nil || a1.closed.Load() != 0 {
		t.Fatalf("first release destructed the value (err %v)", err)
	}
	if err := p.Release("a"); err != nil || a1.closed.Load() != 1 {
		t.Fatalf("last release: destructed %d times, err %v", a1.closed.Load(), err)
	}
	if n := p.Len(); n != 0 {
		t.Fatalf("%d keys left after the last release", n)
	}
	if _, ok := p.Load("a"); ok {
		t.Fatal("Load finds a released key")
	}
	b, _ := p.Acquire("a", construct)
	if b == a1 || made != 2 {
		t.Fatal("a key acquired again after its last release did not get a new value")
	}
	p.Release("a")
}

func TestPoolConstructError(t *testing.T) {
	p := NewPool[*value]()
	boom := errors.New("boom")
	if _, err := p.Acquire("x", func() (*value, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("got %v", err)
	}
	if n := p.Len(); n != 0 {
		t.Fatalf("a failed construct left %d keys", n)
	}
}

// TestPoolWaitsForEnding checks that a key's new value is made only once
// the old one is destructed: a file must not be open twice.
func TestPoolWaitsForEnding(t *testing.T) {
	p := NewPool[*value]()
	old := &value{hold: make(chan struct{})}
	p.Acquire("k", func() (*value, error) { return old, nil })
	released := make(chan struct{})
	go func() { p.Release("k"); close(released) }()
	for p.Len() != 1 || func() bool { _, ok := p.Load("k"); return ok }() {
		time.Sleep(time.Millisecond)
	}
	got := make(chan *value)
	go func() {
		v, _ := p.Acquire("k", func() (*value, error) {
			if old.closed.Load() == 0 {
				t.Error("constructed while the old value was still being destructed")
			}
			return &value{}, nil
		})
		got <- v
	}()
	select {
	case <-got:
		t.Fatal("Acquire did not wait for the old value")
	case <-time.After(50 * time.Millisecond):
	}
	close(old.hold)
	<-released
	select {
	case v := <-got:
		if v == old {
			t.Fatal("got the old value")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Acquire still waiting")
	}
	p.Release("k")
}

func TestAcquireUntil(t *testing.T) {
	p := NewPool[*value]()
	ctx, cancel := context.WithCancel(context.Background())
	v, _ := p.AcquireUntil(ctx, "c", func() (*value, error) { return &value{}, nil })
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for p.Len() != 0 || v.closed.Load() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the context's end did not release the key")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestDrain checks that the exit drain destructs what is held, once, and
// that a release after it does not destruct again.
func TestDrain(t *testing.T) {
	p := NewPool[*value]()
	var vs []*value
	for _, k := range []string{"a", "b", "c"} {
		v, _ := p.Acquire(k, func() (*value, error) { return &value{name: k}, nil })
		vs = append(vs, v)
	}
	var wg sync.WaitGroup
	wg.Go(p.Drain)
	wg.Go(p.Drain)
	wg.Wait()
	for _, v := range vs {
		if n := v.closed.Load(); n != 1 {
			t.Fatalf("%s destructed %d times by two drains", v.name, n)
		}
	}
	p.Release("a")
	if n := vs[0].closed.Load(); n != 1 {
		t.Fatalf("a release after the drain destructed again (%d)", n)
	}
}
