package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/caddy-applog/caddy-applog/internal/entrytmpl"
	"github.com/caddy-applog/caddy-applog/internal/forward"
	"github.com/caddy-applog/caddy-applog/internal/ratelog"
	"github.com/caddy-applog/caddy-applog/module/status"
)

// transport produces to a Kafka cluster with franz-go: a session is one
// client (its own producer ID); Send hands records to it without
// blocking and Acked counts the leading records the brokers
// acknowledged. A broken session's client is closed and the next one
// sends again from the first record not acknowledged, so delivery is at
// least once; the idempotent producer keeps a session's retries from
// writing twice.
type transport struct {
	opts        []kgo.Opt // the client's, fixed at provisioning
	pingTimeout time.Duration
	topic       topicRoute
	key         *entrytmpl.Template // nil: records have no key
	meter       *status.Writer
	log         *zap.Logger
	dropLog     *ratelog.Limiter
}

// maxInflight is how many records a session may have sent and not yet
// acknowledged; franz-go's buffer is sized so that Send never blocks.
const maxInflight = 10000

func (t *transport) Connect(ctx context.Context) (forward.Session, error) {
	cl, err := kgo.NewClient(t.opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	// A client connects lazily: ask a broker now, so that an unreachable
	// cluster fails the session (logged, retried with backoff) rather
	// than holding records in a client that cannot send them.
	pctx, cancel := context.WithTimeout(ctx, t.pingTimeout)
	err = cl.Ping(pctx)
	cancel()
	if err != nil {
		cl.Close()
		return nil, fmt.Errorf("no broker answered: %w", err)
	}
	return &session{t: t, cl: cl, broken: make(chan struct{})}, nil
}

// session is one franz-go client. Send is called by the sender; the
// promises by franz-go's promise goroutine, one at a time.
type session struct {
	t  *transport
	cl *kgo.Client

	mu       sync.Mutex
	sent     int64   // records handed to the client
	base     int64   // the index of done[0]
	done     []uint8 // the outcome of records base..sent-1: 0 pending, 1 acknowledged, 2 refused for good
	settled  int64   // leading records with an outcome
	rejected int64   // of which refused
	err      error   // why the session broke
	reported bool    // Acked reported the counts once more after err
	broken   chan struct{}
	closed   atomic.Bool

	topicBuf, keyBuf []byte
}

const (
	pending uint8 = iota
	acked
	refused
)

// refusedForGood reports whether Kafka will never take the record,
// whatever the retry: it is counted as dropped and the session goes on.
// Other errors (brokers down, timeouts, authorization) break the
// session and the record is sent again on the next one.
func refusedForGood(err error, templated bool) bool {
	switch {
	case errors.Is(err, kerr.MessageTooLarge),
		errors.Is(err, kerr.RecordListTooLarge),
		errors.Is(err, kerr.InvalidRecord),
		errors.Is(err, kerr.InvalidTopicException),
		errors.Is(err, kerr.InvalidTimestamp):
		return true
	case errors.Is(err, kerr.UnknownTopicOrPartition), errors.Is(err, kerr.UnknownTopicID):
		// A topic named by an entry's fields that does not exist must
		// not hold up every other topic's records; a fixed topic that
		// does not exist is a setting to fix, so its records wait.
		return templated
	}
	return false
}

func (s *session) Send(recs []forward.Record) error {
	for _, r := range recs {
		rec := &kgo.Record{Value: r.Data, Timestamp: time.Unix(0, r.Time)}
		var unplaced bool
		s.topicBuf, unplaced = s.t.topic.appendTopic(s.topicBuf[:0], r.Data)
		if unplaced {
			s.t.meter.Unplaced.Add(1)
		}
		rec.Topic = string(s.topicBuf)
		if s.t.key != nil {
			var err error
			s.keyBuf, err = s.t.key.Append(s.keyBuf[:0], r.Data, appendKeyValue)
			if err == nil && len(s.keyBuf) > 0 {
				rec.Key = append([]byte(nil), s.keyBuf...)
			}
		}
		s.mu.Lock()
		idx := s.sent
		s.sent++
		s.done = append(s.done, pending)
		s.mu.Unlock()
		// The window (forward.Config.MaxInflight) keeps the client's
		// buffer from filling, so TryProduce does not refuse for that.
		s.cl.TryProduce(context.Background(), rec, func(rec *kgo.Record, err error) { s.settle(idx, rec, err) })
	}
	return nil
}

// settle records the outcome of record idx.
func (s *session) settle(idx int64, rec *kgo.Record, err error) {
	if s.closed.Load() {
		return // the client fails what it held as it closes
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return
	}
	outcome := acked
	if err != nil {
		if !refusedForGood(err, s.t.topic.tmpl != nil) {
			s.err = fmt.Errorf("topic %s: %w", rec.Topic, err)
			close(s.broken)
			return
		}
		outcome = refused
		if n, ok := s.t.dropLog.Allow(dropLogRate, time.Now()); ok {
			s.t.log.Error("Kafka refused a log entry for good; it is dropped",
				zap.String("topic", rec.Topic), zap.Error(err), zap.Int("bytes", len(rec.Value)), zap.Int("also_dropped_since_last", n))
		}
	}
	s.done[idx-s.base] = outcome
	for s.settled < s.sent && s.done[s.settled-s.base] != pending {
		if s.done[s.settled-s.base] == refused {
			s.rejected++
		}
		s.settled++
	}
	// Forget the settled head now and then, not at each record.
	if n := s.settled - s.base; n > 1024 && n > int64(len(s.done))/2 {
		s.done = append(s.done[:0], s.done[n:]...)
		s.base = s.settled
	}
}

var dropLogRate = ratelog.Rate{Burst: 1, Every: 5 * time.Second}

func (s *session) Acked(wait time.Duration) (forward.Ack, error) {
	forward.Pause(wait, s.broken)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		// The records settled before the break count once more, so
		// the sender commits them rather than sending them again.
		if s.reported {
			return forward.Ack{}, s.err
		}
		s.reported = true
	}
	return forward.Ack{Settled: s.settled, Rejected: s.rejected}, nil
}

func (s *session) Broken() <-chan struct{} { return s.broken }

func (s *session) Close(bool) error {
	s.closed.Store(true)
	s.cl.Close()
	return nil
}

// appendKeyValue writes a key's value as it is, bounded; a host name is
// lower-cased, so that one host's records share a key whatever the case
// its clients sent.
func appendKeyValue(dst, v []byte, host bool) []byte {
	if len(v) > maxValueLen {
		v = v[:maxValueLen]
	}
	if !host {
		return append(dst, v...)
	}
	for _, c := range v {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// maxValueLen bounds the bytes one value adds to a topic or key.
const maxValueLen = 100

// zapLogger passes franz-go's warnings and errors to the writer's log.
type zapLogger struct{ log *zap.Logger }

func (l zapLogger) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (l zapLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	fields := make([]zap.Field, 0, len(keyvals)/2)
	for i := 0; i+1 < len(keyvals); i += 2 {
		k, _ := keyvals[i].(string)
		fields = append(fields, zap.Any(k, keyvals[i+1]))
	}
	switch level {
	case kgo.LogLevelError:
		l.log.Error(msg, fields...)
	default:
		l.log.Warn(msg, fields...)
	}
}
