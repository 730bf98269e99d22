package rotate

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// schedule is a parsed `every` value: a 5-field cron expression
// (minute hour day-of-month month day-of-week), which the named
// schedules are shorthands for.
type schedule struct {
	expr string

	// one bit per allowed value
	minute, hour, dom, month, dow uint64

	// domStar and dowStar record a field that starts with '*': as in
	// Vixie cron, a day matches when both day fields match if either is
	// starred, and when either matches otherwise ("0 0 1,15 * MON" fires
	// on the 1st, the 15th and every Monday).
	domStar, dowStar bool

	// everyHour is set when the hour field allows all 24 hours. Such a
	// schedule fires at every real occurrence of a wall-clock time that a
	// DST fall-back repeats (hourly rotation rotates each real hour),
	// while a schedule at fixed hours fires at the first occurrence only
	// (a daily rotation at 02:30 happens once on that day too). This is
	// Vixie cron's rule for wildcard and fixed-time jobs.
	everyHour bool
}

// namedSchedules are the `every` keywords and what they mean. Weekly is
// Sunday midnight, like cron's @weekly and logrotate's weekly.
var namedSchedules = map[string]string{
	"hourly":  "0 * * * *",
	"daily":   "0 0 * * *",
	"weekly":  "0 0 * * 0",
	"monthly": "0 0 1 * *",
	"yearly":  "0 0 1 1 *",
}

// parseSchedule parses an `every` value: hourly, daily, weekly,
// monthly, yearly (also with cron's '@' prefix, plus @annually and
// @midnight), or 5 cron fields. Fields accept `*`, numbers, names
// (JAN-DEC, SUN-SAT), ranges `a-b`, steps `*/n` `a-b/n` `a/n`, and
// comma-separated lists; day-of-week 0 and 7 are both Sunday.
func parseSchedule(every string) (*schedule, error) {
	expr := strings.TrimSpace(every)
	name := strings.ToLower(strings.TrimPrefix(expr, "@"))
	switch name {
	case "annually":
		name = "yearly"
	case "midnight":
		name = "daily"
	}
	if e, ok := namedSchedules[name]; ok {
		expr = e
	} else if strings.HasPrefix(expr, "@") {
		return nil, fmt.Errorf("unknown schedule %q: want hourly, daily, weekly, monthly, yearly or 5 cron fields", every)
	}
	fields := strings.Fields(expr)
	if len(fields) != 5 {
		return nil, fmt.Errorf("schedule %q: want hourly, daily, weekly, monthly, yearly or 5 cron fields (minute hour day month weekday), got %d fields", every, len(fields))
	}
	s := &schedule{expr: strings.Join(fields, " ")}
	var err error
	if s.minute, _, err = parseField(fields[0], 0, 59, nil); err != nil {
		return nil, fmt.Errorf("schedule %q: minute: %w", every, err)
	}
	if s.hour, _, err = parseField(fields[1], 0, 23, nil); err != nil {
		return nil, fmt.Errorf("schedule %q: hour: %w", every, err)
	}
	if s.dom, s.domStar, err = parseField(fields[2], 1, 31, nil); err != nil {
		return nil, fmt.Errorf("schedule %q: day of month: %w", every, err)
	}
	if s.month, _, err = parseField(fields[3], 1, 12, monthNames); err != nil {
		return nil, fmt.Errorf("schedule %q: month: %w", every, err)
	}
	if s.dow, s.dowStar, err = parseField(fields[4], 0, 7, dayNames); err != nil {
		return nil, fmt.Errorf("schedule %q: day of week: %w", every, err)
	}
	if s.dow&(1<<7) != 0 { // 7 is Sunday too
		s.dow |= 1
	}
	s.everyHour = s.hour == 1<<24-1
	// An expression can be well-formed and still never fire (30 February).
	if s.next(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), time.UTC).IsZero() {
		return nil, fmt.Errorf("schedule %q never fires", every)
	}
	return s, nil
}

