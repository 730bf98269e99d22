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

	// optsNow mirrors opts for the lock-free part of Write (finding the
	// host of an entry before taking the lock).
	optsNow atomic.Pointer[options]

	mu        sync.Mutex
	opts      *options
	handles   []*handle // attached handles, oldest first; the last one's options apply
	main      *logFile
	hosts     map[string]*logFile // per_host files by sanitised host
	byRaw     map[string]*logFile // per_host files by host as written in entries
	useSeq    uint64
	next      time.Time // next scheduled rotation; zero: none
	nextFlush time.Time
	nextCheck time.Time
	down      bool
	pending   []logMsg // to log once the lock is released

	notObject atomic.Int64 // per_host entries that were not JSON objects
	warned    atomic.Bool

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
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating folder for %s: %w", path, err)
	}
	base, ext := splitExt(filepath.Base(path))
	s := &sink{
		path:  path,
		clock: clk,
		log:   caddy.Log().Named("writers.rotate").With(zap.String("file", path)),
		main:  &logFile{set: fileSet{dir: dir, name: base, base: base, ext: ext}, path: path, meter: status.WriterMeter("rotate", path)},
		hosts: map[string]*logFile{},
		byRaw: map[string]*logFile{},
		wake:  make(chan struct{}, 1),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
		kick:  make(chan struct{}, 1),

		flusherDone: make(chan struct{}),
		closed:      make(chan struct{}),
		meter:       status.WriterMeter("rotate", path),
	}
	s.idle.L = &s.mu
	s.arch = newArchiver(clk, func(msg string, err error) { s.log.Error(msg, zap.Error(err)) })
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apply(o)
	// Recovery goes first in the archiver's queue, before any backup
	// this sink makes.
	s.arch.add(job{kind: jobRecover, comp: o.comp, set: s.main.set, ret: o.ret, anyHost: o.perHost})
	if err := s.openLive(s.main); err != nil {
		s.arch.close()
		return nil, fmt.Errorf("opening log file: %w", err)
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
	if !o.perHost {
		for h, lf := range s.hosts {
			lf.close()
			delete(s.hosts, h)
		}
		clear(s.byRaw)
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
	out := make([]*logFile, 0, 1+len(s.hosts))
	out = append(out, s.main)
	for _, lf := range s.hosts {
		out = append(out, lf)
	}
	return out
}

func (s *sink) write(p []byte) (int, error) {
	var host []byte
	if o := s.optsNow.Load(); o != nil && o.perHost {
		var isObject bool
		host, isObject = hostOf(p)
		if !isObject {
			s.notObject.Add(1)
			if s.warned.CompareAndSwap(false, true) {
				s.log.Warn("per_host: an entry is not a JSON object, so it went to the main file; per_host reads the top-level \"host\" field of entries written with `format json`")
			}
		}
	}
	s.mu.Lock()
	for {
		if s.writing && !s.joinsBatch(p, host) {
			s.idle.Wait()
			continue
		}
		if !s.writing && s.batchFull(p, host) {
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
	lf := s.main
	if len(host) > 0 && o.perHost {
		lf = s.hostFile(host)
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
	}
	s.mu.Unlock()
	s.emit()
	s.arch.close()
	if n := s.notObject.Load(); n > 0 {
		s.log.Warn("per_host: entries that were not JSON objects went to the main file", zap.Int64("count", n))
	}
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
