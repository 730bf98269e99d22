package status

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Entry is a record as the status page shows it.
type Entry struct {
	Seq       uint64    `json:"seq"`
	Time      time.Time `json:"time"`
	Level     string    `json:"level"` // zap's level name: debug, info, warn, error, dpanic...
	LevelNo   int       `json:"level_no"`
	LevelName string    `json:"level_name"`
	App       string    `json:"app"`
	Facility  string    `json:"facility,omitempty"`
	Host      string    `json:"host,omitempty"`
	Logger    string    `json:"logger,omitempty"`
	Message   string    `json:"message"`
	Source    string    `json:"source,omitempty"`
}

// MaxEntryMessage bounds the message kept per entry: the page shows the
// start of long messages, and the ring's memory stays bounded.
const MaxEntryMessage = 4096

// ring is a fixed-size, lock-free ring: writers take a sequence number
// with one atomic add and store their entry in its slot.
type ring struct {
	slots []atomic.Pointer[Entry]
	next  atomic.Uint64 // the last sequence number handed out
	floor uint64        // the oldest sequence number this ring can hold
}

var (
	recent atomic.Pointer[ring] // nil: disabled

	// What sizes the ring, under resizeMu: the size the config asks
	// for, the size it takes while only followers want it, how many
	// follow it, and the last sequence number handed out by a ring
	// that was disabled, so that numbers go on rising through a
	// disable and an enable (a follower resumes after the last one
	// it saw).
	resizeMu   sync.Mutex
	asked      int
	followSize int
	followers  int
	lastSeq    uint64
)

// DefaultRecent is the default number of recent records kept.
const DefaultRecent = 300

// SetRecentSize keeps the n most recent records from now on (n <= 0
// disables the ring, unless a follower holds it). Resizing keeps the
// newest entries, so a config reload does not empty the status page.
func SetRecentSize(n int) {
	resizeMu.Lock()
	defer resizeMu.Unlock()
	asked = n
	resize()
}

// resize makes the ring the size wanted now. The caller holds resizeMu.
func resize() {
	n := asked
	if n <= 0 && followers > 0 {
		n = followSize
	}
	old := recent.Load()
	if n <= 0 {
		if old != nil {
			lastSeq = old.next.Load()
		}
		recent.Store(nil)
		return
	}
	if old != nil && len(old.slots) == n {
		return
	}
	r := &ring{slots: make([]atomic.Pointer[Entry], n), floor: lastSeq + 1}
	r.next.Store(lastSeq)
	if old != nil {
		head := old.next.Load()
		kept := old.since(0, n)
		r.floor = head + 1
		if len(kept) > 0 {
			r.floor = kept[0].Seq
		}
		for i := range kept {
			e := kept[i]
			r.slots[(e.Seq-1)%uint64(n)].Store(&e)
		}
		r.next.Store(head)
	}
	recent.Store(r)
}

// RecordBatch keeps the entries of one batch as the newest ones, if the
// ring is enabled, taking ownership of the slice. Working per batch keeps
// the cost per record to a copy: one atomic add for all the sequence
// numbers, and one allocation for all the strings, which are copied
// because decoded records may share a large request body that must not
// stay in memory for the sake of one entry, or point into a read buffer
// that is reused once the batch has been submitted. Only the last entries that
// fit in the ring are kept; a slot's entry keeps its batch's slice alive
// only until newer records overwrite it, so at most about twice the
// ring's size of entries is ever held.
func RecordBatch(batch []Entry) {
	r := recent.Load()
	if r == nil || len(batch) == 0 {
		return
	}
	if n := len(r.slots); len(batch) > n {
		batch = batch[len(batch)-n:]
	}
	size := 0
	for i := range batch {
		e := &batch[i]
		if len(e.Message) > MaxEntryMessage {
			e.Message = e.Message[:MaxEntryMessage]
		}
		size += len(e.Message) + len(e.Facility) + len(e.Host) + len(e.Logger) + len(e.App) + len(e.LevelName) + len(e.Source)
	}
	var b strings.Builder
	b.Grow(size)
	for i := range batch {
		e := &batch[i]
		b.WriteString(e.Message)
		b.WriteString(e.Facility)
		b.WriteString(e.Host)
		b.WriteString(e.Logger)
		b.WriteString(e.App)
		b.WriteString(e.LevelName)
		b.WriteString(e.Source)
	}
	all := b.String()
	last := r.next.Add(uint64(len(batch)))
	first := last - uint64(len(batch)) + 1
	for i := range batch {
		e := &batch[i]
		e.Message, all = all[:len(e.Message)], all[len(e.Message):]
		e.Facility, all = all[:len(e.Facility)], all[len(e.Facility):]
		e.Host, all = all[:len(e.Host)], all[len(e.Host):]
		e.Logger, all = all[:len(e.Logger)], all[len(e.Logger):]
		e.App, all = all[:len(e.App)], all[len(e.App):]
		e.LevelName, all = all[:len(e.LevelName)], all[len(e.LevelName):]
		e.Source, all = all[:len(e.Source)], all[len(e.Source):]
		e.Seq = first + uint64(i)
		r.slots[(e.Seq-1)%uint64(len(r.slots))].Store(e)
	}
}

// RecentSize is the number of entries the ring keeps; 0 when disabled.
func RecentSize() int {
	if r := recent.Load(); r != nil {
		return len(r.slots)
	}
	return 0
}

// Recent returns up to limit entries newer than sequence number after,
// oldest first; limit <= 0 means as many as are kept.
func Recent(after uint64, limit int) []Entry {
	r := recent.Load()
	if r == nil {
		return nil
	}
	return r.since(after, limit)
}

func (r *ring) since(after uint64, limit int) []Entry {
	n := uint64(len(r.slots))
	head := r.next.Load()
	first := max(after+1, r.floor)
	if head >= n && first < head-n+1 {
		first = head - n + 1
	}
	if limit > 0 && head >= uint64(limit) && first < head-uint64(limit)+1 {
		first = head - uint64(limit) + 1
	}
	if first > head {
		return nil
	}
	out := make([]Entry, 0, min(head-first+1, n))
	for seq := first; seq <= head; seq++ {
		e := r.slots[(seq-1)%n].Load()
		switch {
		case e == nil || e.Seq < seq:
			// Taken but not stored yet: stop here, so that the
			// caller asks again from this point next time.
			return out
		case e.Seq > seq:
			continue // overwritten by a newer entry
		}
		out = append(out, *e)
	}
	return out
}
