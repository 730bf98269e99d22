package access

import (
	"strconv"
	"time"

	"go.uber.org/zap/buffer"
)

// style is the tool whose format syntax and output rules a format
// follows.
type style uint8

const (
	apache style = iota + 1
	gunicorn
)

func (s style) String() string {
	if s == gunicorn {
		return "gunicorn"
	}
	return "apache"
}

// op is what an item of a compiled format writes.
type op uint8

const (
	opLiteral        op = iota + 1
	opClient            // %h %a, gunicorn h
	opPeer              // %{c}a %{c}h
	opRemotePort        // %{remote}p
	opDash              // %l, gunicorn l
	opUser              // %u, gunicorn u
	opTime              // %t %{...}t, gunicorn t
	opRequestLine       // %r, gunicorn r
	opStatus            // %s %>s %<s, gunicorn s
	opBytesCLF          // %b, gunicorn b
	opBytes             // %B, gunicorn B
	opReqHeader         // %{Name}i, gunicorn {name}i
	opRespHeader        // %{Name}o, gunicorn {name}o
	opCookie            // %{name}C
	opField             // %{name}n: a top-level field, e.g. from log_append
	opMicros            // %D %{us}T, gunicorn D
	opMillis            // %{ms}T, gunicorn M
	opSeconds           // %T %{s}T, gunicorn T
	opDecimalSeconds    // gunicorn L
	opMethod            // %m, gunicorn m
	opPath              // %U, gunicorn U
	opQuery             // %q, gunicorn q
	opProto             // %H, gunicorn H
	opHost              // %v %V
	opPID               // %P, gunicorn p
	opReferer           // gunicorn f
	opUserAgent         // gunicorn a
)

// item is one piece of a compiled format.
type item struct {
	op  op
	arg string // literal text, or the header, cookie or field name

	// Apache's time options (opTime).
	tkind tkind
	end   bool // %{end:...}t: the time the request ended, not began
	strf  []strfPart

	// Apache's status conditions: %400,501{User-agent}i logs the
	// header only for those statuses, %!200i for all others.
	conds  []int
	negate bool
}

// tkind is the form of an Apache time item.
type tkind uint8

const (
	tCLF tkind = iota
	tStrftime
	tSec
	tMsec
	tUsec
	tMsecFrac
	tUsecFrac
)

// format is a compiled format string.
type format struct {
	style style
	items []item
}

// timing holds the times and the pid a line needs, computed once per
// entry.
type timing struct {
	end   time.Time // when Caddy logged the entry: the request's end
	begin time.Time // end minus duration: when the request arrived
	pid   string
}

// render appends the line for e, without the line ending.
func (f *format) render(b *buffer.Buffer, e *entry, t *timing) {
	if f.style == gunicorn {
		f.renderGunicorn(b, e, t)
		return
	}
	f.renderApache(b, e, t)
}

// status returns the status the client received: Caddy logs 0 when no
// handler wrote a header, and Go's server then sends 200.
func (e *entry) statusCode() int64 {
	if e.status == 0 {
		return 200
	}
	return e.status
}

// appendCLFTime appends t as "[10/Oct/2000:13:55:36 -0700]", the form
// both Apache's %t and gunicorn's %(t)s write.
func appendCLFTime(b *buffer.Buffer, t time.Time) {
	year, month, day := t.Date()
	hour, min, sec := t.Clock()
	_, offset := t.Zone()
	b.AppendByte('[')
	append2(b, day)
	b.AppendByte('/')
	b.AppendString(month.String()[:3])
	b.AppendByte('/')
	b.AppendInt(int64(year))
	b.AppendByte(':')
	append2(b, hour)
	b.AppendByte(':')
	append2(b, min)
	b.AppendByte(':')
	append2(b, sec)
	b.AppendByte(' ')
	appendOffset(b, offset)
	b.AppendByte(']')
}

// appendOffset appends a UTC offset as +hhmm or -hhmm.
func appendOffset(b *buffer.Buffer, offset int) {
	sign := byte('+')
	if offset < 0 {
		sign, offset = '-', -offset
	}
	b.AppendByte(sign)
	append2(b, offset/3600)
	append2(b, offset%3600/60)
}

// append2 appends n (0 to 99) as two digits.
func append2(b *buffer.Buffer, n int) {
	b.AppendByte(byte('0' + n/10%10))
	b.AppendByte(byte('0' + n%10))
}

// appendPadded appends n zero-padded to width digits.
func appendPadded(b *buffer.Buffer, n int64, width int) {
	var digits [20]byte
	s := strconv.AppendInt(digits[:0], n, 10)
	for i := len(s); i < width; i++ {
		b.AppendByte('0')
	}
	b.Write(s)
}
