package rotate

import (
	"context"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-applog/caddy-applog/internal/lifecycle"
)

// leases count, per WriterKey, the loaded configs that use it (see "How
// writers share files" in handle.go for why Caddy's own pool cannot be
// relied on to close the key's handle): the last one to end deletes the
// key and detaches the handle, as does the exit drain.
var leases = lifecycle.NewPool[*lease]()

// handles holds, per WriterKey, the handle OpenWriter made for it,
// which Caddy's pool keeps and hands to any later config with the same
// key without calling OpenWriter again.
var handles lifecycle.Kept[handle]

// lease is a key's use by the loaded configs.
type lease struct{ key string }

// Destruct detaches the key's handle: no config uses it any more, or
// Caddy is exiting.
func (l *lease) Destruct() error {
	h := handles.Load(l.key)
	if h == nil {
		return nil
	}
	if finish := h.detach(); finish != nil {
		if err := finish(); err != nil {
			caddy.Log().Named("writers.rotate").Error("closing log file", zap.String("file", h.path), zap.Error(err))
		}
	}
	return nil
}

// lease records that the config of ctx uses w's key until ctx is
// cancelled. If the key's handle was detached (its configs were all
// unloaded) and Caddy's pool is about to hand it out again, it is
// attached again.
func (w *RotateWriter) lease(ctx context.Context) error {
	key := w.opts.key
	if _, err := leases.Acquire(key, func() (*lease, error) { return &lease{key: key}, nil }); err != nil {
		return err
	}
	var err error
	if h := handles.Load(key); h != nil {
		registry.Lock()
		h.gens[ctx]++
		registry.Unlock()
		err = h.attach()
	}
	context.AfterFunc(ctx, func() { release(key, ctx) })
	return err
}

// release ends the lease of ctx on key; the last one detaches the key's
// handle.
func release(key string, ctx context.Context) {
	if h := handles.Load(key); h != nil {
		registry.Lock()
		if h.gens[ctx] > 1 {
			h.gens[ctx]--
		} else {
			delete(h.gens, ctx)
		}
		registry.Unlock()
	}
	_ = leases.Release(key)
}

// adopt makes h the handle of its key, if a config uses the key. A
// handle the key had before is closed: h replaces it, with the same
// options (this happens only if Caddy's pool dropped the old one, as a
// Caddy that closes its writers would).
func adopt(key string, h *handle) {
	if _, ok := leases.Load(key); !ok {
		return
	}
	if old := handles.Swap(key, h); old != nil && old != h {
		old.Close()
	}
}
