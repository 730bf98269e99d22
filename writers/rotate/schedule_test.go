package rotate

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the DST cases need these zones on any machine
)

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestScheduleNext(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	newYork := mustLoc(t, "America/New_York")
	santiago := mustLoc(t, "America/Santiago")
	utc := time.UTC
	for _, tc := range []struct {
		name  string
		every string
		loc   *time.Location
		from  string   // RFC 3339
		want  []string // successive firings, RFC 3339
	}{
		{"hourly", "hourly", utc, "2026-11-20T10:17:42Z", []string{"2026-11-20T11:00:00Z", "2026-11-20T12:00:00Z"}},
		{"hourly exactly on a boundary", "hourly", utc, "2026-11-20T11:00:00Z", []string{"2026-11-20T12:00:00Z"}},
		{"daily", "daily", utc, "2026-11-20T23:59:59Z", []string{"2026-11-21T00:00:00Z", "2026-11-22T00:00:00Z"}},
		{"weekly is Sunday midnight", "weekly", utc, "2026-11-18T08:00:00Z", []string{"2026-11-22T00:00:00Z", "2026-11-29T00:00:00Z"}},
		{"monthly from Jan 31", "monthly", utc, "2026-01-31T12:00:00Z", []string{"2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z"}},
		{"monthly over the year end", "@monthly", utc, "2026-12-31T23:59:00Z", []string{"2027-01-01T00:00:00Z"}},
		{"yearly", "yearly", utc, "2026-06-01T00:00:00Z", []string{"2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z"}},
		{"@annually", "@annually", utc, "2026-06-01T00:00:00Z", []string{"2027-01-01T00:00:00Z"}},
		{"31st skips short months", "0 0 31 * *", utc, "2026-01-31T00:00:00Z", []string{"2026-03-31T00:00:00Z", "2026-05-31T00:00:00Z", "2026-07-31T00:00:00Z", "2026-08-31T00:00:00Z"}},
		{"last days of February", "0 0 28,29 2 *", utc, "2026-01-01T00:00:00Z", []string{"2026-02-28T00:00:00Z", "2027-02-28T00:00:00Z", "2028-02-28T00:00:00Z", "2028-02-29T00:00:00Z"}},
		{"29 February only", "0 0 29 2 *", utc, "2026-01-01T00:00:00Z", []string{"2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"}},
		{"every 15 minutes", "*/15 * * * *", utc, "2026-11-20T10:07:00Z", []string{"2026-11-20T10:15:00Z", "2026-11-20T10:30:00Z", "2026-11-20T10:45:00Z", "2026-11-20T11:00:00Z"}},
		{"range with step on weekdays", "30 9-17/4 * * MON-FRI", utc, "2026-11-20T10:00:00Z", []string{"2026-11-20T13:30:00Z", "2026-11-20T17:30:00Z", "2026-11-23T09:30:00Z"}},
		{"list of minutes", "5,35 * * * *", utc, "2026-11-20T10:05:00Z", []string{"2026-11-20T10:35:00Z", "2026-11-20T11:05:00Z"}},
		{"a/n runs to the end", "50/5 * * * *", utc, "2026-11-20T10:00:00Z", []string{"2026-11-20T10:50:00Z", "2026-11-20T10:55:00Z", "2026-11-20T11:50:00Z"}},
		{"day of month or day of week", "0 0 1,15 * MON", utc, "2026-11-30T12:00:00Z", []string{"2026-12-01T00:00:00Z", "2026-12-07T00:00:00Z", "2026-12-14T00:00:00Z", "2026-12-15T00:00:00Z", "2026-12-21T00:00:00Z"}},
		{"starred day of month means and", "0 0 */10 * MON", utc, "2026-01-01T00:00:00Z", []string{"2026-05-11T00:00:00Z", "2026-06-01T00:00:00Z", "2026-08-31T00:00:00Z"}},
		{"Sunday is 0 and 7", "0 12 * * 7", utc, "2026-11-20T00:00:00Z", []string{"2026-11-22T12:00:00Z", "2026-11-29T12:00:00Z"}},
		{"month names", "0 0 1 jan,JUL *", utc, "2026-02-01T00:00:00Z", []string{"2026-07-01T00:00:00Z", "2027-01-01T00:00:00Z"}},
		{"unquoted fields joined", "0  6 * * *", utc, "2026-11-20T07:00:00Z", []string{"2026-11-21T06:00:00Z"}},

		// Local time and DST. Berlin springs forward at 2026-03-29 02:00
		// CET (to 03:00 CEST) and falls back at 2026-10-25 03:00 CEST (to
		// 02:00 CET).
		{"local hourly over spring forward: every real hour", "hourly", berlin, "2026-03-29T00:30:00+01:00", []string{"2026-03-29T01:00:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-29T04:00:00+02:00"}},
		{"local hourly over fall back: every real hour", "hourly", berlin, "2026-10-25T01:30:00+02:00", []string{"2026-10-25T02:00:00+02:00", "2026-10-25T02:00:00+01:00", "2026-10-25T03:00:00+01:00"}},
		{"skipped time fires when the clock jumps", "30 2 * * *", berlin, "2026-03-28T12:00:00+01:00", []string{"2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"}},
		{"repeated time fires once at fixed hours", "30 2 * * *", berlin, "2026-10-24T12:00:00+02:00", []string{"2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"}},
		{"daily over spring forward is 23h", "daily", berlin, "2026-03-28T12:00:00+01:00", []string{"2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00"}},
		{"daily over fall back is 25h", "daily", berlin, "2026-10-24T12:00:00+02:00", []string{"2026-10-25T00:00:00+02:00", "2026-10-26T00:00:00+01:00"}},
		{"half hours over fall back", "*/30 * * * *", newYork, "2026-11-01T00:45:00-04:00", []string{"2026-11-01T01:00:00-04:00", "2026-11-01T01:30:00-04:00", "2026-11-01T01:00:00-05:00", "2026-11-01T01:30:00-05:00", "2026-11-01T02:00:00-05:00"}},
		// Chile springs forward at midnight: 2026-09-06 00:00 does not exist.
		{"missing midnight", "daily", santiago, "2026-09-05T12:00:00-04:00", []string{"2026-09-06T01:00:00-03:00", "2026-09-07T00:00:00-03:00"}},
		// and falls back at midnight: 2026-04-04 23:xx happens twice.
		{"repeated hour before midnight", "0 23 * * *", santiago, "2026-04-04T12:00:00-03:00", []string{"2026-04-04T23:00:00-03:00", "2026-04-05T23:00:00-04:00"}},
		{"local monthly", "monthly", berlin, "2026-03-15T00:00:00+01:00", []string{"2026-04-01T00:00:00+02:00", "2026-05-01T00:00:00+02:00"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := parseSchedule(tc.every)
			if err != nil {
				t.Fatal(err)
			}
			at, err := time.Parse(time.RFC3339, tc.from)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				want, err := time.Parse(time.RFC3339, w)
				if err != nil {
					t.Fatal(err)
				}
				got := s.next(at, tc.loc)
				if !got.Equal(want) {
					t.Fatalf("next(%s) = %s, want %s", at.In(tc.loc), got.In(tc.loc), want.In(tc.loc))
				}
				at = got
			}
		})
	}
}

