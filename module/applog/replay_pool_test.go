package applog

import (
	"context"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// TestReplayPoolReleased checks that two configs share one replay cache,
// that the last Cleanup closes its journal and deletes the pool's key,
// and that a Cleanup after a failed Provision releases nothing.
func TestReplayPoolReleased(t *testing.T) {
	if n := replayPool.Len(); n != 0 {
		t.Fatalf("%d replay caches held before the test", n)
	}
	a, b := &App{}, &App{}
	for _, x := range []*App{a, b} {
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		defer cancel()
		if err := x.Provision(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if a.replay != b.replay {
		t.Fatal("two configs got two replay caches")
	}
	if err := a.replay.openNow(); err != nil {
		t.Fatal(err)
	}
	if err := (&App{}).Cleanup(); err != nil {
		t.Fatal(err)
	}
	if err := a.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if replayPool.Len() != 1 || b.replay.journal == nil {
		t.Fatal("the first Cleanup released the cache the other config uses")
	}
	if err := b.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if n := replayPool.Len(); n != 0 {
		t.Fatalf("%d keys left after the last Cleanup", n)
	}
	if b.replay.journal != nil {
		t.Fatal("the last Cleanup left the journal open")
	}
}
