package applog

import (
	"bytes"
	"sync"
	"time"

	"go.uber.org/zap"
)

// writeErrors reports what the writers of emitted entries failed to
// write (a full disk, a closed pipe). zap hands such errors to the
// ErrorOutput of the entry being written, and an entry checked on a core
// directly, as emit does, has none: without this, they would vanish.
// Like a receiver's bad input, they are logged at most once a second,
// with a count of the others.
type writeErrors struct {
	logger     *zap.Logger
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// Write takes the line zap writes, "<time> write error: <errors>\n".
func (w *writeErrors) Write(p []byte) (int, error) {
	w.mu.Lock()
	now := time.Now()
	if now.Sub(w.last) < time.Second {
		w.suppressed++
		w.mu.Unlock()
		return len(p), nil
	}
	suppressed := w.suppressed
	w.last, w.suppressed = now, 0
	w.mu.Unlock()
	reason := bytes.TrimSpace(p)
	if _, after, ok := bytes.Cut(reason, []byte(" write error: ")); ok {
		reason = after
	}
	w.logger.Error("writing a log entry failed", zap.ByteString("error", reason), zap.Int("similar_suppressed", suppressed))
	return len(p), nil
}

func (*writeErrors) Sync() error { return nil }
