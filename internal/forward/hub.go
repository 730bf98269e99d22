package forward

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddy-applog/caddy-applog/internal/lifecycle"
	"github.com/caddy-applog/caddy-applog/module/status"
)

// How writers share queues
//
// Caddy pools log writers by WriterKey and, in v2.11, never closes
// them (see internal/lifecycle): a reload that changes any option opens
// a second writer and leaves the first one open. So the queue and its
// sender do not belong to the writer Caddy holds but to a hub, one per
// spool folder (or, for writers without a spool, one per peer: the key
// the module names), held in a lifecycle.Pool for as long as some loaded
// config uses it:
//
//   - Provision acquires the hub (Acquire) for the config being loaded and
//     releases it when that config's context ends (unloaded, or failed
//     to load).
//   - The newest config's settings are in force: when they change, the
//     running sender hands over (it stops taking records, waits until
//     those in flight are confirmed, closes its connection) and a new
//     one carries on from the queue's head. Records are sent once and
//     in order across reloads.
//   - When no config uses the hub, its key is deleted and its sender
//     drains the queue for a few seconds and stops; a spool's files are
//     closed and its undelivered records wait on disk for the next
//     start. A config that uses the key again meanwhile waits for that
//     to finish, so a spool is never open twice.
//   - When Caddy exits, every hub drains for a few seconds the same way.
//
// Every writer Caddy holds writes into its key's current hub, so
// entries logged by the old config during a reload are not lost either.

var hubs = lifecycle.NewPool[*Hub]()

// Held reports whether the hub of key is held, for tests that check a
// key was deleted.
func Held(key string) bool {
	_, ok := hubs.Load(key)
	return ok
}

// drainTimeout bounds how long a hub that nobody uses any more, or
// Caddy at exit, waits for the peer to take what is queued.
const drainTimeout = 5 * time.Second

// A Hub is the queue and sender that every writer with one spool folder
// (or one peer) shares, across configs.
type Hub struct {
	key    string
	module string // the writer module's name: tls, otlp, kafka
	name   string // the peer, for messages
	meter  *status.Writer

	q atomic.Pointer[queueRef]

	mu     sync.Mutex
	leases []*lease
	last   *sender // the newest sender; older ones have been asked to stop
	ended  bool    // Destruct has begun: the key has a new hub or none
}

type queueRef struct{ q queue }

// lease is one loaded config's use of a hub.
type lease struct {
	ctx context.Context
	cfg *Config
}

// Acquire leases the hub of key (a spool folder's, or a peer's) for the
// config of ctx, whose writer module is module, until ctx ends. Its
// meter is named module and cfg.Name. The newest lease's cfg is in
// force.
func Acquire(ctx context.Context, module, key string, cfg *Config) (*Hub, error) {
	h := hubFor(module, key, cfg.Name)
	if err := h.acquire(ctx, cfg); err != nil {
		return nil, err
	}
	return h, nil
}

// hubFor returns the hub of key, counting one more use of it, which
// acquire hands to the config it leases the hub for.
func hubFor(module, key, name string) *Hub {
	h, _ := hubs.Acquire(key, func() (*Hub, error) {
		return &Hub{key: key, module: module, name: name, meter: status.WriterMeter(module, name)}, nil
	})
	return h
}

// acquire leases h for the config of ctx until ctx ends, when the use
// hubFor counted is released too.
func (h *Hub) acquire(ctx context.Context, cfg *Config) error {
	if err := h.acquireLocked(ctx, cfg); err != nil {
		_ = hubs.Release(h.key)
		return err
	}
	return nil
}

func (h *Hub) acquireLocked(ctx context.Context, cfg *Config) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, l := range h.leases {
		if l.ctx == ctx && l.cfg.Key != cfg.Key {
			return fmt.Errorf("two %s writers in one config share %s but differ in their connection settings (%s vs %s): give each its own spool",
				h.module, h.key, l.cfg.Name, cfg.Name)
		}
	}
	if _, err := h.openLocked(cfg); err != nil {
		return err
	}
	l := &lease{ctx: ctx, cfg: cfg}
	h.leases = append(h.leases, l)
	h.applyLocked()
	context.AfterFunc(ctx, func() {
		h.release(l)
		_ = hubs.Release(h.key)
	})
	return nil
}

// openLocked returns the hub's queue, opening it if need be.
func (h *Hub) openLocked(cfg *Config) (queue, error) {
	if r := h.q.Load(); r != nil {
		return r.q, nil
	}
	var q queue
	if sc := cfg.Spool; sc != nil {
		sp, err := openSpool(sc.Dir, sc.MaxSize, sc.OnFull, sc.FsyncEvery, h.meter, cfg.Log)
		if err != nil {
			return nil, fmt.Errorf("%s writer %s: %w", h.module, h.name, err)
		}
		q = sp
	} else {
		q = newMemQueue(h.module+" "+h.name, cfg.Buffer, h.meter)
	}
	h.q.Store(&queueRef{q})
	return q, nil
}

