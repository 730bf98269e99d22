package rotate

import (
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddy-applog/caddy-applog/module/status"
)

// How writers share files
//
// Caddy pools writers by WriterKey and hands the same io.WriteCloser to
// every log, in this config and the next ones, whose writer has that key.
// The key of a rotate writer holds every option, so that a reload which
// changes one gets a new writer rather than silently keeping the old
// behaviour. But Caddy opens the new config's writers before it stops
// the old config, whose loggers keep writing until its servers are done:
// for a while, two writers with different options write to one path.
//
// So the writer Caddy gets is only a handle. Every handle for one path
// (whatever its options) shares one sink from a process-wide registry:
// one set of open files, one mutex through which every write of every
// handle goes, one rotation timer and one archiver. The sink applies the
// options of its most recently attached handle: the new config's as soon
// as it opens its writer, the old config's again if the new config fails
// to load. Since both configs write through the same file handle and
// buffer, in order, no entry is lost or written twice across a reload,
// and the rotation state (size, next boundary) carries over. Detaching a
// handle flushes the buffer; detaching the last one shuts the sink down:
// buffers flushed, files closed, pending compressions finished.
//
// When is a handle detached? Caddy 2.11 never calls Close on its pooled
// writers: the clean-up that should (Logging.openLogs registers it with
// Context.OnCancel) is lost, so every writer ever opened would stay open
// with its options, even those of a config that failed to load. Writers
// therefore track their configs themselves (lease.go, on
// internal/lifecycle): Provision takes a lease on the key for the
// config's context, released when that context is cancelled (the config
// is replaced, fails, or Caddy stops), and a handle stays attached while
// its key has a lease; the last release deletes the key. Close detaches
// too, for a Caddy that calls it, and lifecycle's exit drain detaches
// every handle still leased, since nothing else would flush buffers
// before Caddy exits.
//
// Two log blocks of one config naming the same file with different
// options would make the result depend on which opened last, so a handle
// records the configs it serves and that case is refused.

// registry holds the sink of every path with an attached handle, and the
// sinks being shut down, which a new handle for the same path waits for.
// Its lock is taken before a sink's.
var registry = struct {
	sync.Mutex
	sinks   map[string]*sink
	closing map[string]*sink
}{sinks: map[string]*sink{}, closing: map[string]*sink{}}

// options is the resolved configuration of a RotateWriter.
type options struct {
	key      string // the WriterKey
	sched    *schedule
	loc      *time.Location
	maxSize  int64
	ret      retention
	comp     compression
	perHost  bool
	tmpl     *pathTemplate // the file name's placeholders, or per_host's; nil: one file
	fallback string        // where entries go that tmpl cannot place
	maxOpen  int           // routed files kept open
	flush    time.Duration // 0: every Write goes to the file
	batch    bool          // buffered, written by the flusher goroutine
}

// handle is the io.WriteCloser Caddy gets from OpenWriter.
type handle struct {
	path  string
	opts  *options
	clock clock
	sink  atomic.Pointer[sink] // nil while detached
	gens  map[any]int          // configs using the handle (guarded by registry)
}

func newHandle(path string, o *options, clk clock, gen any) *handle {
	h := &handle{path: path, opts: o, clock: clk, gens: map[any]int{}}
	if gen != nil {
		h.gens[gen]++
	}
	return h
}

// attach connects h to the sink of its path, creating the sink if
// there is none. If h is attached already (a new config uses the same
// options again), it only checks that this config does not also write
// to the file with other options: the configs' log blocks open in any
// order.
func (h *handle) attach() error {
	for {
		registry.Lock()
		if s := h.sink.Load(); s != nil {
			err := s.conflict(h)
			registry.Unlock()
			return err
		}
		if c := registry.closing[h.path]; c != nil {
			registry.Unlock()
			<-c.closed
			continue
		}
		s := registry.sinks[h.path]
		created := false
		if s == nil {
			var err error
			if s, err = newSink(h.path, h.opts, h.clock); err != nil {
				registry.Unlock()
				return err
			}
			registry.sinks[h.path] = s
			created = true
		}
		err := s.attach(h)
		if err != nil && created {
			delete(registry.sinks, h.path)
		}
		if err == nil {
			h.sink.Store(s)
		}
		registry.Unlock()
		if err != nil {
			if created {
				s.shutdown()
			}
			return err
		}
		s.emit()
		return nil
	}
}

