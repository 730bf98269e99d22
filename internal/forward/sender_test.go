package forward

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/caddy-applog/caddy-applog/module/status"
)

// retryTransport refuses its first connection, asking to be tried again
// after a while, and records when each attempt came.
type retryTransport struct {
	after time.Duration
	mu    sync.Mutex
	at    []time.Time
}

func (r *retryTransport) Connect(context.Context) (Session, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.at = append(r.at, time.Now())
	if len(r.at) == 1 {
		return nil, RetryAfter(r.after, errors.New("429 Too Many Requests"))
	}
	return nil, errors.New("refused")
}

func (r *retryTransport) attempts() []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.at...)
}

// TestSenderHonoursRetryAfter: a peer's Retry-After, longer than the
// backoff, is waited out before the next attempt.
func TestSenderHonoursRetryAfter(t *testing.T) {
	tr := &retryTransport{after: 300 * time.Millisecond}
	cfg := &Config{Key: "k", Transport: tr, Name: t.Name(), Buffer: 10,
		BackoffMin: 10 * time.Millisecond, BackoffMax: 20 * time.Millisecond, Log: zaptest.NewLogger(t)}
	meter := status.WriterMeter("forward-test", t.Name())
	s := newSender(cfg, newMemQueue(t.Name(), 10, meter), meter, nil)
	go s.run()
	defer func() { s.requestStop(); <-s.done }()
	deadline := time.Now().Add(5 * time.Second)
	for len(tr.attempts()) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("no second attempt within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	at := tr.attempts()
	if gap := at[1].Sub(at[0]); gap < tr.after {
		t.Errorf("tried again after %v, before the %v the peer asked for", gap, tr.after)
	}
}

// windowTransport takes every record it is sent and settles them only
// when told to, or (settleOnSend) as each batch is sent, as an HTTP
// export does. It records each batch's size and when it came.
type windowTransport struct {
	settleOnSend bool
	mu           sync.Mutex
	sent         int64
	settled      int64
	sizes        []int
	at           []time.Time
	broken       chan struct{}
}

func (w *windowTransport) Connect(context.Context) (Session, error) { return w, nil }
func (w *windowTransport) Send(recs []Record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sent += int64(len(recs))
	w.sizes = append(w.sizes, len(recs))
	w.at = append(w.at, time.Now())
	if w.settleOnSend {
		w.settled = w.sent
	}
	return nil
}
func (w *windowTransport) Acked(wait time.Duration) (Ack, error) {
	Pause(wait, w.broken)
	w.mu.Lock()
	defer w.mu.Unlock()
	return Ack{Settled: w.settled}, nil
}
func (w *windowTransport) Broken() <-chan struct{} { return w.broken }
func (w *windowTransport) Close(bool) error        { return nil }
func (w *windowTransport) counts() (sent, settled int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.sent, w.settled
}
func (w *windowTransport) batches() ([]int, []time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]int(nil), w.sizes...), append([]time.Time(nil), w.at...)
}

