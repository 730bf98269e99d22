package rotate

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-applog/caddy-applog/module/status"
)

var errClosed = errors.New("rotate: writer closed")

// sink owns the open files of one path and everything that happens to
// them: writes, rotation, flushing, reopening.
type sink struct {
	path  string
	clock clock
	arch  *archiver
	log   *zap.Logger

	// optsNow mirrors opts for the lock-free part of Write (placing an
	// entry by its fields before taking the lock).
	optsNow atomic.Pointer[options]

	mu        sync.Mutex
	opts      *options
	handles   []*handle           // attached handles, oldest first; the last one's options apply
	main      *logFile            // nil for a template: the fallback file is a routed one
	routed    map[string]*logFile // files placed by a template or per_host, by path (route.go)
	recovered map[string]bool     // routed files whose leftovers were looked for
	useSeq    uint64
	next      time.Time // next scheduled rotation; zero: none
	nextFlush time.Time
	nextCheck time.Time
	down      bool
	pending   []logMsg // to log once the lock is released

	warned atomic.Bool // an entry could not be placed

	shutOnce sync.Once
	shutErr  error

	wake chan struct{}
	stop chan struct{}
	done chan struct{}

	// With `flush batch`, the first entry buffered after a flush kicks
	// the flusher goroutine, which writes whatever has gathered by the
	// time it runs. kicked (guarded by mu) says a kick is on its way, so
	// that the other entries of the batch cost no channel operation.
	kick        chan struct{}
	kicked      bool
	flusherDone chan struct{}

	// writing is set (under mu) while batches taken from the files are
	// written without holding mu (by the flusher, or by the receiver
	// whose entry would overflow a batch), so that entries keep joining
	// the next batches meanwhile. Nothing else touches the files until it is
	// unset: whoever needs to (a rotation, a flush, a new host file)
	// waits on idle first (quiesce). Once a holder of mu has seen it
	// unset, it stays unset until mu is released, since the flusher sets
	// it under mu.
	writing bool
	idle    sync.Cond

	closed chan struct{} // closed once shut down

	// meter feeds the status page and the caddy_applog_writer_* metrics.
	meter *status.Writer
}

type logMsg struct {
	msg string
	err error
}

func newSink(path string, o *options, clk clock) (*sink, error) {
	dir := filepath.Dir(path)
	if o.tmpl != nil && !o.perHost {
		dir = o.tmpl.dir
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating folder for %s: %w", path, err)
	}
	s := &sink{
		path:      path,
		clock:     clk,
		log:       caddy.Log().Named("writers.rotate").With(zap.String("file", path)),
		routed:    map[string]*logFile{},
		recovered: map[string]bool{},
		wake:      make(chan struct{}, 1),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
		kick:      make(chan struct{}, 1),

		flusherDone: make(chan struct{}),
		closed:      make(chan struct{}),
		meter:       status.WriterMeter("rotate", path),
	}
	if o.tmpl == nil || o.perHost {
		base, ext := splitExt(filepath.Base(path))
		s.main = &logFile{set: fileSet{dir: dir, name: base, base: base, ext: ext}, path: path, meter: s.meter}
	}
	s.idle.L = &s.mu
	s.arch = newArchiver(clk, func(msg string, err error) { s.log.Error(msg, zap.Error(err)) })
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apply(o)
	if s.main != nil {
		// Recovery goes first in the archiver's queue, before any backup
		// this sink makes.
		s.arch.add(job{kind: jobRecover, comp: o.comp, set: s.main.set, ret: o.ret, anyHost: o.perHost})
		if err := s.openLive(s.main); err != nil {
			s.arch.close()
			return nil, fmt.Errorf("opening log file: %w", err)
		}
		// A template of another writer that names this file hands its
		// entries here.
		claims.Lock()
		claims.m[path] = s
		claims.Unlock()
	}
	go s.run()
	go s.flusher()
	return s, nil
}

// attach adds h to the sink and applies its options.
func (s *sink) attach(h *handle) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.conflictLocked(h); err != nil {
		return err
	}
	s.handles = append(s.handles, h)
	s.apply(h.opts)
	return nil
}

// conflict refuses h if a config it serves also writes to this file
// with other options. The registry's lock is held (it guards gens).
func (s *sink) conflict(h *handle) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conflictLocked(h)
}

