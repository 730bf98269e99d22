package receiver

import (
	"sync"
	"time"

	"go.uber.org/zap"
)

// logLimiter keeps a flood of bad input from flooding the log: a burst
// of logBurst lines, then at most one per logInterval, each with the
// count of those left out before it. The zero value is ready to use.
type logLimiter struct {
	mu         sync.Mutex
	used       int       // lines of the burst spent, given back one per interval
	since      time.Time // when the last one was given back, or spent from a full burst
	suppressed int
}

const (
	logBurst    = 5
	logInterval = time.Second
)

// take spends a line of the burst if one is left. The caller holds l.mu.
func (l *logLimiter) take(now time.Time) bool {
	if back := int(now.Sub(l.since) / logInterval); back > 0 {
		l.used = max(0, l.used-back)
		l.since = l.since.Add(time.Duration(back) * logInterval)
	}
	if l.used >= logBurst {
		return false
	}
	if l.used == 0 {
		l.since = now
	}
	l.used++
	return true
}

// recent reports whether the limiter's burst is not whole again: it then
// has state worth keeping.
func (l *logLimiter) recent() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if back := int(time.Since(l.since) / logInterval); back >= l.used {
		return false
	}
	return true
}

func (l *logLimiter) warn(logger *zap.Logger, msg, source, peer string, err error, fields ...zap.Field) {
	l.mu.Lock()
	if !l.take(time.Now()) {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	suppressed := l.suppressed
	l.suppressed = 0
	l.mu.Unlock()
	logger.Warn(msg, append([]zap.Field{zap.String("receiver", source), zap.String("peer", peer), zap.Error(err), zap.Int("similar_suppressed", suppressed)}, fields...)...)
}
