package syslogmsg

import (
	"reflect"
	"testing"
	"time"
	"unicode/utf8"
)

// TestParseInPlace: the same Message as Parse, with its strings in the
// caller's bytes when they are valid UTF-8, and copies when they are not.
func TestParseInPlace(t *testing.T) {
	now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	for _, raw := range []string{
		`<134>1 2026-12-02T00:00:00.123456Z host app 42 ID7 [ex@32473 k="v"] hello world`,
		"<13>Dec  2 00:00:00 host app[7]: bare \xff bytes",
	} {
		b := []byte(raw)
		want, err1 := Parse(b, now, time.UTC)
		got, err2 := ParseInPlace(b, now, time.UTC)
		if err1 != nil || err2 != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("ParseInPlace(%q) = %+v, %v; Parse = %+v, %v", raw, got, err2, want, err1)
		}
		valid := utf8.Valid(b)
		for i := range b {
			b[i] = 'X'
		}
		if changed := got.Message != want.Message; changed != valid {
			t.Errorf("%q: message changed with the buffer: %v, want %v (valid UTF-8: %v)", raw, changed, valid, valid)
		}
	}
}
