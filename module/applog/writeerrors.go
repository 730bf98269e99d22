package applog

import (
	"bytes"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-applog/caddy-applog/internal/ratelog"
)

// writeErrors reports what the writers of emitted entries failed to
// write (a full disk, a closed pipe). zap hands such errors to the
// ErrorOutput of the entry being written, and an entry checked on a core
// directly, as emit does, has none: without this, they would vanish.
// Like a receiver's bad input, they are logged at most once a second,
// with a count of the others.
type writeErrors struct {
	logger *zap.Logger
	lim    ratelog.Limiter
	now    func() time.Time // time.Now; a test moves it on
}

// Write takes the line zap writes, "<time> write error: <errors>\n".
func (w *writeErrors) Write(p []byte) (int, error) {
	suppressed, ok := w.lim.Allow(ratelog.Rate{Burst: 1, Every: time.Second}, w.now())
	if !ok {
		return len(p), nil
	}
	reason := bytes.TrimSpace(p)
	if _, after, ok := bytes.Cut(reason, []byte(" write error: ")); ok {
		reason = after
	}
	w.logger.Error("writing a log entry failed", zap.ByteString("error", reason), ratelog.Suppressed(suppressed))
	return len(p), nil
}

func (*writeErrors) Sync() error { return nil }
