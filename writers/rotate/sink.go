package rotate

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

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

// checkInterval is how often open files are compared with what is at
// their path, to notice a file moved or deleted by another program
// (logrotate, an operator) and reopen it.
const checkInterval = time.Second

// bufferSize is the buffer of each file with `flush <interval>`.
const bufferSize = 64 << 10

// batchSize bounds a file's batch with `flush batch`: the writer that
// would make it larger writes the batch out itself (after the one the
// flusher may be writing), which holds receivers back when the disk
// cannot keep up.
const batchSize = 256 << 10

// maxOpenHosts bounds the per_host files kept open; the least recently
// written one is closed (and reopened when needed) beyond it.
const maxOpenHosts = 64

var errClosed = errors.New("rotate: writer closed")

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
	key     string // the WriterKey
	sched   *schedule
	loc     *time.Location
	maxSize int64
	ret     retention
	comp    compression
	perHost bool
	flush   time.Duration // 0: every Write goes to the file
	batch   bool          // buffered, written by the flusher goroutine
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
// logger of a config being unloaded, or Caddy's last words after the
// exit hook): it goes to the path's current sink if there is one; if
// not, it is appended with an open-write-close cycle (as timberjack
// does) rather than dropped.
func (h *handle) writeDetached(p []byte) (int, error) {
	registry.Lock()
	s := registry.sinks[h.path]
	registry.Unlock()
	if s != nil {
		if n, err := s.write(p); err != errClosed {
			return n, err
		}
	}
	f, err := os.OpenFile(h.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, h.opts.comp.mode)
	if err != nil {
		return 0, err
	}
	n, err := f.Write(p)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return n, err
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

// logFile is one live file: the main one or a host's.
type logFile struct {
	set  fileSet
	path string
	f    *os.File
	id   os.FileInfo // what f was when opened, to notice a replaced path
	// With flush <interval> or flush batch, entries gather in batch (up
	// to limit bytes) until a tick, the flusher or an overflow writes
	// them, and spare is the buffer the last write gave back; limit is 0
	// when every entry goes straight to the file.
	limit        int
	batch, spare []byte
	size         int64  // bytes in the file, buffered ones included
	used         uint64 // useSeq of the last write, for closing idle host files

	// whole is how many bytes of the file are known to end with a whole
	// entry: a write that fails partway (a full disk) is cut back to it,
	// so the next entry starts a line of its own rather than completing
	// a torn one. pending counts the entries in the buffer.
	whole   int64
	pending int64
	meter   *status.Writer

	// retryAt holds size rotations back for a while after one failed
	// (a folder that became read-only), rather than failing and logging
	// at every write.
	retryAt time.Time
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

// hostFile returns the live file for entries of host, opening it if
// needed; the main file if the host sanitises to nothing or its file
// cannot be opened (better there than lost).
func (s *sink) hostFile(raw []byte) *logFile {
	if lf := s.byRaw[string(raw)]; lf != nil {
		return lf
	}
	h := sanitizeHost(raw)
	if h == "" {
		return s.main
	}
	lf := s.hosts[h]
	if lf == nil {
		if len(s.hosts) >= maxOpenHosts {
			s.closeIdlestHost()
		}
		m := s.main.set
		set := fileSet{dir: m.dir, name: h + "-" + m.base, base: m.base, host: h, ext: m.ext}
		lf = &logFile{set: set, path: filepath.Join(m.dir, set.liveName()), meter: s.meter}
		if err := s.openLive(lf); err != nil {
			s.logLater("opening per_host file; its entries go to the main file", err)
			return s.main
		}
		s.hosts[h] = lf
	}
	if len(s.byRaw) >= 4*maxOpenHosts {
		clear(s.byRaw)
	}
	s.byRaw[string(raw)] = lf
	return lf
}

func (s *sink) closeIdlestHost() {
	var idlest *logFile
	for _, lf := range s.hosts {
		if idlest == nil || lf.used < idlest.used {
			idlest = lf
		}
	}
	if idlest == nil {
		return
	}
	if err := idlest.flush(); err != nil {
		s.logLater("flushing log file", err)
	}
	idlest.close()
	delete(s.hosts, idlest.set.host)
	clear(s.byRaw)
}

// openLive opens lf and, if it holds entries from before the last
// scheduled boundary (Caddy was stopped across it, or a host was quiet),
// rotates it right away under the name it would have had then.
func (s *sink) openLive(lf *logFile) error {
	if err := s.openFile(lf); err != nil {
		return err
	}
	o := s.opts
	if o.sched != nil && lf.size > 0 {
		if at := o.sched.next(lf.id.ModTime(), o.loc); !at.IsZero() && !at.After(s.clock.Now()) {
			s.rotate(lf, at)
		}
	}
	return nil
}

// openFile opens (or creates) lf's path for appending.
func (s *sink) openFile(lf *logFile) error {
	mode := s.opts.comp.mode
	f, err := os.OpenFile(lf.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, mode)
	if os.IsNotExist(err) {
		// Someone removed the folder: make it again.
		if err = os.MkdirAll(filepath.Dir(lf.path), 0o700); err == nil {
			f, err = os.OpenFile(lf.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, mode)
		}
	}
	if err != nil {
		return err
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	// OpenFile's mode is filtered by the umask and ignored for an
	// existing file: set it, so the mode option means what it says.
	if info.Mode().Perm() != mode.Perm() {
		if err := f.Chmod(mode); err != nil {
			f.Close()
			return err
		}
	}
	lf.f, lf.id, lf.size, lf.whole = f, info, info.Size(), info.Size()
	lf.setBuffer(s.opts)
	return nil
}

// rotateAll rotates every live file at a scheduled boundary and sets the
// next one.
func (s *sink) rotateAll(at, now time.Time) {
	for _, lf := range s.files() {
		s.rotate(lf, at)
	}
	o := s.opts
	s.next = o.sched.next(now, o.loc)
}

// rotate moves lf's file aside as a backup named after at, opens a new
// one, and queues the backup for compression and pruning. An empty file
// is left alone, so quiet periods leave no empty backups.
func (s *sink) rotate(lf *logFile, at time.Time) {
	if err := lf.flush(); err != nil {
		s.logLater("flushing log file", err)
	}
	if lf.size == 0 || lf.f == nil {
		return
	}
	o := s.opts
	dst, err := o.ret.format.freeBackupPath(lf.set, at.In(o.loc))
	if err != nil {
		s.logLater("rotating", err)
		lf.retryAt = s.clock.Now().Add(time.Minute)
		return
	}
	lf.close()
	renameErr := os.Rename(lf.path, dst)
	if renameErr != nil && !os.IsNotExist(renameErr) {
		// Keep appending to the same file rather than lose entries.
		s.meter.Errors.Add(1)
		s.logLater("rotating", renameErr)
		lf.retryAt = s.clock.Now().Add(time.Minute)
	}
	if err := s.openFile(lf); err != nil {
		s.logLater("reopening log file after rotation", err)
	}
	if renameErr == nil {
		s.meter.Rotations.Add(1)
		s.arch.add(job{kind: jobCompress, plain: dst, comp: o.comp, set: lf.set, ret: o.ret})
	}
}

// check reopens files that were moved or deleted by someone else, and
// corrects the sizes of files that were truncated or appended to.
func (s *sink) check() {
	for _, lf := range s.files() {
		info, err := os.Stat(lf.path)
		if lf.f != nil && err == nil && os.SameFile(info, lf.id) {
			lf.size, lf.whole = info.Size(), info.Size()
			lf.size += int64(len(lf.batch))
			continue
		}
		// Entries written before now went to the moved file, where
		// whoever moved it expects them: flush the buffer there too.
		if err := lf.flush(); err != nil {
			s.logLater("flushing log file", err)
		}
		lf.close()
		if err := s.openFile(lf); err != nil {
			s.logLater("reopening moved or deleted log file", err)
		}
	}
}

func (s *sink) flushAll() error {
	s.quiesce()
	var first error
	for _, lf := range s.files() {
		if err := lf.flush(); err != nil && first == nil {
			first = err
		}
	}
	return first
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

// flusher writes out the batches of `flush batch`. Kicked by the first
// entry of a batch, it lets the goroutines that are ready to run go
// first (the receivers of a busy server, each with more entries to
// write), then writes everything buffered in one write per file.
func (s *sink) flusher() {
	defer close(s.flusherDone)
	for {
		select {
		case <-s.kick:
		case <-s.stop:
			return
		}
		runtime.Gosched()
		s.mu.Lock()
		s.kicked = false
		s.quiesce() // a receiver may be writing a full batch
		if !s.down {
			s.writeBatches()
		}
		pending := len(s.pending) > 0
		s.mu.Unlock()
		if pending {
			s.emit()
		}
	}
}

// writeBatches takes every file's batch and writes it with the lock
// released (writing set), so that entries keep joining new batches;
// mu is held, and writing unset, on entry and on return.
func (s *sink) writeBatches() {
	var taken []takenBatch
	for _, lf := range s.files() {
		if s.opts.batch && len(lf.batch) > 0 && lf.f != nil {
			taken = append(taken, lf.take())
		}
	}
	if len(taken) == 0 {
		return
	}
	s.writing = true
	s.mu.Unlock()
	// No lock: nothing else touches the files while writing is set.
	for i := range taken {
		_, taken[i].err = taken[i].lf.f.Write(taken[i].data)
	}
	s.mu.Lock()
	for _, t := range taken {
		t.lf.batchWritten(t)
		if t.err != nil {
			s.logLater("flushing log file", t.err)
		}
	}
	s.writing = false
	s.idle.Broadcast()
}

// batchFull reports whether p would overflow its file's batch.
func (s *sink) batchFull(p, host []byte) bool {
	lf := s.batchFile(host)
	return lf != nil && len(lf.batch) > 0 && len(lf.batch)+len(p) > lf.limit
}

// batchFile is the batching file an entry from host goes to, if it is
// open and known without opening anything; nil if not.
func (s *sink) batchFile(host []byte) *logFile {
	if !s.opts.batch || s.down {
		return nil
	}
	lf := s.main
	if len(host) > 0 && s.opts.perHost {
		lf = s.byRaw[string(host)]
	}
	if lf == nil || lf.f == nil {
		return nil
	}
	return lf
}

// takenBatch is a batch written out of a file's buffer.
type takenBatch struct {
	lf   *logFile
	data []byte
	n    int64 // entries
	err  error
}

// joinsBatch reports whether p can join its file's batch while the
// flusher writes, with no file to touch: no rotation due, the file open,
// room in the batch.
func (s *sink) joinsBatch(p, host []byte) bool {
	if s.down {
		return true // refused without touching anything
	}
	lf := s.batchFile(host)
	switch {
	case lf == nil, len(lf.batch)+len(p) > lf.limit:
		return false
	case !s.next.IsZero() && !s.clock.Now().Before(s.next):
		return false // a scheduled rotation is due
	case s.opts.maxSize > 0 && lf.size > 0 && lf.size+int64(len(p)) > s.opts.maxSize:
		return false // a rotation by size is due
	}
	return true
}

// quiesce waits until no batch is being written (by the flusher or a
// receiver, see writeBatches); mu is held.
func (s *sink) quiesce() {
	for s.writing {
		s.idle.Wait()
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

func (lf *logFile) write(p []byte) (int, error) {
	if lf.f == nil {
		return 0, fmt.Errorf("%s is not open", lf.path)
	}
	if lf.limit > 0 {
		// Write the batch out before p would overflow it, so that a
		// failure is known to be at an entry's boundary.
		if len(lf.batch) > 0 && len(lf.batch)+len(p) > lf.limit {
			if err := lf.flush(); err != nil {
				return 0, err
			}
		}
		lf.batch = append(lf.batch, p...)
		lf.size += int64(len(p))
		lf.pending++
		return len(p), nil
	}
	n, err := lf.f.Write(p)
	if err != nil {
		lf.cutBack()
		return 0, err
	}
	lf.size += int64(n)
	lf.whole = lf.size
	return n, nil
}

// flush writes the batch out. If that fails, its entries are lost and
// counted as errors, and the file is cut back to its last whole entry,
// so that the next batch starts a line of its own once the disk has
// room again.
func (lf *logFile) flush() error {
	if len(lf.batch) == 0 {
		return nil
	}
	t := lf.take()
	_, t.err = lf.f.Write(t.data)
	lf.batchWritten(t)
	return t.err
}

// take takes lf's batch out, to be written; the next one starts in the
// spare buffer.
func (lf *logFile) take() takenBatch {
	t := takenBatch{lf: lf, data: lf.batch, n: lf.pending}
	lf.batch, lf.spare, lf.pending = lf.spare[:0], nil, 0
	return t
}

// batchWritten accounts for a batch taken out of lf and written (the
// entries gathered since stay in lf.batch): a failed one is counted,
// and the file cut back to the end of the batch before, where the
// entries written after it will start.
func (lf *logFile) batchWritten(t takenBatch) {
	if cap(t.data) <= 2*lf.limit {
		lf.spare = t.data[:0] // not the room one huge entry took
	}
	if t.err == nil {
		lf.whole += int64(len(t.data))
		return
	}
	lf.meter.Errors.Add(t.n)
	if err := lf.f.Truncate(lf.whole); err != nil {
		if info, err := lf.f.Stat(); err == nil {
			lf.whole = info.Size() // keep the size right at least
		}
	}
	lf.size = lf.whole + int64(len(lf.batch))
}

// cutBack undoes what a failed write left behind: the file is truncated
// to its last whole entry (freeing space, so it works on a full disk)
// and the buffer is emptied.
func (lf *logFile) cutBack() {
	if err := lf.f.Truncate(lf.whole); err == nil {
		lf.size = lf.whole
	} else if info, err := lf.f.Stat(); err == nil {
		lf.size = info.Size() // keep the size right at least
	}
	lf.pending = 0
}

// setBuffer gives lf a buffer if entries are flushed on an interval or
// in batches; the buffer must be empty.
func (lf *logFile) setBuffer(o *options) {
	switch {
	case lf.f == nil:
		lf.limit = 0
	case o.batch:
		lf.limit = batchSize
	case o.flush > 0:
		lf.limit = bufferSize
	default:
		lf.limit = 0
	}
	if lf.limit == 0 {
		lf.batch, lf.spare = nil, nil
	}
}

func (lf *logFile) close() {
	if lf.f != nil {
		lf.f.Close()
		lf.f = nil
	}
}
