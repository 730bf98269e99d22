package pylog

import (
	"time"

	"github.com/caddy-applog/caddy-applog/module/intake"
)

// Scratch is the storage a receiver reuses from one form-encoded record
// to the next (log_ingest keeps one per pooled request): the fields,
// the text of decoded escapes, the items of the args tuple, the
// formatted message and the attributes. A record decoded with a Scratch
// points into it, so the Scratch must not decode again, nor be released,
// until that record has been submitted (intake.Intake's Submit copies
// whatever it keeps). The zero value is ready to use.
type Scratch struct {
	// MaxMessage bounds the message FromForm renders from msg and args,
	// in bytes: the formatter stops writing there (see FormatLimit).
	// Zero means 1 MiB more than msg and args together.
	MaxMessage int

	fields []Field
	slab   []byte
	items  []Value
	msg    []byte
	attrs  []intake.Attr
}

// maxScratchItems bounds the fields, args and attributes a released
// Scratch keeps room for (a Python record has about 20 fields), and
// maxScratchText the bytes of text.
const (
	maxScratchItems = 256
	maxScratchText  = 64 << 10
)

// ParseForm is the function ParseForm with the fields and decoded text
// stored in s.
func (s *Scratch) ParseForm(raw string, maxFields int) ([]Field, error) {
	d := decoder{slab: s.slab[:0]}
	fields, err := parseForm(raw, maxFields, s.fields, &d)
	if cap(d.slab) > cap(s.slab) {
		s.slab = d.slab
	}
	if cap(fields) > cap(s.fields) {
		s.fields = fields
	}
	return fields, err
}

// FromForm is the function FromForm with the args, message and
// attributes stored in s. fields may be what s.ParseForm returned, or a
// part of it.
func (s *Scratch) FromForm(fields []Field, now time.Time) (intake.Record, error) {
	return fromRecordDict(formDict(fields), now, s)
}

// Release lets go of the last record: it clears every reference s holds
// into it, so that a pooled Scratch keeps nothing alive, and drops
// storage a huge record made large.
func (s *Scratch) Release() {
	clear(s.fields[:cap(s.fields)])
	clear(s.items[:cap(s.items)])
	clear(s.attrs[:cap(s.attrs)])
	if cap(s.fields) > maxScratchItems || cap(s.items) > maxScratchItems || cap(s.attrs) > maxScratchItems {
		s.fields, s.items, s.attrs = nil, nil, nil
	}
	if cap(s.slab) > maxScratchText || cap(s.msg) > maxScratchText {
		s.slab, s.msg = nil, nil
	}
}
