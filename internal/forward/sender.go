package tls

import (
	"context"
	stdtls "crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-applog/caddy-applog/internal/oneline"
	"github.com/caddy-applog/caddy-applog/internal/ratelog"
	"github.com/caddy-applog/caddy-applog/module/status"
)

// settings are what a sender needs to reach the aggregator. key holds
// all of them: two writers with equal keys can share a connection.
type settings struct {
	key         string
	address     string
	tlsConfig   *stdtls.Config
	lf          bool // newline framing instead of octet counting
	dialTimeout time.Duration
	backoffMin  time.Duration
	backoffMax  time.Duration
	log         *zap.Logger
}

const (
	// confirmAfter is how long the connection must stay up after the
	// peer's TCP acknowledged bytes before the records in them leave the
	// queue. A peer that closes its socket with data still unread makes
	// its kernel answer with a reset, and a TLS 1.3 server that rejects
	// our certificate does so only after our handshake has completed:
	// either way the connection breaks within this time and the records
	// are sent again instead of being lost.
	confirmAfter = time.Second
	// batchBytes is about how much one write to the connection carries.
	batchBytes = 256 << 10
	// handoverTimeout bounds how long a sender that is asked to stop
	// waits for its records in flight to be confirmed.
	handoverTimeout = 5 * time.Second
	writeTimeout    = 30 * time.Second
	ackPoll         = 5 * time.Millisecond
)

// errorLogRate is how often a sender says why it cannot deliver: the
// number of attempts it logs says how many failed in between.
var errorLogRate = ratelog.Rate{Burst: 1, Every: 5 * time.Second}

// A sender moves records from a queue to the aggregator over one TLS
// connection at a time, reconnecting with backoff. Only one sender of a
// queue runs at once: a new one (after a config reload) waits for the
// previous one to hand over.
type sender struct {
	set   *settings
	q     queue
	meter *status.Writer

	stopOnce sync.Once
	stop     chan struct{} // closed to ask the sender to hand over
	done     chan struct{} // closed when run returns
	after    *sender       // the sender this one takes over from
	retiring bool          // draining before it stops; guarded by the hub's mu
	lastErr  atomic.Value  // string: why the last connection ended
}

func newSender(set *settings, q queue, meter *status.Writer, after *sender) *sender {
	return &sender{set: set, q: q, meter: meter, stop: make(chan struct{}), done: make(chan struct{}), after: after}
}

func (s *sender) requestStop() { s.stopOnce.Do(func() { close(s.stop) }) }

func (s *sender) stopping() bool {
	select {
	case <-s.stop:
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
	backoff := s.set.backoffMin
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
			backoff, failures = s.set.backoffMin, 0
		}
		failures++
		if _, ok := logLim.Allow(errorLogRate, time.Now()); ok {
			s.set.log.Error("cannot deliver log entries; keeping them and retrying",
				zap.Error(err),
				zap.Int64("held", s.q.depth()),
				zap.Int("attempts", failures),
				zap.Duration("retry_in", backoff))
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-s.stop:
			t.Stop()
			return
		}
		backoff = min(backoff*2, s.set.backoffMax)
	}
}

// flight is one write to the connection: the records it carried and
// where its last byte is in the connection's byte stream.
type flight struct {
	wireEnd int64
	recs    []meta
}

// ack is how many bytes the peer had acknowledged at a moment.
type ack struct {
	at    time.Time
	acked int64
}

