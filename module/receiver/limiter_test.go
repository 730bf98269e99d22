package receiver

import (
	"errors"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestLogLimiter(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	logger := zap.New(core)
	var l logLimiter
	err := errors.New("bad")
	now := time.Now()
	for range 100 {
		l.warnAt(now, logger, "rejected message", "src", "peer", err)
	}
	if n := logs.Len(); n != logBurst {
		t.Fatalf("100 warnings at once: %d lines, want the burst, %d", n, logBurst)
	}
	if !l.recent() {
		t.Fatal("a limiter that spent its burst is not recent")
	}
	// One line back per interval, with the count of those left out.
	now = now.Add(logInterval)
	l.warnAt(now, logger, "rejected message", "src", "peer", err)
	l.warnAt(now, logger, "rejected message", "src", "peer", err)
	all := logs.All()
	if len(all) != logBurst+1 {
		t.Fatalf("after an interval: %d lines, want %d", len(all), logBurst+1)
	}
	if got := all[logBurst].ContextMap()["similar_suppressed"]; got != int64(100-logBurst) {
		t.Fatalf("similar_suppressed = %v, want %d", got, 100-logBurst)
	}
	if c := all[logBurst].ContextMap(); c["receiver"] != "src" || c["peer"] != "peer" || c["error"] != "bad" {
		t.Fatalf("fields %v", c)
	}
	// A limiter given its whole burst back is not recent.
	if l.Recent(logRate, now.Add(logBurst*logInterval)) {
		t.Fatal("a limiter idle for the whole burst is still recent")
	}
	var fresh logLimiter
	if fresh.recent() {
		t.Fatal("a new limiter is recent")
	}
}