func (h *Hub) release(l *lease) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, x := range h.leases {
		if x == l {
			h.leases = append(h.leases[:i], h.leases[i+1:]...)
			break
		}
	}
	h.applyLocked()
}

// applyLocked puts the newest lease's settings in force. Without a
// lease, the sender carries on until Destruct retires it.
func (h *Hub) applyLocked() {
	r := h.q.Load()
	if len(h.leases) == 0 {
		return
	}
	newest := h.leases[len(h.leases)-1]
	if r == nil {
		return
	}
	switch q := r.q.(type) {
	case *spool:
		if sc := newest.cfg.Spool; sc != nil {
			q.setPolicy(sc.MaxSize, sc.OnFull, sc.FsyncEvery)
		}
	case *memQueue:
		q.setLimit(newest.cfg.Buffer)
	}
	if s := h.last; s != nil && s.cfg.Key == newest.cfg.Key && s.q == r.q && !s.retiring && !s.stopping() {
		return
	}
	old := h.last
	h.last = newSender(newest.cfg, r.q, h.meter, old)
	if old != nil {
		old.requestStop()
	}
	go h.last.run()
}

// retire lets s drain q for a while, then stops it and, if nothing took
// over meanwhile, closes q.
func (h *Hub) retire(s *sender, q queue) {
	deadline := time.NewTimer(drainTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
wait:
	for q.depth() > 0 {
		select {
		case <-deadline.C:
			break wait
		case <-s.stop: // asked to stop: no more waiting
			break wait
		case <-tick.C:
		}
	}
	s.requestStop()
	<-s.done
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.leases) == 0 && h.last == s {
		h.last = nil
		if r := h.q.Load(); r != nil && r.q == q {
			h.q.Store(nil)
			_ = q.close()
		}
	}
}

// put queues one entry. An entry logged through a hub that has ended
// (by a request the old config was still serving, or through a writer
// Caddy kept from an earlier config) goes to its key's current hub; if
// no config uses the key, it goes into the spool, which is opened for
// it, to be sent on the next start; without a spool it is dropped and
// counted.
func (h *Hub) put(p []byte, cfg *Config) error {
	for range 3 {
		if r := h.q.Load(); r != nil {
			err := r.q.put(p)
			if !errors.Is(err, errClosed) {
				return err
			}
		}
		h.mu.Lock()
		ended := h.ended
		h.mu.Unlock()
		if !ended {
			continue // the queue is being replaced
		}
		if cur, ok := hubs.Load(h.key); ok && cur != h {
			return cur.put(p, cfg)
		}
		if cfg.Spool == nil {
			break
		}
		return h.putOrphan(p, cfg)
	}
	h.meter.Dropped.Add(1)
	return fmt.Errorf("%s writer %s is not in use by any config; entry dropped", h.module, h.name)
}

// putOrphan spools one entry while no config uses the key: it takes a
// use of the key for as long as it takes to write it.
func (h *Hub) putOrphan(p []byte, cfg *Config) error {
	cur := hubFor(h.module, h.key, h.name)
	defer func() { _ = hubs.Release(h.key) }()
	cur.mu.Lock()
	q, err := cur.openLocked(cfg)
	cur.mu.Unlock()
	if err != nil {
		cur.meter.Errors.Add(1)
		return err
	}
	return q.put(p)
}

// Destruct retires the hub: no config uses its key any more, or Caddy
// is exiting. Its sender drains the queue for up to drainTimeout, then
// stops, and the queue is closed.
func (h *Hub) Destruct() error {
	h.mu.Lock()
	h.ended = true
	s, r := h.last, h.q.Load()
	h.leases = nil
	if s != nil {
		s.retiring = true
		s.requestDrain()
	}
	h.mu.Unlock()
	switch {
	case s != nil && r != nil:
		h.retire(s, r.q)
	case s != nil:
		s.requestStop()
		<-s.done
	case r != nil:
		h.mu.Lock()
		h.q.Store(nil)
		h.mu.Unlock()
		return r.q.close()
	}
	return nil
}

// Writer returns what Caddy's loggers write to for a writer provisioned
// with cfg: one entry per Write, queued in the hub.
func (h *Hub) Writer(cfg *Config) io.WriteCloser { return &entryWriter{hub: h, cfg: cfg} }

// Depth returns how many entries the hub holds.
func (h *Hub) Depth() int64 {
	if r := h.q.Load(); r != nil {
		return r.q.depth()
	}
	return 0
}

// Meter returns the hub's counters.
func (h *Hub) Meter() *status.Writer { return h.meter }

// LastError returns why the newest sender's last session ended, or "".
func (h *Hub) LastError() string {
	h.mu.Lock()
	s := h.last
	h.mu.Unlock()
	if s == nil {
		return ""
	}
	msg, _ := s.lastErr.Load().(string)
	return msg
}

type entryWriter struct {
	hub *Hub
	cfg *Config
}

func (e *entryWriter) Write(p []byte) (int, error) {
	if err := e.hub.put(p, e.cfg); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close does nothing: the queue belongs to the configs that lease it.
func (e *entryWriter) Close() error { return nil }