// TestScheduleMatchesBruteForce checks next against a minute-by-minute
// scan, in UTC and in a zone with DST away from its changes.
func TestScheduleMatchesBruteForce(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	exprs := []string{
		"* * * * *", "*/7 * * * *", "0 */5 * * *", "15 3 * * *", "0 0 * * 1-5", "0 12 1,15 * *",
		"0 0 1,15 * 3", "59 23 31 12 *", "0 0 */3 */2 *", "10-20/3 4,5 * * SUN", "0 9 * 2 *",
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, expr := range exprs {
		s, err := parseSchedule(expr)
		if err != nil {
			t.Fatal(err)
		}
		for range 20 {
			loc := time.UTC
			// Berlin in June or December: no clock change for weeks.
			start := time.Date(2026, time.Month(1+6*rng.IntN(2)), 1+rng.IntN(10), rng.IntN(24), rng.IntN(60), rng.IntN(60), 0, time.UTC)
			if rng.IntN(2) == 0 {
				loc = berlin
				start = start.In(berlin)
			}
			got := s.next(start, loc)
			want := bruteNext(s, start, loc, 40*24*60)
			if want.IsZero() {
				continue // not within the scan; the table covers sparse schedules
			}
			if !got.Equal(want) {
				t.Fatalf("%q next(%s) = %s, brute force %s", expr, start.In(loc), got.In(loc), want.In(loc))
			}
		}
	}
}

func bruteNext(s *schedule, t time.Time, loc *time.Location, minutes int) time.Time {
	c := t.Truncate(time.Minute).Add(time.Minute)
	for range minutes {
		w := c.In(loc)
		if s.minute&(1<<uint(w.Minute())) != 0 && s.hour&(1<<uint(w.Hour())) != 0 &&
			s.month&(1<<uint(w.Month())) != 0 && s.dayMatches(wall(w)) {
			return c
		}
		c = c.Add(time.Minute)
	}
	return time.Time{}
}

func TestParseScheduleErrors(t *testing.T) {
	for every, want := range map[string]string{
		"fortnightly":     "5 cron fields",
		"@fortnightly":    "unknown schedule",
		"* * * *":         "got 4 fields",
		"61 * * * *":      "61 out of range 0-59",
		"* 24 * * *":      "24 out of range 0-23",
		"* * 0 * *":       "0 out of range 1-31",
		"* * * 13 *":      "13 out of range 1-12",
		"* * * * 8":       "8 out of range 0-7",
		"5-1 * * * *":     "goes backwards",
		"*/0 * * * *":     "bad step",
		"MON * * * *":     `bad value "MON"`,
		"0 0 30 2 *":      "never fires",
		"0 0 31 4,6,9 *":  "never fires",
		"1,,2 * * * *":    `bad value ""`,
		"* * * JANUARY *": `bad value "JANUARY"`,
	} {
		_, err := parseSchedule(every)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseSchedule(%q) = %v, want an error containing %q", every, err, want)
		}
	}
}
