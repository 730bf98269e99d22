package rotate

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// compression says how backups are compressed.
type compression struct {
	algo  string // "gzip", "zstd" or "none"
	level int    // 0: the library's default
	mode  os.FileMode
}

func (c compression) suffix() string {
	switch c.algo {
	case "gzip":
		return ".gz"
	case "zstd":
		return ".zst"
	}
	return ""
}

// retention says which backups of a file set to keep.
type retention struct {
	format *nameFormat
	loc    *time.Location
	keep   int           // newest backups kept; 0: no limit
	maxAge time.Duration // older backups are removed; 0: no limit
}

type jobKind int

const (
	jobCompress jobKind = iota // compress plain, then prune set
	jobRecover                 // clean up after a crash, then prune set
)

type job struct {
	kind    jobKind
	plain   string
	comp    compression
	set     fileSet
	ret     retention
	anyHost bool // jobRecover: look at the backups of every host too
}

// archiver compresses and prunes backups on its own goroutine, one job
// at a time, so that writes never wait for it: the write path only
// renames the live file and queues a job. Its queue is unbounded, but
// holds one small job per rotation.
type archiver struct {
	clock clock
	logf  func(msg string, err error)

	mu     sync.Mutex
	cond   *sync.Cond
	queue  []job
	busy   bool
	closed bool
	done   chan struct{}
}

func newArchiver(clk clock, logf func(string, error)) *archiver {
	a := &archiver{clock: clk, logf: logf, done: make(chan struct{})}
	a.cond = sync.NewCond(&a.mu)
	go a.run()
	return a
}

func (a *archiver) add(j job) {
	a.mu.Lock()
	a.queue = append(a.queue, j)
	a.mu.Unlock()
	a.cond.Broadcast()
}

// wait returns once every queued job is done.
func (a *archiver) wait() {
	a.mu.Lock()
	for len(a.queue) > 0 || a.busy {
		a.cond.Wait()
	}
	a.mu.Unlock()
}

// close finishes the queued jobs and stops the goroutine. A backup whose
// compression is cut short by the process exiting is finished by the
// next start's recovery job.
func (a *archiver) close() {
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
	a.cond.Broadcast()
	<-a.done
}

func (a *archiver) run() {
	defer close(a.done)
	for {
		a.mu.Lock()
		for len(a.queue) == 0 && !a.closed {
			a.cond.Wait()
		}
		if len(a.queue) == 0 {
			a.mu.Unlock()
			return
		}
		j := a.queue[0]
		a.queue = a.queue[1:]
		a.busy = true
		a.mu.Unlock()

		a.do(j)

		a.mu.Lock()
		a.busy = false
		a.mu.Unlock()
		a.cond.Broadcast()
	}
}

func (a *archiver) do(j job) {
	if j.ret.format.numbered {
		// Compressing and pruning are part of numbering, which locks
		// each file's backups as it works on them.
		a.numbered(j)
		return
	}
	defer lockBackups(filepath.Join(j.set.dir, j.set.liveName()))()
	switch j.kind {
	case jobCompress:
		if err := compressFile(j.plain, j.comp); err != nil {
			a.logf("compressing backup", err)
		}
	case jobRecover:
		a.recover(j)
	}
	if err := a.prune(j.set, j.ret); err != nil {
		a.logf("removing old backups", err)
	}
}

// backupLocks serialises the jobs for one file's backups across
// archivers. A file has one archiver at a time, but its jobs can outlive
// the handover of the file to another writer (a reload that changes a
// path template): the new writer's recovery, run when it first opens the
// file, would otherwise take the old archiver's archive in progress for
// a crash's leftover and remove it, or compress the same backup at once;
// two archivers numbering one file's backups would lose one.
var backupLocks = struct {
	sync.Mutex
	m map[string]*backupLock
}{m: map[string]*backupLock{}}

type backupLock struct {
	sync.Mutex
	refs int
}

// lockBackups locks the backups of the live file at key and returns
// the function that unlocks them.
func lockBackups(key string) (unlock func()) {
	backupLocks.Lock()
	l := backupLocks.m[key]
	if l == nil {
		l = &backupLock{}
		backupLocks.m[key] = l
	}
	l.refs++
	backupLocks.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		backupLocks.Lock()
		if l.refs--; l.refs == 0 {
			delete(backupLocks.m, key)
		}
		backupLocks.Unlock()
	}
}

