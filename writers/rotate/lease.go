package rotate

import (
	"context"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

// leases count, per WriterKey, the loaded configs that use it, and hold
// the handle OpenWriter made for it (see "How writers share files" in
// sink.go for why Caddy's own pool cannot be relied on to close it).
// Its lock is taken before the registry's.
var leases = struct {
	sync.Mutex
	m map[string]*lease
}{m: map[string]*lease{}}

type lease struct {
	n int     // configs using the key
	h *handle // the key's handle, once OpenWriter made it
}

var exitHook sync.Once

// lease records that the config of ctx uses w's key until ctx is
// cancelled. If the key's handle was detached (its configs were all
// unloaded) and Caddy's pool is about to hand it out again, it is
// attached again.
func (w *RotateWriter) lease(ctx context.Context) error {
	exitHook.Do(func() {
		// Caddy stops its apps and exits without closing writers:
		// flush and close every file before it does.
		caddy.OnExit(func(context.Context) { shutdownAll() })
	})
	key := w.opts.key
	leases.Lock()
	l := leases.m[key]
	if l == nil {
		l = &lease{}
		leases.m[key] = l
	}
	l.n++
	var err error
	if h := l.h; h != nil {
		registry.Lock()
		h.gens[ctx]++
		registry.Unlock()
		err = h.attach()
	}
	leases.Unlock()
	context.AfterFunc(ctx, func() { release(key, ctx) })
	return err
}

// release ends the lease of ctx on key, detaching the key's handle if
// no config uses it any more.
func release(key string, ctx context.Context) {
	leases.Lock()
	l := leases.m[key]
	l.n--
	var finish func() error
	var path string
	if h := l.h; h != nil {
		path = h.path
		registry.Lock()
		if h.gens[ctx] > 1 {
			h.gens[ctx]--
		} else {
			delete(h.gens, ctx)
		}
		registry.Unlock()
		if l.n == 0 {
			finish = h.detach()
		}
	}
	leases.Unlock()
	if finish != nil {
		if err := finish(); err != nil {
			caddy.Log().Named("writers.rotate").Error("closing log file", zap.String("file", path), zap.Error(err))
		}
	}
}

// adopt makes h the handle of its key. A handle the key had before is
// closed: h replaces it, with the same options (this happens only if
// Caddy's pool dropped the old one, as a Caddy that closes its writers
// would).
func adopt(key string, h *handle) {
	leases.Lock()
	l := leases.m[key]
	if l == nil {
		leases.Unlock()
		return
	}
	old := l.h
	l.h = h
	leases.Unlock()
	if old != nil && old != h {
		old.Close()
	}
}
