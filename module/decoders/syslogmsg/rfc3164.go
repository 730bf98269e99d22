package syslogmsg

import (
	"bytes"
	"time"
)

// rfc3164Timestamp reads the timestamp that makes a message RFC 3164,
// and the space after it: a BSD timestamp "Mmm dd hh:mm:ss" (day padded
// with a space or a zero, or not at all; optionally with fractional
// seconds, or with a year before the time as some network devices
// write), or an RFC 3339 timestamp as rsyslog's RSYSLOG_ForwardFormat
// writes it (without an offset, as syslog-ng's loggen writes it, it is
// in loc). It reports false, consuming nothing, when there is none.
func (p *parser) rfc3164Timestamp(m *Message, now time.Time, loc *time.Location) bool {
	b := p.b[p.pos:]
	end := 0
	var t time.Time
	var ok bool
	if len(b) > 0 && isDigit(b[0]) {
		end = bytes.IndexByte(b, ' ')
		if end < 0 {
			end = len(b)
		}
		t, ok = parseRFC3339(b[:end], loc)
	} else {
		t, end, ok = parseBSD(b, now, loc)
	}
	if !ok || end < len(b) && b[end] != ' ' {
		return false
	}
	m.Timestamp = t
	p.pos += end
	if p.pos < len(p.b) {
		p.pos++
	}
	return true
}

// rfc3164 reads what follows the timestamp: an optional hostname, an
// optional tag, the message. The first word is the tag when it ends
// with a colon or a [pid] ("sshd[12]:", "app:", "app[3]"), the hostname
// otherwise; the word after a hostname is the tag, with or without a
// colon, as rsyslog and syslog-ng read it: rsyslog forwards a message
// that came without a PROCID as "<13>Dec  4 20:24:01 vm webapp text".
func (p *parser) rfc3164(m *Message) {
	if !p.tag(m, tagMarked) {
		// Not a tag, so a hostname; then perhaps a tag.
		end := bytes.IndexByte(p.b[p.pos:], ' ')
		if end > 0 && end <= maxField {
			m.Hostname = p.str(p.pos, p.pos+end)
			p.pos += end + 1
			p.tag(m, tagLoose)
		}
	}
	m.Message = p.str(p.pos, len(p.b))
}

// hasHeader reports whether b starts with <PRI> and a header that syslog
// daemons write: RFC 5424's, or an RFC 3164 timestamp. Python's
// SysLogHandler writes none.
func hasHeader(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	_, n, err := parsePRI(b)
	if err != nil {
		return false
	}
	p := parser{b: b, pos: n}
	if p.isRFC5424() {
		return true
	}
	var m Message
	return p.rfc3164Timestamp(&m, time.Now(), time.UTC)
}

// parseBSD reads "Mmm dd hh:mm:ss" at the start of b and returns the
// time and the length read. The year is guessed from now (see
// guessYear); the zone is loc.
func parseBSD(b []byte, now time.Time, loc *time.Location) (time.Time, int, bool) {
	if len(b) < 14 || b[3] != ' ' {
		return time.Time{}, 0, false
	}
	month := monthOf(b[:3])
	if month == 0 {
		return time.Time{}, 0, false
	}
	i := 4
	if b[i] == ' ' { // "Jan  2"
		i++
	}
	day, n := leadingDigits(b[i:], 2)
	if n == 0 || i+n >= len(b) || b[i+n] != ' ' {
		return time.Time{}, 0, false
	}
	i += n + 1
	year := 0
	if year4, n := leadingDigits(b[i:], 4); n == 4 && i+4 < len(b) && b[i+4] == ' ' {
		year = year4 // "Jan  2 2006 15:04:05"
		i += 5
	}
	if len(b) < i+8 || b[i+2] != ':' || b[i+5] != ':' {
		return time.Time{}, 0, false
	}
	hour, ok1 := digits(b[i : i+2])
	minute, ok2 := digits(b[i+3 : i+5])
	sec, ok3 := digits(b[i+6 : i+8])
	if !ok1 || !ok2 || !ok3 {
		return time.Time{}, 0, false
	}
	i += 8
	nsec := 0
	if i+1 < len(b) && b[i] == '.' && isDigit(b[i+1]) {
		frac, n := leadingDigits(b[i+1:], 9)
		for k := n; k < 9; k++ {
			frac *= 10
		}
		nsec = frac
		i += 1 + n
		for i < len(b) && isDigit(b[i]) {
			i++ // digits beyond nanoseconds
		}
	}
	if loc == nil {
		loc = time.Local
	}
	if year != 0 {
		t, ok := validDate(year, month, day, hour, minute, sec, nsec, loc)
		return t, i, ok
	}
	return guessYear(now.In(loc).Year(), month, day, hour, minute, sec, nsec, now, loc, i)
}

// maxAhead is how far in the future a BSD timestamp may be with the
// current year before it is taken for last year's: clocks disagree, but
// not by months.
const maxAhead = 31 * 24 * time.Hour

// guessYear completes a BSD timestamp with the latest of next year,
// this year and last year that puts it at most maxAhead after now: a
// message of December 31st read on January 1st is last year's, one of
// January 1st read a minute before midnight on December 31st is next
// year's.
func guessYear(year, month, day, hour, minute, sec, nsec int, now time.Time, loc *time.Location, n int) (time.Time, int, bool) {
	for _, y := range [...]int{year + 1, year, year - 1} {
		t, ok := validDate(y, month, day, hour, minute, sec, nsec, loc)
		if ok && t.Sub(now) <= maxAhead {
			return t, n, true
		}
	}
	// February 29th of a year that is not a leap year, or a clock far
	// ahead: use this year if the date exists in it.
	t, ok := validDate(year, month, day, hour, minute, sec, nsec, loc)
	return t, n, ok
}

// monthOf reads an English month abbreviation, in any case.
func monthOf(b []byte) int {
	var w [3]byte
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		w[i] = c
	}
	switch string(w[:]) {
	case "jan":
		return 1
	case "feb":
		return 2
	case "mar":
		return 3
	case "apr":
		return 4
	case "may":
		return 5
	case "jun":
		return 6
	case "jul":
		return 7
	case "aug":
		return 8
	case "sep":
		return 9
	case "oct":
		return 10
	case "nov":
		return 11
	case "dec":
		return 12
	}
	return 0
}

// leadingDigits reads up to max digits at the start of b.
func leadingDigits(b []byte, max int) (int, int) {
	n, v := 0, 0
	for n < len(b) && n < max && isDigit(b[n]) {
		v = v*10 + int(b[n]-'0')
		n++
	}
	return v, n
}
