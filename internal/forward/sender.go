package forward

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-applog/caddy-applog/internal/ratelog"
	"github.com/caddy-applog/caddy-applog/module/status"
)

const (
	// defaultBatchBytes is about how much one Send carries.
	defaultBatchBytes = 256 << 10
	// HandoverTimeout bounds how long a sender that is asked to stop
	// waits for its records in flight to be settled.
	HandoverTimeout = 5 * time.Second
	// ackPoll is how often a sender with records in flight asks its
	// session what the peer settled.
	ackPoll = 5 * time.Millisecond
)

// errorLogRate is how often a sender says why it cannot deliver: the
// number of attempts it logs says how many failed in between.
var errorLogRate = ratelog.Rate{Burst: 1, Every: 5 * time.Second}

// A sender moves records from a queue to the peer over one session at
// a time, reconnecting with backoff. Only one sender of a queue runs at
// once: a new one (after a config reload) waits for the previous one to
// hand over.
//
// A record leaves the queue only when the session reports it settled
// (Session.Acked): what a broken session had not settled is read again
// from the queue's head and sent on the next session, so delivery is at
// least once and in order.
//
// Records go in batches of at most Config.BatchRecords, about
// Config.BatchBytes. A full batch is sent at once; a partial one waits
// up to Config.Linger for more, unless the sender drains or stops.
type sender struct {
	cfg   *Config
	q     queue
	meter *status.Writer

	stopOnce  sync.Once
	stop      chan struct{} // closed to ask the sender to hand over
	drainOnce sync.Once
	drain     chan struct{} // closed when the sender drains before it stops: no lingering
	done      chan struct{} // closed when run returns
	after     *sender       // the sender this one takes over from
	retiring  bool          // draining before it stops; guarded by the hub's mu
	lastErr   atomic.Value  // string: why the last session ended
}

func newSender(cfg *Config, q queue, meter *status.Writer, after *sender) *sender {
	return &sender{cfg: cfg, q: q, meter: meter, stop: make(chan struct{}), drain: make(chan struct{}), done: make(chan struct{}), after: after}
}

func (s *sender) requestStop() { s.stopOnce.Do(func() { close(s.stop) }) }

// requestDrain tells the sender it is draining the queue before it
// stops (no config uses its hub, or Caddy is exiting): it sends a
// partial batch at once rather than lingering.
func (s *sender) requestDrain() { s.drainOnce.Do(func() { close(s.drain) }) }

func (s *sender) draining() bool { return isClosed(s.drain) }
func (s *sender) stopping() bool { return isClosed(s.stop) }

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func (s *sender) run() {
	defer close(s.done)
	if s.after != nil {
		<-s.after.done
		s.after = nil // let it be collected
	}
	backoff := s.cfg.BackoffMin
	var logLim ratelog.Limiter
	failures := 0
	for !s.stopping() {
		delivered, err := s.session()
		if err == nil {
			return
		}
		s.meter.Errors.Add(1)
		s.lastErr.Store(err.Error())
		if delivered {
			backoff, failures = s.cfg.BackoffMin, 0
		}
		failures++
		wait := max(backoff, retryAfter(err))
		if _, ok := logLim.Allow(errorLogRate, time.Now()); ok {
			s.cfg.Log.Error("cannot deliver log entries; keeping them and retrying",
				zap.Error(err),
				zap.Int64("held", s.q.depth()),
				zap.Int("attempts", failures),
				zap.Duration("retry_in", wait))
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-s.stop:
			t.Stop()
			return
		}
		backoff = min(backoff*2, s.cfg.BackoffMax)
	}
}

