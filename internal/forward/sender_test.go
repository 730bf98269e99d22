package forward

import (
	"context"
	"errors"
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
// when told to.
type windowTransport struct {
	mu      sync.Mutex
	sent    int64
	settled int64
	broken  chan struct{}
}

func (w *windowTransport) Connect(context.Context) (Session, error) { return w, nil }
func (w *windowTransport) Send(recs []Record) error {
	w.mu.Lock()
	w.sent += int64(len(recs))
	w.mu.Unlock()
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
