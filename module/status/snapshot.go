package status

import "time"

// Snapshot is a consistent-enough copy of every counter, for the status
// page, its JSON and the metrics. Counters are read one by one, not
// under a lock: a record may be counted in one and not yet in another.
type Snapshot struct {
	Now           time.Time         `json:"now"`
	UptimeSeconds float64           `json:"uptime_seconds"`
	Totals        CounterSnapshot   `json:"totals"`
	Facilities    []CounterSnapshot `json:"facilities"`
	Sources       []CounterSnapshot `json:"sources"`
	Writers       []WriterSnapshot  `json:"writers"`
}

// CounterSnapshot is a copy of one set of Counters.
type CounterSnapshot struct {
	Name      string `json:"name"`
	Accepted  int64  `json:"accepted"`
	Filtered  int64  `json:"filtered"`
	Rejected  int64  `json:"rejected"`
	Truncated int64  `json:"truncated"`
	// Entries writers gave up on (full queue, oversize); in totals only,
	// since a writer's entries are not counted by facility.
	Dropped       int64   `json:"dropped,omitempty"`
	RatePerSecond float64 `json:"rate_per_second"`
}

// WriterSnapshot is a copy of one Writer's counters.
type WriterSnapshot struct {
	Kind                  string  `json:"kind"`
	Name                  string  `json:"name"`
	Bytes                 int64   `json:"bytes"`
	Entries               int64   `json:"entries"`
	Errors                int64   `json:"errors"`
	Dropped               int64   `json:"dropped"`
	Truncated             int64   `json:"truncated"`
	Rotations             int64   `json:"rotations"`
	Unplaced              int64   `json:"unplaced,omitempty"`
	SpoolDepth            int64   `json:"spool_depth"`
	SpoolOldestAgeSeconds float64 `json:"spool_oldest_age_seconds"`
}

func (c *Counters) snapshot(name string, now time.Time) CounterSnapshot {
	return CounterSnapshot{
		Name:          name,
		Accepted:      c.Accepted.Load(),
		Filtered:      c.Filtered.Load(),
		Rejected:      c.Rejected.Load(),
		Truncated:     c.Truncated.Load(),
		RatePerSecond: c.RatePerSecond(now),
	}
}

// Take returns a snapshot of every counter.
func Take(now time.Time) Snapshot {
	s := Snapshot{Now: now, UptimeSeconds: now.Sub(started).Seconds(), Totals: CounterSnapshot{Name: "total"}}
	facilities.each(func(name string, c *Counters) {
		cs := c.snapshot(name, now)
		s.Facilities = append(s.Facilities, cs)
		s.Totals.Accepted += cs.Accepted
		s.Totals.Filtered += cs.Filtered
		s.Totals.Truncated += cs.Truncated
		s.Totals.RatePerSecond += cs.RatePerSecond
	})
	sources.each(func(name string, c *Counters) {
		cs := c.snapshot(name, now)
		s.Sources = append(s.Sources, cs)
		// Refusals happen before a facility is known for certain, so
		// they are totalled from the doors.
		s.Totals.Rejected += cs.Rejected
	})
	writers.each(func(_ string, w *Writer) {
		ws := WriterSnapshot{
			Kind: w.Kind, Name: w.Name,
			Bytes: w.Bytes.Load(), Entries: w.Entries.Load(), Errors: w.Errors.Load(),
			Dropped: w.Dropped.Load(), Truncated: w.Truncated.Load(),
			Rotations: w.Rotations.Load(), Unplaced: w.Unplaced.Load(), SpoolDepth: w.SpoolDepth.Load(),
		}
		if oldest := w.SpoolOldest.Load(); oldest > 0 {
			ws.SpoolOldestAgeSeconds = now.Sub(time.Unix(0, oldest)).Seconds()
		}
		s.Writers = append(s.Writers, ws)
		s.Totals.Dropped += ws.Dropped
	})
	return s
}