var monthNames = map[string]int{"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12}

var dayNames = map[string]int{"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}

// parseField parses one cron field into a bit set of allowed values.
func parseField(field string, min, max int, names map[string]int) (bits uint64, star bool, err error) {
	star = strings.HasPrefix(field, "*")
	for part := range strings.SplitSeq(field, ",") {
		rng, stepStr, hasStep := strings.Cut(part, "/")
		step := 1
		if hasStep {
			step, err = strconv.Atoi(stepStr)
			if err != nil || step < 1 {
				return 0, false, fmt.Errorf("bad step %q", stepStr)
			}
		}
		lo, hi := min, max
		switch {
		case rng == "*":
		case strings.Contains(rng, "-"):
			a, b, _ := strings.Cut(rng, "-")
			if lo, err = fieldValue(a, min, max, names); err != nil {
				return 0, false, err
			}
			if hi, err = fieldValue(b, min, max, names); err != nil {
				return 0, false, err
			}
			if lo > hi {
				return 0, false, fmt.Errorf("range %q goes backwards", rng)
			}
		default:
			if lo, err = fieldValue(rng, min, max, names); err != nil {
				return 0, false, err
			}
			if !hasStep { // "a/n" means from a to the end, every n
				hi = lo
			}
		}
		for v := lo; v <= hi; v += step {
			bits |= 1 << uint(v)
		}
	}
	return bits, star, nil
}

func fieldValue(s string, min, max int, names map[string]int) (int, error) {
	if v, ok := names[strings.ToLower(s)]; ok {
		return v, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("bad value %q", s)
	}
	if v < min || v > max {
		return 0, fmt.Errorf("%d out of range %d-%d", v, min, max)
	}
	return v, nil
}

// maxShift bounds how far a time-zone change moves the wall clock back.
// Real DST shifts are 30 minutes to 2 hours.
const maxShift = 3 * time.Hour

// next returns the first instant strictly after t at which the schedule
// fires, reading the cron fields on loc's wall clock, or the zero time
// if it never does (within 10 years).
//
// Candidates are wall-clock minutes (civil times, held as UTC values so
// that calendar arithmetic never meets DST), each resolved to the
// instants at which loc's clock shows it: usually one; none when a
// spring-forward skips it, and then the schedule fires at the instant
// the clock jumps over it (a daily rotation at 02:30 still happens on
// that day); two in a fall-back overlap (see everyHour).
func (s *schedule) next(t time.Time, loc *time.Location) time.Time {
	t = t.In(loc)
	// A wall-clock time just before t's can recur after t when the clock
	// is about to go back; only then search from a little earlier.
	from := t
	_, zoneEnd := t.ZoneBounds()
	nearChange := !zoneEnd.IsZero() && zoneEnd.Sub(t) <= maxShift
	if nearChange {
		from = t.Add(-maxShift)
	}
	c := wall(from).Truncate(time.Minute)
	limit := wall(t).AddDate(10, 0, 0)
	var best time.Time
	for {
		c = s.nextCivil(c, limit)
		if c.IsZero() {
			return best
		}
		if !best.IsZero() && c.After(wall(best.In(loc)).Add(maxShift)) {
			return best // later wall-clock times cannot map to earlier instants
		}
		for _, at := range s.resolve(c, loc) {
			if at.After(t) && (best.IsZero() || at.Before(best)) {
				best = at
			}
		}
		if !best.IsZero() && (zoneEnd.IsZero() || zoneEnd.After(best.Add(maxShift))) {
			return best // no clock change between t and best: wall order is instant order
		}
		c = c.Add(time.Minute)
	}
}

// nextCivil returns the first wall-clock minute at or after c (a UTC
// value) that matches every field, or zero past limit.
func (s *schedule) nextCivil(c, limit time.Time) time.Time {
	for !c.After(limit) {
		switch {
		case s.month&(1<<uint(c.Month())) == 0:
			c = time.Date(c.Year(), c.Month()+1, 1, 0, 0, 0, 0, time.UTC)
		case !s.dayMatches(c):
			c = time.Date(c.Year(), c.Month(), c.Day()+1, 0, 0, 0, 0, time.UTC)
		case s.hour&(1<<uint(c.Hour())) == 0:
			c = c.Truncate(time.Hour).Add(time.Hour)
		case s.minute&(1<<uint(c.Minute())) == 0:
			c = c.Add(time.Minute)
		default:
			return c
		}
	}
	return time.Time{}
}

func (s *schedule) dayMatches(c time.Time) bool {
	dom := s.dom&(1<<uint(c.Day())) != 0
	dow := s.dow&(1<<uint(c.Weekday())) != 0
	if s.domStar || s.dowStar {
		return dom && dow
	}
	return dom || dow
}

// resolve returns the instants, in order, at which loc's wall clock
// reads c (a civil time held as a UTC value), following the rules in
// next: the instant the clock jumps over c if it never reads c, and the
// first of two only unless the schedule runs every hour.
func (s *schedule) resolve(c time.Time, loc *time.Location) []time.Time {
	var out []time.Time
	var gapEnd time.Time
	// Offsets in use run from -12h to +14h: walk the zones in effect
	// around c and keep each offset that maps back onto c.
	end := c.Add(15 * time.Hour)
	x := c.Add(-15 * time.Hour).In(loc)
	for {
		_, off := x.Zone()
		at := c.Add(-time.Duration(off) * time.Second)
		if wall(at.In(loc)).Equal(c) && (len(out) == 0 || !out[len(out)-1].Equal(at)) {
			out = append(out, at)
		}
		_, zend := x.ZoneBounds()
		if zend.IsZero() || zend.After(end) {
			break
		}
		if wall(zend.Add(-time.Nanosecond).In(loc)).Before(c) && wall(zend.In(loc)).After(c) {
			gapEnd = zend
		}
		x = zend.In(loc)
	}
	if len(out) == 0 && !gapEnd.IsZero() {
		return []time.Time{gapEnd}
	}
	if len(out) == 2 && out[1].Before(out[0]) {
		out[0], out[1] = out[1], out[0]
	}
	if len(out) > 1 && !s.everyHour {
		out = out[:1]
	}
	return out
}

// wall returns t's wall-clock reading as a UTC value.
func wall(t time.Time) time.Time {
	y, mo, d := t.Date()
	h, mi, sec := t.Clock()
	return time.Date(y, mo, d, h, mi, sec, t.Nanosecond(), time.UTC)
}
