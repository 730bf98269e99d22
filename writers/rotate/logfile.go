package rotate

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/caddy-applog/caddy-applog/module/status"
)

// bufferSize is the buffer of each file with `flush <interval>`.
const bufferSize = 64 << 10

// batchSize bounds a file's batch with `flush batch`: the writer that
// would make it larger writes the batch out itself (after the one the
// flusher may be writing), which holds receivers back when the disk
// cannot keep up.
const batchSize = 256 << 10

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
