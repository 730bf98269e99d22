package forward

import (
	"errors"
	"time"
)

// pos is a place in a queue: the segment and byte offset of a record
// boundary in a spool, or a record's sequence number (in off) in memory.
type pos struct {
	seg uint64
	off int64
}

func (p pos) before(q pos) bool { return p.seg < q.seg || p.seg == q.seg && p.off < q.off }

// record is one log entry read from a queue for sending.
type record struct {
	data []byte // the entry, without its trailing newline
	end  pos    // where the next record starts
	size int64  // what the record counts against the queue's size
	ts   int64  // Unix nanoseconds when it was queued
}

// queue holds the records a writer accepted until the peer has
// them. Records are put by Caddy's loggers (many goroutines) and read
// and committed by one sender at a time, in order.
type queue interface {
	// put stores a copy of one record. It returns only once the record
	// is as safe as the queue makes it (in a spool: written, and synced
	// if the fsync policy says so), or with an error if it was dropped.
	put(p []byte) error
	// read returns records that follow from (at least one, about max
	// bytes at most), waiting until one is there, wake is closed, or
	// the timeout passes (then it returns none).
	read(from pos, maxBytes int, wake <-chan struct{}, timeout time.Duration) ([]record, error)
	// commit forgets the given records, which the peer has settled.
	commit(recs []meta)
	// head is where the oldest record held starts: where a new
	// connection begins sending.
	head() pos
	// depth returns how many records are held.
	depth() int64
	// close releases the queue's files; records stay on disk.
	close() error
}

// meta is what the sender keeps of a record it sent, to commit it once
// the peer settled it.
type meta struct {
	end      pos
	size     int64
	ts       int64
	rejected bool // the peer refused it for good: dropped, not delivered
}

// errClosed is returned by put after the queue was closed.
var errClosed = errors.New("queue closed")

// awaitChange waits, in a queue's read, until changed or wake is closed
// or the timeout runs out (counted from the first wait of the read, in
// *timer). It reports whether to look at the queue again.
func awaitChange(changed, wake <-chan struct{}, timer **time.Timer, timeout time.Duration) bool {
	if *timer == nil {
		*timer = time.NewTimer(timeout)
	}
	select {
	case <-changed:
		return true
	case <-wake:
		return false
	case <-(*timer).C:
		return false
	}
}

func stopTimer(t **time.Timer) {
	if *t != nil {
		(*t).Stop()
	}
}

// trimEntry drops the line ending an encoder puts after an entry:
// framing takes its place on the wire.
func trimEntry(p []byte) []byte {
	for len(p) > 0 && (p[len(p)-1] == '\n' || p[len(p)-1] == '\r') {
		p = p[:len(p)-1]
	}
	return p
}
