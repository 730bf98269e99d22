package status

// SetFollowSize sets how many records the ring keeps while only
// followers want it (see Follow); the applog app sets it to its
// recent_records when it starts. 0 means no applog app: Follow then
// keeps nothing.
func SetFollowSize(n int) {
	resizeMu.Lock()
	defer resizeMu.Unlock()
	followSize = n
	resize()
}

// Follow keeps the ring of recent records on for a live stream (the
// admin API's stream, which `caddy applog tail` reads), even when no
// status page asks for it, and returns the function that lets go.
//
// Letting go does not disable the ring at once: it stays until the next
// SetRecentSize (a config load) finds no follower. A follower whose
// stream ends with a config reload reconnects and resumes after the last
// record it saw, so nothing between the two streams is lost.
func Follow() (release func()) {
	resizeMu.Lock()
	defer resizeMu.Unlock()
	followers++
	resize()
	done := false
	return func() {
		resizeMu.Lock()
		defer resizeMu.Unlock()
		if !done {
			done = true
			followers--
		}
	}
}

// Head is the sequence number of the newest record, 0 before the first.
// A stream that starts at Head shows only records that arrive from then.
func Head() uint64 {
	if r := recent.Load(); r != nil {
		return r.next.Load()
	}
	resizeMu.Lock()
	defer resizeMu.Unlock()
	return lastSeq
}