// detach disconnects h from its sink, flushing the sink's buffers, and
// returns what is left to do outside any lock: shutting the sink down
// if h was its last handle. It returns nil if h was not attached.
func (h *handle) detach() (finish func() error) {
	registry.Lock()
	s := h.sink.Swap(nil)
	if s == nil {
		registry.Unlock()
		return nil
	}
	s.mu.Lock()
	for i, x := range s.handles {
		if x == h {
			s.handles = append(s.handles[:i], s.handles[i+1:]...)
			break
		}
	}
	last := len(s.handles) == 0
	var err error
	if !last && !s.down {
		err = s.flushAll()
		s.apply(s.handles[len(s.handles)-1].opts)
	}
	s.mu.Unlock()
	if last && registry.sinks[h.path] == s {
		delete(registry.sinks, h.path)
		registry.closing[h.path] = s
	}
	registry.Unlock()
	s.emit()
	if !last {
		return func() error { return err }
	}
	return func() error {
		err := s.shutdown()
		registry.Lock()
		if registry.closing[h.path] == s {
			delete(registry.closing, h.path)
		}
		registry.Unlock()
		return err
	}
}

// Write writes one entry. Entries are never interleaved: every handle of
// a path writes through its sink's mutex.
func (h *handle) Write(p []byte) (int, error) {
	if s := h.sink.Load(); s != nil {
		if n, err := s.write(p); err != errClosed {
			return n, err
		}
	}
	return h.writeDetached(p)
}

// writeDetached serves an entry written through a detached handle (a
// logger of a config being unloaded, whose requests Caddy lets finish
// after the config is stopped, or Caddy's last words after the exit
// hook): it goes to the path's current sink if there is one; if not, to
// the sink that has the entry's file open (a template's file, which a
// new config's template may name too), else it is appended with an
// open-write-close cycle (as timberjack does) rather than dropped. A
// template's entry goes to the file it names, or its fallback file:
// never to the template itself.
func (h *handle) writeDetached(p []byte) (int, error) {
	registry.Lock()
	s := registry.sinks[h.path]
	registry.Unlock()
	if s != nil {
		if n, err := s.write(p); err != errClosed {
			return n, err
		}
	}
	path := h.path
	if o := h.opts; o.tmpl != nil {
		var buf [256]byte
		target, why := o.tmpl.resolve(buf[:0], p)
		if why != "" {
			status.WriterMeter("rotate", h.path).Unplaced.Add(1)
			target = append(target[:0], o.fallback...)
		}
		if n, took, err := writeToOwner(target, p); took {
			return n, err
		}
		path = string(target)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return 0, err
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, h.opts.comp.mode)
	if err != nil {
		return 0, err
	}
	n, err := f.Write(p)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return n, err
}

// writeToOwner hands entry p to the sink that has the file at path
// open, and reports whether one took it. A sink shutting down gives up
// its files once closed: then the next owner, if any, is asked (a few
// times at most).
func writeToOwner(path, p []byte) (n int, took bool, err error) {
	for range 4 {
		claims.Lock()
		owner := claims.m[string(path)]
		claims.Unlock()
		if owner == nil {
			return 0, false, nil
		}
		n, err = owner.writeTo(path, p, handed)
		switch err {
		case errClosed:
			<-owner.closed
			continue
		case errElsewhere:
			return 0, false, nil
		}
		return n, true, err
	}
	return 0, false, nil
}

// Sync flushes buffered entries to the file.
func (h *handle) Sync() error {
	s := h.sink.Load()
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return nil
	}
	return s.flushAll()
}

// Close detaches the handle (see detach). The sink goes on with the
// options of the remaining handles, or shuts down after the last one.
func (h *handle) Close() error {
	if finish := h.detach(); finish != nil {
		return finish()
	}
	return nil
}
