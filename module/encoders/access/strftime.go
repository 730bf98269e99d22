package access

import (
	"fmt"
	"time"

	"go.uber.org/zap/buffer"
)

// strfPart is a piece of a compiled strftime pattern: literal text, or
// one conversion (verb).
type strfPart struct {
	lit  string
	verb byte
}

// strftimeVerbs are the conversions of C's strftime in the C locale
// (what httpd's %{format}t calls through apr_strftime), except %Z,
// whose output depends on how APR fills struct tm.
const strftimeVerbs = "aAbBcCdDeFgGhHIjklmMnprRsStTuUVwWxXyYz%"

// parseStrftime compiles a strftime pattern.
func parseStrftime(s string) ([]strfPart, error) {
	var parts []strfPart
	lit := ""
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			lit += s[i : i+1]
			continue
		}
		if i+1 == len(s) {
			return nil, fmt.Errorf("time format %q ends with a lone %%", s)
		}
		i++
		v := s[i]
		if v == '%' {
			lit += "%"
			continue
		}
		if !containsByte(strftimeVerbs, v) {
			return nil, fmt.Errorf("time format %q: unsupported conversion %%%c", s, v)
		}
		if lit != "" {
			parts = append(parts, strfPart{lit: lit})
			lit = ""
		}
		parts = append(parts, strfPart{verb: v})
	}
	if lit != "" {
		parts = append(parts, strfPart{lit: lit})
	}
	return parts, nil
}

func containsByte(s string, c byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return true
		}
	}
	return false
}

// appendStrftime appends t formatted by parts, as glibc's strftime does
// in the C locale.
func appendStrftime(b *buffer.Buffer, parts []strfPart, t time.Time) {
	for _, p := range parts {
		if p.verb == 0 {
			b.AppendString(p.lit)
			continue
		}
		appendVerb(b, p.verb, t)
	}
}

func appendVerb(b *buffer.Buffer, v byte, t time.Time) {
	year, month, day := t.Date()
	hour, min, sec := t.Clock()
	switch v {
	case 'a':
		b.AppendString(t.Weekday().String()[:3])
	case 'A':
		b.AppendString(t.Weekday().String())
	case 'b', 'h':
		b.AppendString(month.String()[:3])
	case 'B':
		b.AppendString(month.String())
	case 'c':
		appendStrftime(b, cFormat, t)
	case 'C':
		append2(b, year/100)
	case 'd':
		append2(b, day)
	case 'D', 'x':
		appendStrftime(b, dFormat, t)
	case 'e':
		appendSpace2(b, day)
	case 'F':
		appendPadded(b, int64(year), 4)
		b.AppendByte('-')
		append2(b, int(month))
		b.AppendByte('-')
		append2(b, day)
	case 'g':
		y, _ := t.ISOWeek()
		append2(b, y%100)
	case 'G':
		y, _ := t.ISOWeek()
		b.AppendInt(int64(y))
	case 'H':
		append2(b, hour)
	case 'I':
		append2(b, hour12(hour))
	case 'j':
		appendPadded(b, int64(t.YearDay()), 3)
	case 'k':
		appendSpace2(b, hour)
	case 'l':
		appendSpace2(b, hour12(hour))
	case 'm':
		append2(b, int(month))
	case 'M':
		append2(b, min)
	case 'n':
		b.AppendByte('\n')
	case 'p':
		if hour < 12 {
			b.AppendString("AM")
		} else {
			b.AppendString("PM")
		}
	case 'r':
		appendStrftime(b, rFormat, t)
	case 'R':
		append2(b, hour)
		b.AppendByte(':')
		append2(b, min)
	case 's':
		b.AppendInt(t.Unix())
	case 'S':
		append2(b, sec)
	case 't':
		b.AppendByte('\t')
	case 'T', 'X':
		append2(b, hour)
		b.AppendByte(':')
		append2(b, min)
		b.AppendByte(':')
		append2(b, sec)
	case 'u':
		wd := int(t.Weekday())
		if wd == 0 {
			wd = 7
		}
		b.AppendInt(int64(wd))
	case 'U':
		append2(b, (t.YearDay()+6-int(t.Weekday()))/7)
	case 'V':
		_, w := t.ISOWeek()
		append2(b, w)
	case 'w':
		b.AppendInt(int64(t.Weekday()))
	case 'W':
		append2(b, (t.YearDay()+6-(int(t.Weekday())+6)%7)/7)
	case 'y':
		append2(b, year%100)
	case 'Y':
		b.AppendInt(int64(year))
	case 'z':
		_, offset := t.Zone()
		appendOffset(b, offset)
	}
}

var (
	cFormat = mustStrftime("%a %b %e %H:%M:%S %Y")
	dFormat = mustStrftime("%m/%d/%y")
	rFormat = mustStrftime("%I:%M:%S %p")
)

func mustStrftime(s string) []strfPart {
	p, err := parseStrftime(s)
	if err != nil {
		panic(err)
	}
	return p
}

func hour12(h int) int {
	if h%12 == 0 {
		return 12
	}
	return h % 12
}

// appendSpace2 appends n (0 to 99) space-padded to two characters.
func appendSpace2(b *buffer.Buffer, n int) {
	if n < 10 {
		b.AppendByte(' ')
		b.AppendByte(byte('0' + n))
		return
	}
	append2(b, n)
}