// TestSenderWindow: with MaxInflight, the sender sends no more than the
// window (plus the batch that crossed it) until the peer settles some.
func TestSenderWindow(t *testing.T) {
	tr := &windowTransport{broken: make(chan struct{})}
	cfg := &Config{Key: "k", Transport: tr, Name: t.Name(), Buffer: 1000, BatchBytes: 30, MaxInflight: 10,
		BackoffMin: 10 * time.Millisecond, BackoffMax: 20 * time.Millisecond, Log: zaptest.NewLogger(t)}
	meter := status.WriterMeter("forward-test", t.Name())
	q := newMemQueue(t.Name(), 1000, meter)
	s := newSender(cfg, q, meter, nil)
	for range 100 {
		if err := q.put([]byte("0123456789")); err != nil {
			t.Fatal(err)
		}
	}
	go s.run()
	defer func() { s.requestStop(); <-s.done }()
	waitFor := func(what string, cond func(sent, settled int64) bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			sent, settled := tr.counts()
			if cond(sent, settled) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: sent %d, settled %d after 5s", what, sent, settled)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor("a full window", func(sent, _ int64) bool { return sent >= 10 })
	time.Sleep(50 * time.Millisecond) // the sender polls for acks meanwhile
	// A batch is about 30 bytes: three records of 10.
	if sent, _ := tr.counts(); sent > 12 {
		t.Fatalf("sent %d records with none settled, window 10", sent)
	}
	tr.mu.Lock()
	tr.settled = 10
	tr.mu.Unlock()
	waitFor("the next window", func(sent, _ int64) bool { return sent >= 20 })
	if sent, _ := tr.counts(); sent > 22 {
		t.Fatalf("sent %d records with 10 settled, window 10", sent)
	}
	waitFor("all", func(sent, settled int64) bool {
		tr.mu.Lock()
		tr.settled = tr.sent
		tr.mu.Unlock()
		return settled == 100
	})
}

// startBatchSender runs a sender of a memory queue over a
// windowTransport that settles what it is sent, with the given batch
// settings; it is stopped when the test ends.
func startBatchSender(t *testing.T, records, bytes int, linger time.Duration) (*windowTransport, *memQueue, *sender) {
	t.Helper()
	tr := &windowTransport{settleOnSend: true, broken: make(chan struct{})}
	cfg := &Config{Key: "k", Transport: tr, Name: t.Name(), Buffer: 1000, BatchRecords: records, BatchBytes: bytes, Linger: linger,
		BackoffMin: 10 * time.Millisecond, BackoffMax: 20 * time.Millisecond, Log: zaptest.NewLogger(t)}
	meter := status.WriterMeter("forward-test", t.Name())
	q := newMemQueue(t.Name(), 1000, meter)
	s := newSender(cfg, q, meter, nil)
	t.Cleanup(func() { s.requestStop(); <-s.done })
	return tr, q, s
}

func putN(t *testing.T, q queue, n int) {
	t.Helper()
	for range n {
		if err := q.put([]byte("0123456789")); err != nil {
			t.Fatal(err)
		}
	}
}

func waitBatches(t *testing.T, tr *windowTransport, records int, within time.Duration) ([]int, []time.Time) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		sizes, at := tr.batches()
		n := 0
		for _, s := range sizes {
			n += s
		}
		if n >= records {
			return sizes, at
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d records sent after %v, in batches %v", n, records, within, sizes)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestSenderBatchRecords: no batch carries more than BatchRecords or
// (beyond its first record) more than BatchBytes; what is queued goes
// in as few batches as that allows.
func TestSenderBatchRecords(t *testing.T) {
	for _, tc := range []struct {
		records, bytes int
		want           []int
	}{
		{10, 0, []int{10, 10, 5}},
		{0, 40, []int{4, 4, 4, 4, 4, 4, 1}},
		{10, 75, []int{7, 7, 7, 4}},
		{1, 0, slices.Repeat([]int{1}, 25)},
		{8, 5, slices.Repeat([]int{1}, 25)}, // each record alone exceeds the bytes
	} {
		t.Run(fmt.Sprintf("%d records %d bytes", tc.records, tc.bytes), func(t *testing.T) {
			tr, q, s := startBatchSender(t, tc.records, tc.bytes, 0)
			putN(t, q, 25)
			go s.run()
			if got, _ := waitBatches(t, tr, 25, 5*time.Second); !slices.Equal(got, tc.want) {
				t.Errorf("batches %v, want %v", got, tc.want)
			}
		})
	}
}

// TestSenderLinger: a partial batch waits for more up to Linger from
// when its first record was queued, and no longer; a full batch does
// not wait.
func TestSenderLinger(t *testing.T) {
	const linger = 300 * time.Millisecond
	tr, q, s := startBatchSender(t, 10, 0, linger)
	go s.run()
	start := time.Now()
	putN(t, q, 3)
	time.Sleep(100 * time.Millisecond)
	putN(t, q, 2)
	sizes, at := waitBatches(t, tr, 5, 5*time.Second)
	if !slices.Equal(sizes, []int{5}) {
		t.Errorf("batches %v, want the 5 records in one", sizes)
	}
	if waited := at[0].Sub(start); waited < linger-20*time.Millisecond || waited > linger+time.Second {
		t.Errorf("the partial batch went after %v, want about %v", waited, linger)
	}

	// 25 records at once: two full batches at once, the rest lingers.
	start = time.Now()
	putN(t, q, 25)
	sizes, at = waitBatches(t, tr, 30, 5*time.Second)
	if !slices.Equal(sizes, []int{5, 10, 10, 5}) {
		t.Fatalf("batches %v, want 5, then 10, 10, 5", sizes)
	}
	if waited := at[2].Sub(start); waited > linger/2 {
		t.Errorf("the full batches went after %v; a full batch does not linger", waited)
	}
	if waited := at[3].Sub(start); waited < linger-20*time.Millisecond {
		t.Errorf("the partial batch after them went after %v, want about %v", waited, linger)
	}

	// Bytes make a batch full as records do.
	tr2, q2, s2 := startBatchSender(t, 0, 50, 10*time.Second)
	go s2.run()
	start = time.Now()
	putN(t, q2, 5)
	if _, at := waitBatches(t, tr2, 5, 5*time.Second); at[0].Sub(start) > time.Second {
		t.Errorf("a batch full by its bytes went after %v", at[0].Sub(start))
	}
}

// TestSenderLingerCutShort: a sender asked to stop does not wait out a
// linger (it leaves the batch in the queue for the next sender), and
// one that drains sends the partial batch at once.
func TestSenderLingerCutShort(t *testing.T) {
	const linger = time.Minute
	tr, q, s := startBatchSender(t, 10, 0, linger)
	go s.run()
	putN(t, q, 3)
	time.Sleep(50 * time.Millisecond) // the sender has read them and lingers
	start := time.Now()
	s.requestStop()
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the sender did not stop within 5s of being asked")
	}
	t.Logf("stopped after %v", time.Since(start))
	if sizes, _ := tr.batches(); len(sizes) > 0 {
		t.Errorf("a stopping sender sent %v", sizes)
	}
	if d := q.depth(); d != 3 {
		t.Errorf("queue depth %d after the stop, want the 3 records kept", d)
	}

	// The next sender of the queue drains: the records go at once.
	tr2 := &windowTransport{settleOnSend: true, broken: make(chan struct{})}
	cfg := *s.cfg
	cfg.Transport = tr2
	s2 := newSender(&cfg, q, s.meter, s)
	defer func() { s2.requestStop(); <-s2.done }()
	go s2.run()
	time.Sleep(50 * time.Millisecond)
	start = time.Now()
	s2.requestDrain()
	sizes, at := waitBatches(t, tr2, 3, 5*time.Second)
	if !slices.Equal(sizes, []int{3}) || at[0].Sub(start) > time.Second {
		t.Errorf("draining: batches %v after %v, want the 3 at once", sizes, at[0].Sub(start))
	}
}
