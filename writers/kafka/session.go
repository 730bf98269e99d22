package kafka

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
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
	// deliveryTimeout is how long a record sent may wait for the
	// brokers' answer before the session is given up.
	deliveryTimeout time.Duration
	topic           topicRoute
	key             *entrytmpl.Template // nil: records have no key
	meter           *status.Writer
	log             *zap.Logger
	dropLog         *ratelog.Limiter
	// carried holds what a broken session's brokers acknowledged
	// beyond the records it settled (another partition's records, past
	// one that failed), so that the next session, which sends again
	// from the first record not settled, skips those rather than
	// writing them twice.
	carried carry
	// batchMax is the largest batch a new session's client makes:
	// max_message_bytes, halved each time the brokers refuse a batch of
	// records that each fit it (their limit, or the topic's, is lower).
	batchMax atomic.Int32
}

// carry is the records a broken session's brokers acknowledged past
// its settled prefix, known by their queue time and a checksum of their
// bytes: a record the next session sends is skipped only if it is one
// of them, so a queue that changed meanwhile (a record dropped at its
// head) makes no record skipped that was not delivered.
type carry struct {
	mu   sync.Mutex
	ids  map[recordID]int
	left int // how many more records the next session checks
}

type recordID struct {
	time int64
	sum  uint32
	size int
}

func idOf(r forward.Record) recordID {
	return recordID{time: r.Time, sum: crc32.ChecksumIEEE(r.Data), size: len(r.Data)}
}

// keep replaces what is carried with the acknowledged records of a
// session that broke, the window of records that followed its prefix
// being window long.
func (c *carry) keep(ids map[recordID]int, window int) {
	c.mu.Lock()
	c.ids, c.left = ids, window
	c.mu.Unlock()
}

// delivered reports whether r was acknowledged by the session before
// (then forgotten), as long as the records sent since the break are
// within that session's window.
func (c *carry) delivered(r forward.Record) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.left == 0 {
		return false
	}
	if c.left--; c.left == 0 {
		defer func() { c.ids = nil }()
	}
	id := idOf(r)
	if c.ids[id] == 0 {
		return false
	}
	c.ids[id]--
	return true
}

// maxInflight is how many records a session may have sent and not yet
// acknowledged; franz-go's buffer is sized so that Send never blocks.
const maxInflight = 10000

func (t *transport) Connect(ctx context.Context) (forward.Session, error) {
	batchMax := t.batchMax.Load()
	cl, err := kgo.NewClient(append(t.opts[:len(t.opts):len(t.opts)], kgo.ProducerBatchMaxBytes(batchMax))...)
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
	return &session{t: t, cl: cl, batchMax: batchMax, start: time.Now(), broken: make(chan struct{})}, nil
}

// minBatchMax is the smallest batch limit the brokers' refusals shrink
// sessions to.
const minBatchMax = 1 << 10

// shrinkBatches halves the batches of the sessions to come after the
// brokers refused a batch of a session whose limit was from, unless an
// earlier refusal did already. It reports false at minBatchMax.
func (t *transport) shrinkBatches(from int32) bool {
	to := max(from/2, minBatchMax)
	if to >= from {
		return false
	}
	if t.batchMax.CompareAndSwap(from, to) {
		t.log.Warn("the brokers refused a batch as too large: max_message_bytes is above their message.max.bytes or the topic's max.message.bytes; sending smaller batches",
			zap.Int32("batch_bytes", to))
	}
	return true
}

// session is one franz-go client. Send is called by the sender; the
// promises by franz-go's promise goroutine, one at a time.
type session struct {
	t        *transport
	cl       *kgo.Client
	batchMax int32 // the client's ProducerBatchMaxBytes
	start    time.Time

	mu       sync.Mutex
	sent     int64            // records handed to the client
	base     int64            // the index of done[0]
	done     []uint8          // the outcome of records base..sent-1: 0 pending, 1 acknowledged, 2 refused for good
	sentAt   []time.Duration  // when each record of done was sent, since start
	recs     []forward.Record // the records of done, for what a break carries
	settled  int64            // leading records with an outcome
	rejected int64            // of which refused
	err      error            // why the session broke
	reported bool             // Acked reported the counts once more after err
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
		s.sentAt = append(s.sentAt, time.Since(s.start))
		s.recs = append(s.recs, r)
		s.mu.Unlock()
		if s.t.carried.delivered(r) {
			s.settle(idx, rec, nil)
			continue
		}
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
		// A record alone too large for the batch limit is refused by
		// the client, for good. The brokers refusing a batch of records
		// that each fit (all of them fail) says their limit is lower:
		// the next session sends them again in smaller batches.
		if (errors.Is(err, kerr.MessageTooLarge) && !tooLargeAlone(rec, s.batchMax) || errors.Is(err, kerr.RecordListTooLarge)) &&
			s.t.shrinkBatches(s.batchMax) {
			s.err = fmt.Errorf("topic %s: %w", rec.Topic, err)
			close(s.broken)
			return
		}
		if !refusedForGood(err, s.t.topic.tmpl != nil) {
			s.err = fmt.Errorf("topic %s: %w", rec.Topic, err)
			close(s.broken)
			return
		}
		outcome = refused
		if n, ok := s.t.dropLog.Allow(dropLogRate, time.Now()); ok {
			s.t.log.Error("Kafka refused a log entry for good; it is dropped",
				zap.String("record_topic", rec.Topic), zap.Error(err), zap.Int("bytes", len(rec.Value)), zap.Int("also_dropped_since_last", n))
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
		s.sentAt = append(s.sentAt[:0], s.sentAt[n:]...)
		old := len(s.recs)
		s.recs = append(s.recs[:0], s.recs[n:]...)
		clear(s.recs[len(s.recs):old]) // let the settled records' bytes go
		s.base = s.settled
	}
}

// tooLargeAlone reports whether rec cannot fit a batch of limit bytes:
// its key and value and at most batchOverhead bytes of framing.
func tooLargeAlone(rec *kgo.Record, limit int32) bool {
	return int64(len(rec.Key))+int64(len(rec.Value))+batchOverhead > int64(limit)
}

// batchOverhead is the most framing a batch of one record adds: the
// batch header (61 bytes) and the record's varints and attributes.
const batchOverhead = 61 + 36

var dropLogRate = ratelog.Rate{Burst: 1, Every: 5 * time.Second}

func (s *session) Acked(wait time.Duration) (forward.Ack, error) {
	forward.Pause(wait, s.broken)
	s.mu.Lock()
	defer s.mu.Unlock()
	// The session, not the client, times records out: franz-go's
	// delivery timeout counts from a record's timestamp (when it was
	// queued), so a record held through an outage longer than the
	// timeout would time out at once in every session to come.
	if s.err == nil && s.t.deliveryTimeout > 0 && s.settled < s.sent && time.Since(s.start)-s.sentAt[s.settled-s.base] > s.t.deliveryTimeout {
		s.err = fmt.Errorf("the brokers did not acknowledge a record within %v (delivery_timeout)", s.t.deliveryTimeout)
		close(s.broken)
	}
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
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids map[recordID]int
	for i := s.settled; i < s.sent; i++ {
		if s.done[i-s.base] == acked {
			if ids == nil {
				ids = make(map[recordID]int)
			}
			ids[idOf(s.recs[i-s.base])]++
		}
	}
	s.t.carried.keep(ids, int(s.sent-s.settled))
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
