package syslogmsg

import (
	"bytes"
	"time"
)

// isRFC5424 reports whether the header after the PRI is RFC 5424's:
// VERSION 1, a space, then NILVALUE or a date. A bare message that
// happens to start with "1 " is left alone.
func (p *parser) isRFC5424() bool {
	b := p.b[p.pos:]
	if len(b) < 4 || b[0] != '1' || b[1] != ' ' {
		return false
	}
	if b[2] == '-' {
		return b[3] == ' '
	}
	return len(b) >= 7 && isDigit(b[2]) && isDigit(b[3]) && isDigit(b[4]) && isDigit(b[5]) && b[6] == '-'
}

// rfc5424 reads the header after "<PRI>1 ", then the message.
func (p *parser) rfc5424(m *Message) error {
	p.pos += 2
	if err := p.timestamp5424(m); err != nil {
		return err
	}
	// Names and destinations apart: escape analysis follows a struct
	// as a whole, and the names reach error messages, which would move
	// the Message to the heap.
	names := [...]string{"HOSTNAME", "APP-NAME", "PROCID", "MSGID"}
	dsts := [...]*string{&m.Hostname, &m.AppName, &m.ProcID, &m.MsgID}
	after := "TIMESTAMP"
	for i, name := range names {
		if err := p.space(after); err != nil {
			return err
		}
		v, err := p.field(name)
		if err != nil {
			return err
		}
		*dsts[i], after = v, name
	}
	if err := p.space(after); err != nil {
		return err
	}
	if err := p.structuredData(m); err != nil {
		return err
	}
	if p.pos == len(p.b) {
		return nil
	}
	if err := p.space("STRUCTURED-DATA"); err != nil {
		return err
	}
	if bytes.HasPrefix(p.rest(), []byte("\xef\xbb\xbf")) { // the BOM RFC 5424 allows before MSG
		p.pos += 3
	}
	m.Message = p.str(p.pos, len(p.b))
	return nil
}

// timestamp5424 reads NILVALUE or an RFC 3339 timestamp.
func (p *parser) timestamp5424(m *Message) error {
	if p.b[p.pos] == '-' {
		p.pos++
		return nil
	}
	end := bytes.IndexByte(p.b[p.pos:], ' ')
	if end < 0 {
		end = len(p.b) - p.pos
	}
	t, ok := parseRFC3339(p.b[p.pos:p.pos+end], p.loc)
	if !ok {
		return errAt(p.pos, "invalid TIMESTAMP %s", quote(p.b[p.pos:p.pos+min(end, 40)]))
	}
	m.Timestamp = t
	p.pos += end
	return nil
}

// structuredData reads NILVALUE or SD-ELEMENTs, checking their syntax;
// the text is kept as it came.
func (p *parser) structuredData(m *Message) error {
	b, start := p.b, p.pos
	if start == len(b) {
		return errAt(start, "message ends before STRUCTURED-DATA")
	}
	if b[start] == '-' {
		p.pos++
		return nil
	}
	if b[start] != '[' {
		return errAt(start, "STRUCTURED-DATA must be '-' or start with '['")
	}
	i := start
	for i < len(b) && b[i] == '[' {
		var err error
		if i, err = sdElement(b, i); err != nil {
			return err
		}
	}
	m.StructuredData = p.str(start, i)
	p.pos = i
	return nil
}

// sdElement checks `[SD-ID *(SP PARAM-NAME="PARAM-VALUE")]` at b[i] and
// returns the offset after it.
func sdElement(b []byte, i int) (int, error) {
	i++
	n := sdName(b, i)
	if n == 0 {
		return i, errAt(i, "SD-ID missing or invalid")
	}
	i += n
	for {
		if i == len(b) {
			return i, errAt(i, "SD-ELEMENT not closed by ']'")
		}
		switch b[i] {
		case ']':
			return i + 1, nil
		case ' ':
			i++
		default:
			return i, errAt(i, "unexpected %s in SD-ELEMENT", quote(b[i:i+1]))
		}
		n := sdName(b, i)
		if n == 0 {
			return i, errAt(i, "PARAM-NAME missing or invalid")
		}
		i += n
		if i+1 >= len(b) || b[i] != '=' || b[i+1] != '"' {
			return i, errAt(i, `expected ="PARAM-VALUE" after PARAM-NAME`)
		}
		var err error
		if i, err = sdValue(b, i+2); err != nil {
			return i, err
		}
	}
}