func (s *sink) conflictLocked(h *handle) error {
	for _, x := range s.handles {
		if x.opts.key == h.opts.key {
			continue
		}
		for gen := range h.gens {
			if x.gens[gen] > 0 {
				return fmt.Errorf("%s: two log outputs of one config write to this file with different options; give them the same options, or different files", s.path)
			}
		}
	}
	return nil
}

// apply switches the sink to o. Buffered entries are flushed first, so
// no entry is handled under a mix of old and new options.
func (s *sink) apply(o *options) {
	s.quiesce()
	old := s.opts
	if old != nil && old.key == o.key {
		return
	}
	now := s.clock.Now()
	if old != nil && !s.next.IsZero() && !now.Before(s.next) {
		// A boundary that passed a moment ago, before the timer fired,
		// still counts, under the options it was set with.
		s.rotateAll(s.next, now)
	}
	s.opts = o
	s.optsNow.Store(o)
	for _, lf := range s.files() {
		if err := lf.flush(); err != nil {
			s.logLater("flushing log file", err)
		}
		lf.setBuffer(o)
		if lf.f != nil && lf.id != nil && lf.id.Mode().Perm() != o.comp.mode.Perm() {
			if err := lf.f.Chmod(o.comp.mode); err != nil {
				s.logLater("changing file mode", err)
			}
		}
	}
	if old != nil && (old.tmpl != o.tmpl && (old.tmpl == nil || o.tmpl == nil || old.tmpl.raw != o.tmpl.raw) || old.fallback != o.fallback || old.perHost != o.perHost) {
		// Entries now go to other files: close the old ones.
		for _, lf := range s.routed {
			s.closeRouted(lf)
		}
	}
	s.next = time.Time{}
	if o.sched != nil {
		s.next = o.sched.next(now, o.loc)
	}
	s.nextFlush = now.Add(o.flush)
	s.nextCheck = now.Add(checkInterval)
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// files returns every open live file, main first.
func (s *sink) files() []*logFile {
	out := make([]*logFile, 0, 1+len(s.routed))
	if s.main != nil {
		out = append(out, s.main)
	}
	for _, lf := range s.routed {
		out = append(out, lf)
	}
	return out
}

func (s *sink) write(p []byte) (int, error) {
	o := s.optsNow.Load()
	if o == nil || o.tmpl == nil {
		return s.writeTo(nil, p, direct)
	}
	var buf [256]byte
	return s.writeTo(s.place(o, buf[:0], p), p, direct)
}

// fileFor returns the open file for target (nil: the main file), or nil
// if it is not open.
func (s *sink) fileFor(target []byte) *logFile {
	if target == nil || s.main != nil && string(target) == s.main.path {
		return s.main
	}
	return s.routed[string(target)]
}

// How an entry came to writeTo.
const (
	direct  = iota // from a handle
	handed         // from the sink that owns its file: not to be handed on
	retried        // back from an owner that could not take it
)

// writeTo writes entry p to the file at target (nil: the main file, or
// the fallback file of a template).
func (s *sink) writeTo(target, p []byte, how int) (int, error) {
	if target == nil && s.main == nil {
		target = []byte(s.optsNow.Load().fallback)
	}
	s.mu.Lock()
	for {
		lf := s.fileFor(target)
		if s.writing && !s.joinsBatch(p, lf) {
			s.idle.Wait()
			continue
		}
		if !s.writing && s.batchFull(p, lf) {
			// Write the full batch as the flusher would, without the
			// lock, so that the other receivers go on meanwhile.
			s.writeBatches()
			continue
		}
		break
	}
	if s.down {
		s.mu.Unlock()
		return 0, errClosed
	}
	o := s.opts
	// While the flusher writes (the entry joins a batch, see joinsBatch,
	// which found no rotation due a moment ago), no file may be touched.
	touch := !s.writing
	if touch && !s.next.IsZero() {
		// The timer rotates at the boundary even when nothing is written;
		// this check only makes sure that an entry written just after it,
		// before the timer goroutine ran, lands in the new file.
		if now := s.clock.Now(); !now.Before(s.next) {
			s.rotateAll(s.next, now)
		}
	}
	lf := s.fileFor(target)
	if lf == nil {
		// Not open, so not joining a batch: touch is true.
		var owner *sink
		var err error
		lf, owner, err = s.routedFile(target)
		switch {
		case owner != nil && how == direct:
			s.mu.Unlock()
			n, err := owner.writeTo(target, p, handed)
			switch err {
			case errClosed:
				// The owner is shutting down; its claims go once its
				// files are closed.
				<-owner.closed
				return s.writeTo(target, p, retried)
			case errElsewhere:
				return s.writeTo(nil, p, retried)
			}
			return n, err
		case owner != nil && how == handed:
			s.mu.Unlock()
			return 0, errElsewhere
		case owner != nil:
			err = errElsewhere
		}
		if err != nil {
			s.logLater("opening a file of the template; its entries go to the fallback file", err)
			if fb := s.fallbackFile(); fb != nil && fb.path != string(target) {
				lf = fb
			} else {
				s.meter.Errors.Add(1)
				s.mu.Unlock()
				s.emit()
				return 0, err
			}
		}
	}
	if touch && o.maxSize > 0 && lf.size > 0 && lf.size+int64(len(p)) > o.maxSize {
		if now := s.clock.Now(); !now.Before(lf.retryAt) {
			s.rotate(lf, now)
		}
	}
	n, err := lf.write(p)
	if err != nil && lf.f == nil {
		// The file could not be reopened after a rotation; try again.
		if err = s.openFile(lf); err == nil {
			n, err = lf.write(p)
		}
	}
	if err != nil {
		s.meter.Errors.Add(1)
	} else {
		s.meter.Entries.Add(1)
		s.meter.Bytes.Add(int64(n))
	}
	s.useSeq++
	lf.used = s.useSeq
	kick := o.batch && !s.kicked && lf.pending > 0
	if kick {
		s.kicked = true
	}
	pending := len(s.pending) > 0
	s.mu.Unlock()
	if kick {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
	if pending {
		s.emit()
	}
	return n, err
}

// fallbackFile returns the file for entries that cannot go where they
// should, opening it if needed; nil if it cannot be opened or is
// another writer's. mu is held and no batch is being written.
func (s *sink) fallbackFile() *logFile {
	if s.main != nil {
		return s.main
	}
	lf, _, err := s.routedFile([]byte(s.opts.fallback))
	if err != nil {
		s.logLater("opening the fallback file", err)
	}
	return lf
}

// run is the sink's goroutine: it rotates at scheduled boundaries (even
// when nothing is written), flushes buffers, and checks the files.
func (s *sink) run() {
	defer close(s.done)
	for {
		s.mu.Lock()
		wake := s.tick()
		s.mu.Unlock()
		s.emit()
		t := s.clock.TimerAt(wake)
		select {
		case <-t.C():
		case <-s.wake:
			t.Stop()
		case <-s.stop:
			t.Stop()
			return
		}
	}
}

// tick does what is due and returns when to run again.
func (s *sink) tick() time.Time {
	s.quiesce()
	now := s.clock.Now()
	o := s.opts
	if !s.next.IsZero() && !now.Before(s.next) {
		s.rotateAll(s.next, now)
	}
	if o.flush > 0 && !now.Before(s.nextFlush) {
		if err := s.flushAll(); err != nil {
			s.logLater("flushing log file", err)
		}
		s.nextFlush = now.Add(o.flush)
	}
	if !now.Before(s.nextCheck) {
		s.check()
		s.nextCheck = now.Add(checkInterval)
	}
	wake := s.nextCheck
	if o.flush > 0 && s.nextFlush.Before(wake) {
		wake = s.nextFlush
	}
	if !s.next.IsZero() && s.next.Before(wake) {
		wake = s.next
	}
	return wake
}

// shutdown stops the goroutine, flushes and closes the files, and waits
// for the archiver. Only the first call does it; others wait for it.
func (s *sink) shutdown() error {
	s.shutOnce.Do(func() { s.shutErr = s.doShutdown() })
	return s.shutErr
}

func (s *sink) doShutdown() error {
	close(s.stop)
	<-s.done
	<-s.flusherDone
	s.mu.Lock()
	s.down = true
	err := s.flushAll() // waits for a batch being written first
	for _, lf := range s.files() {
		lf.close()
		unclaim(lf.path, s)
	}
	s.mu.Unlock()
	s.emit()
	s.arch.close()
	close(s.closed)
	return err
}

// logLater queues a message; the lock must be held. Messages are logged
// after it is released, because Caddy's logging may write to this very
// sink.
func (s *sink) logLater(msg string, err error) {
	s.pending = append(s.pending, logMsg{msg, err})
}

func (s *sink) emit() {
	s.mu.Lock()
	msgs := s.pending
	s.pending = nil
	s.mu.Unlock()
	for _, m := range msgs {
		s.log.Error(m.msg, zap.Error(m.err))
	}
}
