package rotate

import "time"

// clock is where a writer reads the time and gets its timers: the real
// clock in production, a fake one in tests, so that every schedule can
// be checked without waiting for it.
//
// Timers are set for an instant rather than a duration, so that a timer
// set from a reading that is already stale fires at once instead of late.
type clock interface {
	Now() time.Time
	TimerAt(at time.Time) timer
}

// timer is the part of *time.Timer a writer uses.
type timer interface {
	C() <-chan time.Time
	Stop() bool
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) TimerAt(at time.Time) timer { return realTimer{time.NewTimer(time.Until(at))} }

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time { return t.t.C }
func (t realTimer) Stop() bool          { return t.t.Stop() }