// sdName measures an SD-NAME at b[i]: 1 to 32 printable ASCII bytes but
// '=', space, ']' and '"'. It returns 0 if there is none or it is
// longer.
func sdName(b []byte, i int) int {
	n := 0
	for i+n < len(b) {
		c := b[i+n]
		if c <= ' ' || c >= 0x7f || c == '=' || c == ']' || c == '"' {
			break
		}
		n++
	}
	if n > 32 {
		return 0
	}
	return n
}

// sdValue finds the end of a PARAM-VALUE starting at b[i], after its
// opening quote, and returns the offset after its closing quote. A
// backslash escapes '"', '\' and ']'.
func sdValue(b []byte, i int) (int, error) {
	start := i
	for i < len(b) {
		switch b[i] {
		case '\\':
			if i+1 < len(b) && (b[i+1] == '"' || b[i+1] == '\\' || b[i+1] == ']') {
				i++
			}
		case '"':
			return i + 1, nil
		}
		i++
	}
	return i, errAt(start-1, "PARAM-VALUE not closed by '\"'")
}

// parseRFC3339 reads FULL-DATE "T" FULL-TIME: "2003-10-11T22:14:15Z",
// with up to 9 digits of fractional seconds and a "Z" or "±hh:mm"
// offset. 't' and 'z' are accepted too, as RFC 3339 allows. A time
// without an offset ("2026-12-04T20:22:39", as syslog-ng's loggen
// writes in its legacy format) is in loc, time.Local when nil.
func parseRFC3339(b []byte, loc *time.Location) (time.Time, bool) {
	if len(b) < 19 || b[4] != '-' || b[7] != '-' || b[10] != 'T' && b[10] != 't' || b[13] != ':' || b[16] != ':' {
		return time.Time{}, false
	}
	year, ok1 := digits(b[0:4])
	month, ok2 := digits(b[5:7])
	day, ok3 := digits(b[8:10])
	hour, ok4 := digits(b[11:13])
	minute, ok5 := digits(b[14:16])
	sec, ok6 := digits(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) {
		return time.Time{}, false
	}
	i, nsec := 19, 0
	if i < len(b) && b[i] == '.' {
		i++
		start := i
		for i < len(b) && isDigit(b[i]) {
			if i-start < 9 {
				nsec = nsec*10 + int(b[i]-'0')
			}
			i++
		}
		if i == start || i-start > 9 {
			return time.Time{}, false
		}
		for k := i - start; k < 9; k++ {
			nsec *= 10
		}
	}
	if i == len(b) {
		if loc == nil {
			loc = time.Local
		}
		return validDate(year, month, day, hour, minute, sec, nsec, loc)
	}
	zone, ok := parseOffset(b[i:])
	if !ok {
		return time.Time{}, false
	}
	return validDate(year, month, day, hour, minute, sec, nsec, zone)
}

// parseOffset reads "Z" or "±hh:mm", the whole of b.
func parseOffset(b []byte) (*time.Location, bool) {
	if len(b) == 1 && (b[0] == 'Z' || b[0] == 'z') {
		return time.UTC, true
	}
	if len(b) != 6 || b[0] != '+' && b[0] != '-' || b[3] != ':' {
		return nil, false
	}
	h, ok1 := digits(b[1:3])
	mm, ok2 := digits(b[4:6])
	if !ok1 || !ok2 || h > 23 || mm > 59 {
		return nil, false
	}
	off := (h*60 + mm) * 60
	if b[0] == '-' {
		off = -off
	}
	if off == 0 {
		return time.UTC, true
	}
	return time.FixedZone("", off), true
}

// validDate returns the time if every field is in range for its date.
func validDate(year, month, day, hour, minute, sec, nsec int, loc *time.Location) (time.Time, bool) {
	if month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, loc)
	if t.Day() != day { // February 30th and the like
		return time.Time{}, false
	}
	return t, true
}

// digits reads a fixed-width decimal number.
func digits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
