package rotate

import "runtime"

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

// batchFull reports whether p would overflow the batch of lf, its open
// file (nil if not open).
func (s *sink) batchFull(p []byte, lf *logFile) bool {
	lf = s.batchFile(lf)
	return lf != nil && len(lf.batch) > 0 && len(lf.batch)+len(p) > lf.limit
}

// batchFile returns lf if entries are batched and it is open; nil if not.
func (s *sink) batchFile(lf *logFile) *logFile {
	if !s.opts.batch || s.down || lf == nil || lf.f == nil {
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
func (s *sink) joinsBatch(p []byte, lf *logFile) bool {
	if s.down {
		return true // refused without touching anything
	}
	lf = s.batchFile(lf)
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
