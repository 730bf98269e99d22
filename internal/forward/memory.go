package forward

import (
	"fmt"
	"sync"
	"time"

	"github.com/caddy-applog/caddy-applog/module/status"
)

// memQueue is the queue of a writer without a spool: up to limit
// records in memory. When it is full the newest record is dropped, so a
// dead peer costs bounded memory and never holds up a request.
// What it holds is lost if Caddy exits before it is delivered.
type memQueue struct {
	name  string // "<module> <peer>", for messages
	meter *status.Writer

	mu      sync.Mutex
	limit   int
	recs    []memRecord // recs[0] has sequence number first
	first   int64
	changed chan struct{}
	closed  bool
}

type memRecord struct {
	data []byte
	ts   int64
}

func newMemQueue(name string, limit int, meter *status.Writer) *memQueue {
	return &memQueue{name: name, limit: limit, meter: meter, changed: make(chan struct{})}
}

func (q *memQueue) put(p []byte) error {
	p = trimEntry(p)
	data := make([]byte, len(p)) // zap reuses p
	copy(data, p)
	now := time.Now().UnixNano()
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		q.meter.Dropped.Add(1)
		return errClosed
	}
	if len(q.recs) >= q.limit {
		q.meter.Dropped.Add(1)
		return fmt.Errorf("%s: buffer of %d entries full, entry dropped", q.name, q.limit)
	}
	q.recs = append(q.recs, memRecord{data, now})
	if len(q.recs) == 1 {
		q.meter.SpoolOldest.Store(now)
	}
	q.meter.SpoolDepth.Store(int64(len(q.recs)))
	close(q.changed)
	q.changed = make(chan struct{})
	return nil
}

func (q *memQueue) read(from pos, maxBytes int, wake <-chan struct{}, timeout time.Duration) ([]record, error) {
	var timer *time.Timer
	defer stopTimer(&timer)
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return nil, errClosed
		}
		i := max(from.off-q.first, 0)
		if i < int64(len(q.recs)) {
			var out []record
			n := 0
			for ; i < int64(len(q.recs)) && (n == 0 || n+len(q.recs[i].data) <= maxBytes); i++ {
				r := q.recs[i]
				n += len(r.data)
				out = append(out, record{data: r.data, end: pos{off: q.first + i + 1}, size: 1, ts: r.ts})
			}
			q.mu.Unlock()
			return out, nil
		}
		changed := q.changed
		q.mu.Unlock()
		if !awaitChange(changed, wake, &timer, timeout) {
			return nil, nil
		}
	}
}

func (q *memQueue) commit(recs []meta) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, r := range recs {
		if r.end.off <= q.first {
			continue
		}
		if r.rejected {
			q.meter.Dropped.Add(1)
		} else {
			q.meter.Entries.Add(1)
			q.meter.Bytes.Add(int64(len(q.recs[0].data)))
		}
		q.recs[0] = memRecord{}
		q.recs = q.recs[1:]
		q.first++
	}
	if len(q.recs) == 0 {
		q.recs = nil // let the backing array go
		q.meter.SpoolOldest.Store(0)
	} else {
		q.meter.SpoolOldest.Store(q.recs[0].ts)
	}
	q.meter.SpoolDepth.Store(int64(len(q.recs)))
}

func (q *memQueue) head() pos {
	q.mu.Lock()
	defer q.mu.Unlock()
	return pos{off: q.first}
}

func (q *memQueue) depth() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return int64(len(q.recs))
}

func (q *memQueue) setLimit(n int) {
	q.mu.Lock()
	q.limit = n
	q.mu.Unlock()
}

// close drops what is held, counting it.
func (q *memQueue) close() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed = true
		q.meter.Dropped.Add(int64(len(q.recs)))
		q.recs = nil
		q.meter.SpoolDepth.Store(0)
		q.meter.SpoolOldest.Store(0)
		close(q.changed)
	}
	return nil
}
