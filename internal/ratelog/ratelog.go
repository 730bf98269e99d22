// Package ratelog keeps a log line that can repeat fast (bad input from
// a peer, a write that keeps failing, a server that cannot be reached)
// from flooding the log: a Limiter lets a burst of lines through, then
// one per interval, and counts those it holds back so that the next line
// let through can say how many there were.
package ratelog

import (
	"sync"
	"time"

	"go.uber.org/zap"
)

// Rate is how many lines a Limiter lets through: Burst at once, then one
// per Every as the burst comes back.
type Rate struct {
	Burst int
	Every time.Duration
}

// Limiter holds what a Rate has spent. The zero value is ready to use;
// it is safe for concurrent use.
type Limiter struct {
	mu         sync.Mutex
	used       int       // lines of the burst spent, given back one per Every
	since      time.Time // when the last one was given back, or spent from a full burst
	suppressed int
}

// Allow reports whether a line may be logged at now under r and, if so,
// how many lines it held back since the last one it let through.
func (l *Limiter) Allow(r Rate, now time.Time) (suppressed int, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.giveBack(r, now)
	if l.used >= max(r.Burst, 1) {
		l.suppressed++
		return 0, false
	}
	if l.used == 0 {
		l.since = now
	}
	l.used++
	suppressed, l.suppressed = l.suppressed, 0
	return suppressed, true
}

// Recent reports whether the burst is not whole again at now: the
// Limiter then has state worth keeping.
func (l *Limiter) Recent(r Rate, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int(now.Sub(l.since)/r.Every) < l.used
}

// giveBack returns a line of the burst for each Every gone by since the
// last one came back. The caller holds l.mu.
func (l *Limiter) giveBack(r Rate, now time.Time) {
	if back := int(now.Sub(l.since) / r.Every); back > 0 {
		l.used = max(0, l.used-back)
		l.since = l.since.Add(time.Duration(back) * r.Every)
	}
}

// Suppressed is the field that carries, on a line a Limiter let
// through, how many it held back before it.
func Suppressed(n int) zap.Field { return zap.Int("similar_suppressed", n) }
