package receiver

import (
	"time"

	"go.uber.org/zap"

	"github.com/caddy-applog/caddy-applog/internal/ratelog"
)

// logLimiter keeps a flood of bad input from flooding the log: a burst
// of logBurst lines, then at most one per logInterval, each with the
// count of those left out before it. The zero value is ready to use.
type logLimiter struct{ ratelog.Limiter }

const (
	logBurst    = 5
	logInterval = time.Second
)

var logRate = ratelog.Rate{Burst: logBurst, Every: logInterval}

// recent reports whether the limiter's burst is not whole again: it then
// has state worth keeping.
func (l *logLimiter) recent() bool { return l.Recent(logRate, time.Now()) }

func (l *logLimiter) warn(logger *zap.Logger, msg, source, peer string, err error, fields ...zap.Field) {
	l.warnAt(time.Now(), logger, msg, source, peer, err, fields...)
}

func (l *logLimiter) warnAt(now time.Time, logger *zap.Logger, msg, source, peer string, err error, fields ...zap.Field) {
	suppressed, ok := l.Allow(logRate, now)
	if !ok {
		return
	}
	logger.Warn(msg, append([]zap.Field{zap.String("receiver", source), zap.String("peer", peer), zap.Error(err), ratelog.Suppressed(suppressed)}, fields...)...)
}