// session runs one connection until it breaks (returning why) or the
// sender is asked to stop (returning nil once what it sent is
// confirmed, or handoverTimeout passed).
func (s *sender) session() (delivered bool, err error) {
	dialer := net.Dialer{Timeout: s.set.dialTimeout}
	ctx, cancel := context.WithTimeout(context.Background(), s.set.dialTimeout)
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
	raw, err := dialer.DialContext(ctx, "tcp", s.set.address)
	if err != nil {
		if s.stopping() {
			return false, nil
		}
		return false, fmt.Errorf("connecting: %w", err)
	}
	tcp := raw.(*net.TCPConn)
	counted := &countingConn{TCPConn: tcp}
	conn := stdtls.Client(counted, s.set.tlsConfig)
	defer conn.Close()
	if err := conn.HandshakeContext(ctx); err != nil {
		if s.stopping() {
			return false, nil
		}
		return false, fmt.Errorf("TLS handshake: %w", err)
	}
	cancel()
	unacked, err := unackedBytes(tcp)
	if err != nil {
		return false, err
	}

	// The aggregator sends nothing, so anything read (end of stream, a
	// reset, an alert) ends the connection. Reading also consumes TLS
	// 1.3 session tickets.
	var brokenErr error
	broken := make(chan struct{})
	go func() {
		buf := make([]byte, 512)
		for {
			if _, err := conn.Read(buf); err != nil {
				brokenErr = err
				close(broken)
				return
			}
		}
	}()
	// Closing the connection ends the reader.
	defer func() { _ = conn.Close(); <-broken }()
	wake := make(chan struct{})
	sessionDone := make(chan struct{})
	defer func() { close(sessionDone); <-wake }()
	go func() {
		select {
		case <-s.stop:
			// Do not let a peer that stopped reading hold up the
			// sender that takes over for a whole writeTimeout.
			_ = conn.SetWriteDeadline(time.Now().Add(handoverTimeout))
		case <-broken:
		case <-sessionDone:
		}
		close(wake)
	}()
	brokenBy := func() error {
		err := brokenErr
		if err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return errors.New("connection closed by the server")
		}
		// crypto/tls reports an alert from the peer as an OpError
		// "remote error" (its alert type is not exported).
		if oe := (*net.OpError)(nil); errors.As(err, &oe) && oe.Op == "remote error" {
			return fmt.Errorf("the server ended the connection: %w (does it accept this client certificate?)", err)
		}
		return fmt.Errorf("connection broken: %w", err)
	}

	start := time.Now()
	next := s.q.head()
	var (
		inflight  []flight
		acks      []ack
		confirmed int64
		buf       []byte
		deadline  time.Time
	)
	for {
		select {
		case <-broken:
			return delivered, brokenBy()
		default:
		}
		now := time.Now()
		if len(inflight) > 0 {
			n, err := unacked()
			if err != nil {
				return delivered, err
			}
			acked := counted.n.Load() - n
			if len(acks) == 0 || acks[len(acks)-1].acked != acked {
				acks = append(acks, ack{now, acked})
			}
			if now.Sub(start) >= confirmAfter {
				for len(acks) > 0 && now.Sub(acks[0].at) >= confirmAfter {
					confirmed = acks[0].acked
					acks = acks[1:]
				}
			}
			var done []meta
			for len(inflight) > 0 && inflight[0].wireEnd <= confirmed {
				done = append(done, inflight[0].recs...)
				inflight = inflight[1:]
			}
			if len(done) > 0 {
				s.q.commit(done)
				delivered = true
			}
		}
		if s.stopping() {
			if deadline.IsZero() {
				deadline = now.Add(handoverTimeout)
			}
			if len(inflight) == 0 || now.After(deadline) {
				_ = conn.CloseWrite()
				return delivered, nil
			}
			select {
			case <-broken:
			case <-time.After(ackPoll):
			}
			continue
		}
		timeout := time.Hour
		if len(inflight) > 0 {
			timeout = ackPoll
		}
		recs, err := s.q.read(next, batchBytes, wake, timeout)
		if err != nil {
			if errors.Is(err, errClosed) {
				s.requestStop()
				continue
			}
			return delivered, err
		}
		if len(recs) == 0 {
			continue
		}
		buf = buf[:0]
		metas := make([]meta, len(recs))
		for i, r := range recs {
			if s.set.lf {
				// A line break left in an entry (the console encoder
				// keeps a message's) would end the frame early and
				// start a message the record chose: escape it, as the
				// syslog writer's lf framing does.
				buf = append(buf, oneline.Escape(r.data)...)
				buf = append(buf, '\n')
			} else {
				buf = strconv.AppendInt(buf, int64(len(r.data)), 10)
				buf = append(buf, ' ')
				buf = append(buf, r.data...)
			}
			metas[i] = meta{end: r.end, size: r.size, ts: r.ts}
		}
		if err := conn.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
			return delivered, err
		}
		if _, err := conn.Write(buf); err != nil {
			select {
			case <-broken:
				return delivered, brokenBy()
			default:
			}
			return delivered, fmt.Errorf("sending: %w", err)
		}
		inflight = append(inflight, flight{wireEnd: counted.n.Load(), recs: metas})
		next = recs[len(recs)-1].end
	}
}

// countingConn counts the bytes written to the socket (TLS records
// included), to match them against what the peer acknowledged.
type countingConn struct {
	*net.TCPConn
	n atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.TCPConn.Write(p)
	c.n.Add(int64(n))
	return n, err
}
