package tls

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-applog/caddy-applog/module/status"
)

// How writers share queues
//
// Caddy pools log writers by WriterKey and, in v2.11, never closes
// them: a reload that changes any option opens a second writer and
// leaves the first one open. So the queue and its sender do not belong
// to the writer Caddy holds but to a hub, one per spool folder (or, for
// writers without a spool, one per address), that lives as long as some
// loaded config uses it:
//
//   - Provision leases the hub for the config being loaded and returns
//     the lease when that config's context ends (unloaded, or failed to
//     load).
//   - The newest lease's settings are in force: when they change, the
//     running sender hands over (it stops taking records, waits until
//     those in flight are confirmed, closes its connection) and a new
//     one carries on from the queue's head. Records are sent once and
//     in order across reloads.
//   - When no config uses the hub, its sender drains the queue for a few
//     seconds and stops; a spool's files are closed and its undelivered
//     records wait on disk for the next start.
//   - When Caddy exits, every hub drains for a few seconds the same way.
//
// Every writer Caddy holds writes into its hub's current queue, so
// entries logged by the old config during a reload are not lost either.

var hubs = struct {
	sync.Mutex
	m map[string]*hub
}{m: map[string]*hub{}}

var exitHook sync.Once

// drainTimeout bounds how long a hub that nobody uses any more, or
// Caddy at exit, waits for the aggregator to take what is queued.
const drainTimeout = 5 * time.Second

type hub struct {
	key   string
	name  string // the address, for messages
	meter *status.Writer

	q atomic.Pointer[queueRef]

	mu     sync.Mutex
	leases []*lease
	last   *sender // the newest sender; older ones have been asked to stop
	// retirers counts the goroutines retiring a sender nobody leases,
	// which shutdownAll waits for.
	retirers sync.WaitGroup
}

type queueRef struct{ q queue }

// lease is one loaded config's use of a hub.
type lease struct {
	ctx context.Context
	w   *Writer // provisioned: w.set holds its connection settings
}

func hubFor(key, name string) *hub {
	hubs.Lock()
	defer hubs.Unlock()
	h := hubs.m[key]
	if h == nil {
		h = &hub{key: key, name: name, meter: status.WriterMeter("tls", name)}
		hubs.m[key] = h
	}
	return h
}

// acquire leases h for the config of ctx until ctx ends.
func (h *hub) acquire(ctx context.Context, w *Writer) error {
	exitHook.Do(func() { caddy.OnExit(func(context.Context) { shutdownAll() }) })
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, l := range h.leases {
		if l.ctx == ctx && l.w.set.key != w.set.key {
			return fmt.Errorf("two tls writers in one config share %s but differ in their connection settings (%s vs %s): give each its own spool",
				h.key, l.w.Address, w.Address)
		}
	}
	if _, err := h.openLocked(w); err != nil {
		return err
	}
	l := &lease{ctx: ctx, w: w}
	h.leases = append(h.leases, l)
	h.applyLocked()
	context.AfterFunc(ctx, func() { h.release(l) })
	return nil
}

// openLocked returns the hub's queue, opening it if need be.
func (h *hub) openLocked(w *Writer) (queue, error) {
	if r := h.q.Load(); r != nil {
		return r.q, nil
	}
	var q queue
	if w.Spool != nil {
		sp, err := openSpool(w.Spool.Dir, w.Spool.MaxSize, w.Spool.OnFull, w.Spool.fsyncEvery, h.meter, w.set.log)
		if err != nil {
			return nil, fmt.Errorf("tls writer %s: %w", h.name, err)
		}
		q = sp
	} else {
		q = newMemQueue(h.name, w.Buffer, h.meter)
	}
	h.q.Store(&queueRef{q})
	return q, nil
}

func (h *hub) release(l *lease) {
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

// applyLocked puts the newest lease's settings in force, or retires the
// sender if there is no lease left.
func (h *hub) applyLocked() {
	r := h.q.Load()
	if len(h.leases) == 0 {
		if s := h.last; s != nil && r != nil && !s.retiring {
			s.retiring = true
			h.retirers.Go(func() { h.retire(s, r.q) })
		}
		return
	}
	newest := h.leases[len(h.leases)-1]
	if r == nil {
		return
	}
	switch q := r.q.(type) {
	case *spool:
		q.setPolicy(newest.w.Spool.MaxSize, newest.w.Spool.OnFull, newest.w.Spool.fsyncEvery)
	case *memQueue:
		q.setLimit(newest.w.Buffer)
	}
	if s := h.last; s != nil && s.set.key == newest.w.set.key && s.q == r.q && !s.retiring && !s.stopping() {
		return
	}
	old := h.last
	h.last = newSender(newest.w.set, r.q, h.meter, old)
	if old != nil {
		old.requestStop()
	}
	go h.last.run()
}

// retire lets s drain q for a while, then stops it and, if nothing took
// over meanwhile, closes q.
func (h *hub) retire(s *sender, q queue) {
	deadline := time.NewTimer(drainTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
wait:
	for q.depth() > 0 {
		select {
		case <-deadline.C:
			break wait
		case <-s.stop: // a new config took over
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

// put queues one entry. A hub whose configs were all unloaded has no
// queue; an entry logged to it anyway (by a request the old config was
// still serving) goes into the spool, which is reopened for it, to be
// sent on the next start; without a spool it is dropped and counted.
func (h *hub) put(p []byte, w *Writer) error {
	for range 3 {
		r := h.q.Load()
		if r == nil {
			if w.Spool == nil {
				h.meter.Dropped.Add(1)
				return fmt.Errorf("tls writer %s is not in use by any config; entry dropped", h.name)
			}
			h.mu.Lock()
			q, err := h.openLocked(w)
			h.mu.Unlock()
			if err != nil {
				h.meter.Errors.Add(1)
				return err
			}
			r = &queueRef{q}
		}
		err := r.q.put(p)
		if !errors.Is(err, errClosed) {
			return err
		}
	}
	h.meter.Dropped.Add(1)
	return fmt.Errorf("tls writer %s: queue closed; entry dropped", h.name)
}

// shutdownAll drains every hub for up to drainTimeout, then stops the
// senders and closes the queues: Caddy is exiting.
func shutdownAll() {
	hubs.Lock()
	var all []*hub
	for _, h := range hubs.m {
		all = append(all, h)
	}
	hubs.Unlock()
	var wg sync.WaitGroup
	for _, h := range all {
		h.mu.Lock()
		s, r := h.last, h.q.Load()
		h.leases = nil
		retiring := s != nil && s.retiring
		if s != nil {
			s.retiring = true
		}
		h.mu.Unlock()
		if retiring {
			// Already draining: wait for it to finish, its queue
			// closed.
			h.retirers.Wait()
			continue
		}
		if s == nil || r == nil {
			if r != nil {
				_ = r.q.close()
			}
			continue
		}
		wg.Go(func() { h.retire(s, r.q) })
	}
	wg.Wait()
}
