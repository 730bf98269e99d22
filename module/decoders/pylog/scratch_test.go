package pylog

import (
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddy-applog/caddy-applog/module/intake"
)

// decodeFresh decodes raw as a handler without a Scratch would.
func decodeFresh(raw string, now time.Time) (fields []Field, rec intake.Record, err error) {
	fields, err = ParseForm(raw, 100)
	if err != nil {
		return nil, rec, err
	}
	rec, err = FromForm(fields, now)
	return fields, rec, err
}

// sameRecord compares decoded records, empty attributes equal to none
// (as slices.Equal has it for the fields).
func sameRecord(a, b intake.Record) bool {
	if len(a.Attrs) == 0 && len(b.Attrs) == 0 {
		a.Attrs, b.Attrs = nil, nil
	}
	return reflect.DeepEqual(a, b)
}

// scratchForms are forms that make a reused Scratch grow, shrink back
// and fail halfway: more args than its room, more escaped text than its
// slab, messages longer than the last, records that fail to format or
// to decode.
func scratchForms() []string {
	forms := []string{typicalForm}
	for _, tc := range formCases {
		forms = append(forms, tc.raw)
	}
	record := func(msg, args string, extra ...string) string {
		v := url.Values{"name": {"app"}, "msg": {msg}, "args": {args}, "levelno": {"20"}}
		for i := 0; i+1 < len(extra); i += 2 {
			v.Set(extra[i], extra[i+1])
		}
		return v.Encode()
	}
	many := make([]string, 40)
	for i := range many {
		many[i] = fmt.Sprint(i)
	}
	forms = append(forms,
		record("%s %s", "('a', 'b')"),
		record(strings.Repeat("%s ", 40), "("+strings.Join(many, ", ")+")"),
		record("%s", "('x',)"),
		record("%(user)s did %(what)s", "{'user': 'bob', 'what': 'that'}"),
		record("%s and %s", "('too few',)"),
		record("%d", "('not a number',)"),
		record("%s", "(((1, 2), [3, {4: 5}]),)"),
		record("%s", "(<object at 0x1>, datetime.date(2020, 1, 1))"),
		record("%s", "('"+strings.Repeat("é", 5000)+"',)", "exc_text", strings.Repeat("Traceback ", 2000)),
		record("plain", "()", "extra", "a b&c=d%e"),
		"msg=%zz",
		"msg="+strings.Repeat("%41", 100000),
		record("%s", "('after the huge ones',)"),
	)
	return forms
}

// TestScratchReuse decodes every form with one Scratch, reused as
// log_ingest reuses it (Release after each record), twice over so that
// each form meets storage a different one left behind, and checks that
// every field, record and error is the one fresh decoding gives.
func TestScratchReuse(t *testing.T) {
	now := time.Unix(1763712345, 0)
	forms := scratchForms()
	var s Scratch
	for round := range 2 {
		for i, raw := range forms {
			wantFields, wantRec, wantErr := decodeFresh(raw, now)
			fields, err := s.ParseForm(raw, 100)
			var rec intake.Record
			if err == nil {
				rec, err = s.FromForm(fields, now)
			}
			if fmt.Sprint(err) != fmt.Sprint(wantErr) {
				t.Errorf("round %d, form %d: error %v, want %v", round, i, err, wantErr)
			}
			if err == nil && (!slices.Equal(fields, wantFields) || !sameRecord(rec, wantRec)) {
				t.Errorf("round %d, form %d %.60q:\n got %+v\nwant %+v", round, i, raw, rec, wantRec)
			}
			s.Release()
		}
	}
}

// TestScratchRelease: a released Scratch holds nothing of the last
// record, and lets go of what a huge one made it grow to.
func TestScratchRelease(t *testing.T) {
	var s Scratch
	fields, err := s.ParseForm(typicalForm, 100)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.FromForm(fields, time.Now()); err != nil {
		t.Fatal(err)
	}
	s.Release()
	for _, f := range s.fields[:cap(s.fields)] {
		if f != (Field{}) {
			t.Fatalf("released Scratch still holds field %+v", f)
		}
	}
	for _, a := range s.attrs[:cap(s.attrs)] {
		if a.Key != "" {
			t.Fatalf("released Scratch still holds attribute %q", a.Key)
		}
	}
	for _, v := range s.items[:cap(s.items)] {
		if v.Raw != "" {
			t.Fatalf("released Scratch still holds arg %q", v.Raw)
		}
	}
	if cap(s.fields) == 0 || cap(s.items) == 0 || cap(s.msg) == 0 || cap(s.slab) == 0 {
		t.Fatalf("a typical record's storage was not kept: %d fields, %d items, %d message bytes, %d slab bytes",
			cap(s.fields), cap(s.items), cap(s.msg), cap(s.slab))
	}

	huge := "msg=" + strings.Repeat("%41", 100000) + strings.Repeat("&k=v", 1000)
	if _, err := s.ParseForm(huge, 2000); err != nil {
		t.Fatal(err)
	}
	s.Release()
	if cap(s.fields) != 0 || cap(s.slab) != 0 {
		t.Fatalf("kept %d fields and %d slab bytes after a huge record", cap(s.fields), cap(s.slab))
	}
}

// BenchmarkScratchFromForm is BenchmarkFromForm as log_ingest decodes,
// with one Scratch reused.
func BenchmarkScratchFromForm(b *testing.B) {
	now := time.Now()
	var s Scratch
	b.ReportAllocs()
	b.SetBytes(int64(len(typicalForm)))
	for b.Loop() {
		fields, err := s.ParseForm(typicalForm, 100)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.FromForm(fields, now); err != nil {
			b.Fatal(err)
		}
		s.Release()
	}
}
