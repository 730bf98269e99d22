package syslog

import (
	"net"
	"sync"
	"sync/atomic"

	"github.com/caddy-applog/caddy-applog/internal/lifecycle"
)

// How senders live and end
//
// Caddy pools log writers by WriterKey and, in v2.11, never closes
// them (see internal/lifecycle): a reload that changes an option would
// leave the old sender, its goroutine and its connection behind
// forever, and on exit whatever was queued would be lost. So the writer
// Caddy holds (a handle) does not own a sender: each loaded config
// acquires its key in senders from Provision until its context ends,
// and the key's sender is closed (sending what is queued, for up to 5
// seconds) when the last config lets go, which deletes the key, or when
// Caddy exits. A handle used after that finds the key's new entry, if a
// later config uses the same options, or sends its entry through a
// sender of its own that ends with it (a request the old config was
// still serving).
var senders = lifecycle.NewPool[*liveEntry]()

// liveEntry is one key's sender, while some config uses the key.
type liveEntry struct {
	mu    sync.Mutex
	s     atomic.Pointer[sender] // nil until started; set under mu
	ended atomic.Bool            // set under mu by Destruct; no sender starts after
}

// start makes a sender for w, on conn if not nil, unless the entry has
// one or has ended. It reports whether it did.
func (e *liveEntry) start(w Writer, conn net.Conn) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ended.Load() || e.s.Load() != nil {
		return false
	}
	e.s.Store(newSender(w, conn))
	return true
}

// Destruct closes the entry's sender: no config uses its key any more,
// or Caddy is exiting.
func (e *liveEntry) Destruct() error {
	e.mu.Lock()
	e.ended.Store(true)
	s := e.s.Swap(nil)
	e.mu.Unlock()
	if s != nil {
		return s.Close()
	}
	return nil
}

// handle is the writer Caddy's loggers hold.
type handle struct {
	w   Writer
	key string
	e   atomic.Pointer[liveEntry] // the key's entry when last looked up
}

// entry returns the key's current entry, or nil if no config uses the
// key.
func (h *handle) entry() *liveEntry {
	if e := h.e.Load(); e != nil && !e.ended.Load() {
		return e
	}
	e, ok := senders.Load(h.key)
	if !ok {
		return nil
	}
	h.e.Store(e)
	return e
}

// Write hands p to the key's sender, without a lock in the common
// case. A sender that closes under it refuses the entry rather than
// lose it in its queue, and the entry goes to the next sender.
func (h *handle) Write(p []byte) (int, error) {
	for {
		var s *sender
		e := h.entry()
		if e != nil {
			if s = e.s.Load(); s == nil && e.start(h.w, nil) {
				s = e.s.Load()
			}
		}
		if s == nil {
			if e != nil && !e.ended.Load() {
				continue // another write started the sender
			}
			// No config uses the key: send this entry on a sender of its
			// own, which ends once it has.
			s = newSender(h.w, nil)
			n, err := s.Write(p)
			lifecycle.Go(func() { _ = s.Close() })
			return n, err
		}
		n, err := s.Write(p)
		if err != errSenderClosed {
			return n, err
		}
	}
}

// Close does nothing: senders end with the configs that use them.
func (h *handle) Close() error { return nil }
