package forwardtest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-applog/caddy-applog/internal/forward"
)

var fakes atomic.Int64

// Fake is an in-process peer with every capability of the suite: it
// can be down, break a session with records unacknowledged, and refuse
// records for good. Its sessions acknowledge asynchronously, a few
// milliseconds after a batch, as a Kafka producer does.
type Fake struct {
	name string

	mu         sync.Mutex
	got        []string
	down       bool
	breakAfter int
}

// NewFake returns a running fake peer.
func NewFake() *Fake { return &Fake{name: fmt.Sprintf("fake-%d", fakes.Add(1))} }

func (f *Fake) Name() string { return f.name }

func (f *Fake) Received() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.got...)
}

func (f *Fake) SetDown(down bool) {
	f.mu.Lock()
	f.down = down
	f.mu.Unlock()
}

func (f *Fake) BreakAfter(n int) {
	f.mu.Lock()
	f.breakAfter = n
	f.mu.Unlock()
}

func (f *Fake) RejectsMarked() {}

func (f *Fake) Transport(testing.TB) forward.Transport { return fakeTransport{f} }

type fakeTransport struct{ f *Fake }

var errFakeDown = errors.New("fake peer is down")

func (t fakeTransport) Connect(ctx context.Context) (forward.Session, error) {
	f := t.f
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return nil, errFakeDown
	}
	s := &fakeSession{f: f, breakAfter: f.breakAfter, broken: make(chan struct{})}
	f.breakAfter = 0
	return s, nil
}

// fakeSession acknowledges a batch ackDelay after it was sent.
type fakeSession struct {
	f          *Fake
	breakAfter int
	received   int
	broken     chan struct{}
	batches    []fakeBatch
	settled    int64
	rejected   int64
}

type fakeBatch struct {
	at            time.Time
	n, rejections int64
}

const ackDelay = 2 * time.Millisecond

func (s *fakeSession) Broken() <-chan struct{} { return s.broken }

func (s *fakeSession) Send(recs []forward.Record) error {
	select {
	case <-s.broken:
		return errors.New("fake session broken")
	default:
	}
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	if s.f.down {
		close(s.broken)
		return errFakeDown
	}
	var b fakeBatch
	for _, r := range recs {
		if s.breakAfter > 0 && s.received == s.breakAfter {
			close(s.broken) // the rest of the batch is lost on the way
			return nil
		}
		s.received++
		b.n++
		if strings.HasPrefix(string(r.Data), RejectPrefix) {
			b.rejections++
			continue
		}
		s.f.got = append(s.f.got, string(r.Data))
	}
	b.at = time.Now()
	s.batches = append(s.batches, b)
	return nil
}

func (s *fakeSession) Acked(wait time.Duration) (forward.Ack, error) {
	if forward.Pause(wait, s.broken) {
		return forward.Ack{}, errors.New("fake session broken")
	}
	for len(s.batches) > 0 && time.Since(s.batches[0].at) >= ackDelay {
		s.settled += s.batches[0].n
		s.rejected += s.batches[0].rejections
		s.batches = s.batches[1:]
	}
	return forward.Ack{Settled: s.settled, Rejected: s.rejected}, nil
}

func (s *fakeSession) Close(bool) error { return nil }
