// Package status keeps what the status page and the metrics show:
// process-wide counters for facilities, doors (handlers, receivers) and
// writers, per-second rates over the last minute, and a ring of the most
// recent records.
//
// Everything here outlives config reloads on purpose: a reload must not
// reset counters (Prometheus counters are monotonic) or empty the page.
// Updates are atomic operations; nothing on the ingest path takes a lock
// once a counter exists.
package status

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// started is when the process began counting.
var started = time.Now()

// Counters count records by outcome, with a per-second history of
// accepted records for rates.
type Counters struct {
	Accepted  atomic.Int64
	Filtered  atomic.Int64 // below the facility's level
	Rejected  atomic.Int64 // refused: unknown app, bad signature, bad input
	Truncated atomic.Int64
	rate      rate
}

// Accept counts n accepted records at now.
func (c *Counters) Accept(now time.Time, n int) {
	c.Accepted.Add(int64(n))
	c.rate.add(now, int64(n))
}

// RatePerSecond is the mean of accepted records per second over the last
// minute, not counting the current, unfinished second.
func (c *Counters) RatePerSecond(now time.Time) float64 {
	return c.rate.perSecond(now)
}

// rate is a ring of 60 one-second buckets.
type rate struct {
	buckets [60]bucket
}

type bucket struct {
	sec atomic.Int64 // the Unix second the count belongs to
	n   atomic.Int64
}

func (r *rate) add(now time.Time, n int64) {
	sec := now.Unix()
	b := &r.buckets[sec%60]
	for {
		old := b.sec.Load()
		if old == sec {
			b.n.Add(n)
			return
		}
		// The bucket holds an older second: claim it for this one.
		// Losing the race means another writer reset it; retry.
		if b.sec.CompareAndSwap(old, sec) {
			b.n.Store(n)
			return
		}
	}
}

func (r *rate) perSecond(now time.Time) float64 {
	cur := now.Unix()
	var sum int64
	for i := range r.buckets {
		b := &r.buckets[i]
		if s := b.sec.Load(); s < cur && s >= cur-60 {
			sum += b.n.Load()
		}
	}
	return float64(sum) / 60
}

// Writer counts what a log writer did. Writers create theirs with
// WriterMeter and update it as they work.
type Writer struct {
	Kind      string // the writer module's name: "rotate", "syslog", "tls"
	Name      string // what it writes to: a path or an address
	Bytes     atomic.Int64
	Entries   atomic.Int64
	Errors    atomic.Int64
	Dropped   atomic.Int64 // entries given up on (full queue, oversize)
	Truncated atomic.Int64 // entries cut to fit a datagram
	Rotations atomic.Int64
	Unplaced  atomic.Int64 // entries a path template could not place, written to its fallback file
	// For spooling writers: records waiting, and the Unix nanoseconds of
	// the oldest of them (0 when the spool is empty).
	SpoolDepth  atomic.Int64
	SpoolOldest atomic.Int64
}

// registry holds every named set of counters ever created.
type registry[T any] struct {
	m sync.Map // string → *T
}

func (r *registry[T]) get(name string, init func(*T)) *T {
	if v, ok := r.m.Load(name); ok {
		return v.(*T)
	}
	t := new(T)
	if init != nil {
		init(t)
	}
	v, _ := r.m.LoadOrStore(name, t)
	return v.(*T)
}

func (r *registry[T]) each(f func(name string, t *T)) {
	var names []string
	r.m.Range(func(k, _ any) bool { names = append(names, k.(string)); return true })
	sort.Strings(names)
	for _, n := range names {
		v, _ := r.m.Load(n)
		f(n, v.(*T))
	}
}

var (
	facilities registry[Counters]
	sources    registry[Counters]
	writers    registry[Writer]
)

// Facility returns the counters of a configured facility ("myapp",
// "myapp:web"), creating them on first use. Only configured facilities
// get their own: client-chosen names must not grow this without bound.
func Facility(name string) *Counters { return facilities.get(name, nil) }

// Source returns the counters of a door records come in by
// ("log_ingest", "syslog/udp/127.0.0.1:5514").
func Source(name string) *Counters { return sources.get(name, nil) }

// WriterMeter returns the counters of the writer of kind writing to name.
func WriterMeter(kind, name string) *Writer {
	return writers.get(kind+" "+name, func(w *Writer) { w.Kind, w.Name = kind, name })
}