// recover finishes what a crash (or a kill) interrupted, using the
// order in which compressFile works: an archive in progress (`.tmp`) is
// always incomplete, so it is removed; a plain backup next to a complete
// archive was about to be removed, so it is; a plain backup alone is
// compressed if compression is on.
func (a *archiver) recover(j job) {
	re := j.ret.format.matcher(j.set, j.anyHost)
	list, err := listBackups(j.set.dir, re, j.ret.loc)
	if err != nil {
		a.logf("looking for unfinished backups", err)
		return
	}
	for _, b := range list {
		for _, t := range b.tmp {
			if err := os.Remove(t); err != nil && !os.IsNotExist(err) {
				a.logf("removing incomplete archive", err)
			}
		}
		switch {
		case b.plain && len(b.done) > 0:
			if err := os.Remove(b.stem); err != nil && !os.IsNotExist(err) {
				a.logf("removing compressed backup", err)
			}
		case b.plain && j.comp.algo != "none":
			if err := compressFile(b.stem, j.comp); err != nil {
				a.logf("compressing backup", err)
			}
		}
	}
}

// prune removes the backups of set beyond ret's count and age. It only
// ever considers names that set's own backups can have.
func (a *archiver) prune(set fileSet, ret retention) error {
	if ret.keep <= 0 && ret.maxAge <= 0 {
		return nil
	}
	list, err := listBackups(set.dir, ret.format.matcher(set, false), ret.loc)
	if err != nil {
		return err
	}
	now := a.clock.Now()
	var firstErr error
	for i, b := range list {
		newer := len(list) - 1 - i
		if (ret.keep > 0 && newer >= ret.keep) || (ret.maxAge > 0 && now.Sub(b.at) > ret.maxAge) {
			for _, f := range b.files {
				if err := os.Remove(f); err != nil && !os.IsNotExist(err) && firstErr == nil {
					firstErr = err
				}
			}
		}
	}
	return firstErr
}

// compressFile turns the backup plain into plain+suffix so that at every
// instant one complete copy exists: it writes plain+suffix+".tmp",
// syncs it, renames it into place, syncs the folder, and only then
// removes plain. Nothing is done if plain is gone (already done), and
// plain is just removed if its archive is already complete.
func compressFile(plain string, c compression) error {
	if c.algo == "none" || c.algo == "" {
		return nil
	}
	dst := plain + c.suffix()
	in, err := os.Open(plain)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	defer in.Close()
	if exists(dst) {
		return os.Remove(plain)
	}
	info, err := in.Stat()
	if err != nil {
		return err
	}
	tmp := dst + tmpSuffix
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, c.mode)
	if err != nil {
		return err
	}
	fail := func(err error) error {
		out.Close()
		os.Remove(tmp)
		return fmt.Errorf("%s: %w", dst, err)
	}
	if err := out.Chmod(c.mode); err != nil {
		return fail(err)
	}
	var enc io.WriteCloser
	switch c.algo {
	case "gzip":
		level := c.level
		if level == 0 {
			level = gzip.DefaultCompression
		}
		gz, err := gzip.NewWriterLevel(out, level)
		if err != nil {
			return fail(err)
		}
		gz.Name = filepath.Base(plain)
		gz.ModTime = info.ModTime()
		enc = gz
	case "zstd":
		opts := []zstd.EOption{zstd.WithEncoderConcurrency(1)}
		if c.level != 0 {
			opts = append(opts, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(c.level)))
		}
		zw, err := zstd.NewWriter(out, opts...)
		if err != nil {
			return fail(err)
		}
		enc = zw
	default:
		return fail(fmt.Errorf("unknown compression %q", c.algo))
	}
	if _, err := io.Copy(enc, in); err != nil {
		enc.Close()
		return fail(err)
	}
	if err := enc.Close(); err != nil {
		return fail(err)
	}
	// The archive keeps the backup's modification time, as gzip(1)
	// does: max_age of numbered backups goes by it.
	if err := os.Chtimes(tmp, time.Time{}, info.ModTime()); err != nil {
		return fail(err)
	}
	if err := out.Sync(); err != nil {
		return fail(err)
	}
	if err := out.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("%s: %w", dst, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("%s: %w", dst, err)
	}
	// The rename must be on disk before the plain file's removal is.
	syncDir(filepath.Dir(dst))
	return os.Remove(plain)
}

// syncDir makes renames and creations in dir durable, where the
// platform allows it.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