// session runs one session until it breaks (returning why) or the
// sender is asked to stop (returning nil once what it sent is settled,
// or HandoverTimeout passed).
func (s *sender) session() (delivered bool, err error) {
	ctx, cancel := context.WithCancel(context.Background())
	watched := make(chan struct{})
	defer func() { cancel(); <-watched }()
	go func() {
		defer close(watched)
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	sess, err := s.cfg.Transport.Connect(ctx)
	if err != nil {
		if s.stopping() {
			return false, nil
		}
		return false, err
	}
	graceful := false
	defer func() { _ = sess.Close(graceful) }()
	// wake ends a wait for records: the sender is asked to stop or the
	// session broke. cut ends a linger: the same, or the sender drains.
	wake, cut := make(chan struct{}), make(chan struct{})
	sessionDone := make(chan struct{})
	defer func() { close(sessionDone); <-wake }()
	go func() {
		select {
		case <-s.stop:
		case <-sess.Broken():
		case <-sessionDone:
		case <-s.drain:
		}
		close(cut)
		select {
		case <-s.stop:
		case <-sess.Broken():
		case <-sessionDone:
		}
		close(wake)
	}()

	next := s.q.head()
	var (
		inflight []meta // sent, not settled, in order
		settled  int64  // records of this session settled so far
		rejected int64  // of which the peer refused
		out      []Record
		deadline time.Time
		wait     time.Duration

		// What was read and not yet sent: the next batches. A
		// partial batch waits for more until lingerEnd.
		pending      []record
		pendingBytes int
		lingerEnd    time.Time
		// checked: the last read found nothing more, so a partial
		// batch that may not linger goes as it is.
		checked bool
	)
	for {
		ack, err := sess.Acked(wait)
		wait = 0
		if err != nil {
			return delivered, err
		}
		if n := ack.Settled - settled; n > 0 {
			done := inflight[:n:n]
			for i := range min(ack.Rejected-rejected, n) {
				done[i].rejected = true
			}
			inflight = inflight[n:]
			settled, rejected = ack.Settled, ack.Rejected
			s.q.commit(done)
			delivered = true
		}
		if s.stopping() {
			// What is pending stays in the queue for the next sender.
			now := time.Now()
			if deadline.IsZero() {
				deadline = now.Add(HandoverTimeout)
			}
			if len(inflight) == 0 || now.After(deadline) {
				graceful = true
				return delivered, nil
			}
			wait = ackPoll
			continue
		}
		if s.cfg.MaxInflight > 0 && len(inflight) >= s.cfg.MaxInflight {
			wait = ackPoll
			continue
		}
		n, full := s.cfg.batch(pending)
		if !full {
			timeout, until, more := s.fillWait(len(pending), lingerEnd, checked, wake, cut)
			if more {
				if len(inflight) > 0 {
					timeout = min(timeout, ackPoll)
				}
				recs, err := s.q.read(next, max(s.cfg.batchBytes()-pendingBytes, 1), until, timeout)
				if err != nil {
					if errors.Is(err, errClosed) {
						s.requestStop()
						continue
					}
					return delivered, err
				}
				checked = len(recs) == 0
				if len(recs) > 0 {
					if len(pending) == 0 {
						lingerEnd = s.cfg.lingerEnd(recs[0].ts)
					}
					for _, r := range recs {
						pendingBytes += len(r.data)
					}
					pending = append(pending, recs...)
					next = recs[len(recs)-1].end
				}
				continue
			}
		}
		out = out[:0]
		for _, r := range pending[:n] {
			out = append(out, Record{Data: r.data, Time: r.ts})
			inflight = append(inflight, meta{end: r.end, size: r.size, ts: r.ts})
			pendingBytes -= len(r.data)
		}
		pending, checked = pending[n:], false
		if len(pending) > 0 {
			lingerEnd = s.cfg.lingerEnd(pending[0].ts)
		}
		if err := sess.Send(out); err != nil {
			return delivered, err
		}
	}
}

// batch returns how many leading records of pending the next Send
// carries (at most BatchRecords, about BatchBytes), and whether they
// make a full batch, which is sent without waiting for more.
func (c *Config) batch(pending []record) (n int, full bool) {
	limit, size := c.batchBytes(), 0
	for ; n < len(pending); n++ {
		if c.BatchRecords > 0 && n == c.BatchRecords {
			return n, true
		}
		l := len(pending[n].data)
		if n > 0 && size+l > limit {
			return n, true
		}
		size += l
	}
	return n, c.BatchRecords > 0 && n >= c.BatchRecords || size >= limit
}

// lingerEnd is when a partial batch whose first record was queued at
// ts (Unix nanoseconds) is sent without waiting for more: Linger after
// it was queued, so a record that already waited (in the queue while
// an export was in flight, or in a spool across a restart) does not
// wait again; never more than Linger from now, whatever the clock did.
func (c *Config) lingerEnd(ts int64) time.Time {
	end, limit := time.Unix(0, ts).Add(c.Linger), time.Now().Add(c.Linger)
	if end.After(limit) {
		return limit
	}
	return end
}

// fillWait says whether the session reads more before it sends a batch
// that is not full (more), how long the read may wait for records and
// what ends the wait. With nothing pending it waits for records (until
// wake); a partial batch lingers until lingerEnd (until cut, so that a
// stop or drain sends it at once); otherwise the queue is looked at once
// more, without waiting, unless the last read found it empty.
func (s *sender) fillWait(pending int, lingerEnd time.Time, checked bool, wake, cut <-chan struct{}) (timeout time.Duration, until <-chan struct{}, more bool) {
	switch {
	case pending == 0:
		return time.Hour, wake, true
	case s.cfg.Linger > 0 && !s.draining():
		if d := time.Until(lingerEnd); d > 0 {
			return d, cut, true
		}
	}
	if !checked {
		return 0, wake, true
	}
	return 0, nil, false
}
