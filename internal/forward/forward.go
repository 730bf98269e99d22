// Package forward is what every forwarding log writer (tls, otlp, kafka)
// shares: the queue that holds entries until a peer has them (a disk
// spool or memory), the hub that keeps one queue and its sender across
// config reloads, and the sender that moves records from the queue's
// head to the peer and commits only what the peer acknowledged. A
// writer brings a Transport: how to reach its peer, how to send a batch
// and what counts as acknowledged.
//
// A writer module provisions a Config (with its Transport), leases its
// hub with Acquire for the config being loaded, and gives Caddy the
// hub's Writer. See hub.go for how hubs outlive reloads, spool.go for the
// spool's files, sender.go for the acknowledgement model.
//
// What a peer's acknowledgement is belongs to the transport, which
// reports it through Session.Acked:
//
//   - syslog over TLS (writers/tls): Send writes a batch to the stream
//     and returns; a record is settled once the peer's TCP stack
//     acknowledged its bytes and the connection stayed up a second
//     after that.
//   - OTLP/HTTP: Send posts a batch and waits for the answer. A 2xx
//     settles it; a partial success settles it with its
//     rejected_log_records counted in Ack.Rejected; a 429, 502, 503 or
//     504 is an error wrapped with RetryAfter (its Retry-After header);
//     401, 403, 407 and 404 (the writer's credentials or URL, which a
//     reload fixes) are errors too, so the records wait; another 4xx
//     will never succeed, so the batch is settled as rejected rather
//     than retried forever.
//   - Kafka: Send hands records to the producer and returns; Acked
//     counts the leading records whose produce the brokers
//     acknowledged, and a record they refuse for good as rejected.
//
// forwardtest holds the conformance suite every transport runs:
// forwardtest.Run(t, peer) with a forwardtest.Peer for the transport's
// real peer.
package forward

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// A Transport reaches one peer. It is part of a Config and is not
// shared between configs: Connect may be called many times, one session
// at a time.
type Transport interface {
	// Connect opens a session to the peer. ctx ends when the sender is
	// asked to stop (a handover or Caddy exiting): a dial in progress
	// should give up, and a session should then not let a peer that
	// stopped reading hold up the sender for longer than
	// HandoverTimeout.
	Connect(ctx context.Context) (Session, error)
}

// A Session is one connection (or producer) to the peer. One sender
// goroutine calls its methods, never at once.
type Session interface {
	// Send hands records to the peer, after every record sent before
	// in this session. It may return before the peer has them
	// (pipelining: a TCP stream, a Kafka producer) or once it answered
	// (an HTTP request). An error ends the session: records not yet
	// settled are sent again on the next one, so delivery is at least
	// once. Wrap it with RetryAfter when the peer said when to come
	// back. The slice is reused after Send returns; each record's Data
	// is not, so a pipelining transport may keep it until acknowledged.
	Send(recs []Record) error
	// Acked waits up to wait (returning early if the session breaks),
	// then reports what the peer settled: counts from the session's
	// first record, which only grow. An error says the session broke.
	Acked(wait time.Duration) (Ack, error)
	// Broken is closed when the session can deliver no more (the peer
	// closed it): the sender stops waiting for new records and asks
	// Acked why.
	Broken() <-chan struct{}
	// Close ends the session. graceful is true when the sender ends it
	// by choice (a handover with everything settled, or its time up),
	// false when it broke.
	Close(graceful bool) error
}

// A Record is one log entry as the queue holds it.
type Record struct {
	Data []byte // the entry, without its trailing newline; read only
	Time int64  // Unix nanoseconds when it was queued
}

// Ack is what a session's peer has settled, counted from the session's
// first record, in the order sent.
type Ack struct {
	// Settled is how many leading records the peer acknowledged or
	// rejected for good: they leave the queue.
	Settled int64
	// Rejected is how many of the settled records the peer refused for
	// good (an OTLP partial success, a record Kafka will never take):
	// they are counted as dropped rather than delivered, never retried.
	Rejected int64
}

// RetryAfter wraps an error of a peer that asked to be tried again no
// sooner than after d (an HTTP 429 or 503 with Retry-After): the sender
// waits that long, or its backoff if that is longer.
func RetryAfter(d time.Duration, err error) error { return &retryError{after: d, err: err} }

type retryError struct {
	after time.Duration
	err   error
}

func (e *retryError) Error() string { return fmt.Sprintf("%v (retry after %v)", e.err, e.after) }
func (e *retryError) Unwrap() error { return e.err }

// retryAfter returns the wait a RetryAfter error in err's chain asks for.
func retryAfter(err error) time.Duration {
	var re *retryError
	if errors.As(err, &re) {
		return re.after
	}
	return 0
}

// Config is what a writer module hands its hub: the transport, the
// queue and the sender's retry policy.
type Config struct {
	// Key holds every setting of the transport and the sender: writers
	// of one hub with equal keys share a sender; a new key (a reload
	// with changed settings) hands over to a new sender.
	Key       string
	Transport Transport
	// Name says which peer, in messages: the address or endpoint.
	Name string
	// Spool is nil for a memory queue of Buffer records.
	Spool  *SpoolConfig
	Buffer int
	// BatchBytes is about how much one Send carries. Default: 256KiB.
	BatchBytes int
	// BatchRecords is the most records one Send carries. 0: no bound
	// but BatchBytes.
	BatchRecords int
	// Linger is how long a batch that is not full (fewer records than
	// BatchRecords, fewer bytes than BatchBytes) waits, from when its
	// first record was queued, for more before it is sent: fewer,
	// larger sends at low rates, for up to that much latency. 0: what
	// the queue holds is sent at once. A full batch never waits, nor a
	// sender that drains or stops.
	Linger time.Duration
	// MaxInflight bounds the records sent and not yet settled, for a
	// pipelining transport whose Send must not block (a Kafka
	// producer's buffer): the sender waits for acknowledgements before
	// it reads more. One batch may take it past the bound. 0: no bound
	// (a stream's own flow control holds Send back).
	MaxInflight int
	// The first and the longest wait between attempts to connect.
	BackoffMin, BackoffMax time.Duration
	Log                    *zap.Logger
}

// SpoolConfig is a spool's folder and policies, checked by the module.
type SpoolConfig struct {
	Dir        string
	MaxSize    int64
	OnFull     string        // block, drop_oldest or drop_newest
	FsyncEvery time.Duration // 0: before each write returns
}

func (c *Config) batchBytes() int {
	if c.BatchBytes > 0 {
		return c.BatchBytes
	}
	return defaultBatchBytes
}

// Pause is how a Session's Acked waits: up to d, returning early when
// broken is closed. It reports whether broken is closed.
func Pause(d time.Duration, broken <-chan struct{}) bool {
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-broken:
		case <-t.C:
		}
	}
	select {
	case <-broken:
		return true
	default:
		return false
	}
}
