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
