package rotate

import (
	"os"
	"time"
)

// checkInterval is how often open files are compared with what is at
// their path, to notice a file moved or deleted by another program
// (logrotate, an operator) and reopen it.
const checkInterval = time.Second

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
