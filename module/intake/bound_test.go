package intake

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// encode writes rec as App.emit does, through zap's JSON encoder.
func encode(t testing.TB, rec *Record, truncated bool) string {
	t.Helper()
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	name := AppName + "." + rec.App
	if rec.Facility != "" {
		name += "." + rec.Facility
	}
	fields := rec.AppendFields(nil, truncated, time.Time{})
	buf, err := enc.EncodeEntry(zapcore.Entry{LoggerName: name, Time: rec.Time, Level: ZapLevel(rec.LevelNo), Message: rec.Message}, fields)
	if err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// envelope is the length of rec's entry without its content: what
// encodes the same whatever the sender makes long.
func envelope(t testing.TB, rec *Record, truncated bool) int {
	empty := Record{App: rec.App, Host: rec.Host, Time: rec.Time, LevelNo: rec.LevelNo}
	n := len(encode(t, &empty, truncated))
	if len(rec.Attrs) > 0 {
		n += len(`,"attrs":{}`) - 1 // Size counts a comma after every attribute, the last too
	}
	if rec.Facility != "" {
		n++ // the dot before it in the logger name
	}
	return n
}

func sample() Record {
	return Record{
		Time: time.Unix(1796166959, 430000000), LevelNo: 30, LevelName: "WARNING",
		Logger: "shop.views", Facility: "views", App: "shop", Host: "192.0.2.7",
		Message: "card declined: \"insufficient funds\"\n\tat checkout",
		Attrs: []Attr{
			{Key: "user", Value: JSON(`{"id":42,"roles":["a","b"]}`)},
			{Key: "path", Value: String("/srv/shop/views.py")},
			{Key: "lineno", Value: Int(-42)},
			{Key: "msecs", Value: Float(430.0001)},
			{Key: "huge", Value: Float(-1e300)},
			{Key: "tiny", Value: Float(5e-324)},
			{Key: "nan", Value: Float(math.NaN())},
			{Key: "inf", Value: Float(math.Inf(-1))},
			{Key: "ok", Value: Bool(false)},
			{Key: "exc", Value: Null()},
			{Key: "ctl\x00", Value: String("\x1b[31m\xff€")},
		},
	}
}

// TestSizeIsExact: Size is the entry's length less a constant envelope,
// for every kind of value and escape.
func TestSizeIsExact(t *testing.T) {
	rec := sample()
	got := len(encode(t, &rec, false))
	if want := envelope(t, &rec, false) + rec.Size(); got != want {
		t.Fatalf("entry is %d bytes, envelope + Size = %d:\n%s", got, want, encode(t, &rec, false))
	}
	empty := Record{App: "shop", Host: "192.0.2.7", Time: rec.Time, LevelNo: 30}
	t.Logf("envelope of app shop, host 192.0.2.7, truncated: %d bytes: %s", len(encode(t, &empty, true)), encode(t, &empty, true))
}

func TestBoundFits(t *testing.T) {
	rec := sample()
	before := encode(t, &rec, false)
	if rec.Bound(rec.Size()) {
		t.Fatal("a record that fits was cut")
	}
	if encode(t, &rec, false) != before {
		t.Fatal("a record that fits was changed")
	}
	if n := testing.AllocsPerRun(100, func() { rec.Bound(rec.Size()) }); n != 0 {
		t.Fatalf("Bound allocates %v times for a record that fits", n)
	}
}

func TestBoundCuts(t *testing.T) {
	for _, limit := range []int{0, 1, 7, 30, 60, 100, 150, 200, 250, 300, 400} {
		rec := sample()
		size := rec.Size()
		if !rec.Bound(limit) && limit > 0 {
			t.Fatalf("limit %d: not cut", limit)
		}
		if limit > 0 && rec.Size() > limit {
			t.Fatalf("limit %d: size %d after Bound", limit, rec.Size())
		}
		if limit > 0 && limit < size {
			got := len(encode(t, &rec, true)) - envelope(t, &rec, true)
			if got > limit {
				t.Fatalf("limit %d: content of %d bytes", limit, got)
			}
		}
	}
	// The message comes before the attributes; a JSON document that does
	// not fit is cut into a string.
	rec := Record{Message: strings.Repeat("m", 100), Attrs: []Attr{{Key: "a", Value: JSON(`[1,2,3,4,5,6,7,8,9]`)}, {Key: "b", Value: Int(1)}}}
	if !rec.Bound(100+1+4+2+5) || len(rec.Message) != 100 || len(rec.Attrs) != 1 || rec.Attrs[0].Value != String(`[1,2,`) {
		t.Fatalf("got %+v", rec)
	}
	// A huge logger name leaves the message its room.
	rec = Record{Logger: strings.Repeat("L", 10000), Message: "hello"}
	if !rec.Bound(300) || len(rec.Logger) != 256 || rec.Message != "hello" {
		t.Fatalf("logger %d bytes, message %q", len(rec.Logger), rec.Message)
	}
	// Never half a character.
	rec = Record{Message: "ab€cd"}
	if !rec.Bound(4) || rec.Message != "ab" {
		t.Fatalf("got %q", rec.Message)
	}
}

func TestLimit(t *testing.T) {
	for _, tc := range []struct{ wire, max, want int }{
		{0, 65536, 65536},
		{0, 0, 0},
		{10, 65536, MinRecordBound},
		{1000, 65536, 3000},
		{100000, 65536, 65536},
		{100000, 0, 300000},
	} {
		r := Record{Wire: tc.wire}
		if got := r.Limit(tc.max); got != tc.want {
			t.Errorf("Limit(wire %d, max %d) = %d, want %d", tc.wire, tc.max, got, tc.want)
		}
	}
}

func TestFloatLen(t *testing.T) {
	for _, f := range []float64{0, math.Copysign(0, -1), 1, -1, 0.5, 1.25, 123, 1e21, 1e300, -1e300, 5e-324, 1.7976931348623157e308, 430.0001, 1e-7, 0.1, 123456789.125} {
		if got, want := floatLen(f), len(strconv.FormatFloat(f, 'f', -1, 64)); got != want {
			t.Errorf("floatLen(%g) = %d, want %d", f, got, want)
		}
	}
}

// FuzzBound: whatever a record holds, once bound to a limit its entry's
// content (the entry less its fixed envelope) is at most the limit, its
// strings are prefixes of what they were, and valid UTF-8 stays valid.
func FuzzBound(f *testing.F) {
	f.Add("msg", "logger", "INFO", "fac", "key", "value", 1.5, int64(7), uint16(100))
	f.Add(strings.Repeat("\x00\"\\\n\xff€", 50), "a.b", "WARNING", "a.b", "k\x01", "v\x7f", 1e300, int64(math.MinInt64), uint16(40))
	f.Fuzz(func(t *testing.T, msg, logger, level, facility, key, val string, fl float64, i int64, lim uint16) {
		doc, _ := json.Marshal([]any{val, i, key})
		rec := Record{
			Time: time.Unix(1796166959, 0), LevelNo: 20, App: "app", Host: "::1",
			Message: msg, Logger: logger, LevelName: level, Facility: facility,
			Attrs: []Attr{
				{Key: key, Value: String(val)},
				{Key: "doc", Value: JSON(string(doc))},
				{Key: "f", Value: Float(fl)},
				{Key: val, Value: Int(i)},
				{Key: "b", Value: Bool(i&1 == 0)},
				{Key: "", Value: Null()},
			},
		}
		orig := rec
		origAttrs := append([]Attr(nil), rec.Attrs...)
		if got, want := len(encode(t, &rec, false)), envelope(t, &rec, false)+rec.Size(); got != want {
			t.Fatalf("Size is off: entry %d bytes, envelope + Size %d", got, want)
		}
		limit := int(lim)%4096 + 1
		size := rec.Size()
		cut := rec.Bound(limit)
		if cut != (size > limit) {
			t.Fatalf("Bound = %v for size %d, limit %d", cut, size, limit)
		}
		if content := len(encode(t, &rec, cut)) - envelope(t, &rec, cut); content > limit {
			t.Fatalf("content of %d bytes over the limit %d", content, limit)
		}
		for _, p := range [][2]string{{rec.Message, orig.Message}, {rec.Logger, orig.Logger}, {rec.LevelName, orig.LevelName}, {rec.Facility, orig.Facility}} {
			if !strings.HasPrefix(p[1], p[0]) {
				t.Fatalf("%q is not a prefix of %q", p[0], p[1])
			}
			if utf8.ValidString(p[1]) && !utf8.ValidString(p[0]) {
				t.Fatalf("cut %q splits a character", p[0])
			}
		}
		for j, a := range rec.Attrs {
			o := origAttrs[j]
			if a.Key != o.Key || a != o && !(a.Value.Kind == KindString && strings.HasPrefix(o.Value.Str, a.Value.Str)) {
				t.Fatalf("attribute %d: %+v from %+v", j, a, o)
			}
		}
	})
}

// BenchmarkBound: what bounding costs a typical record that fits (one
// pass over its strings) and one that does not.
func BenchmarkBound(b *testing.B) {
	b.Run("fits", func(b *testing.B) {
		rec := sample()
		limit := rec.Size()
		b.ReportAllocs()
		for b.Loop() {
			rec.Bound(limit)
		}
	})
	b.Run("cut", func(b *testing.B) {
		orig := sample()
		orig.Message = strings.Repeat("m", 10000)
		attrs := orig.Attrs
		b.ReportAllocs()
		for b.Loop() {
			rec := orig
			rec.Attrs = append(attrs[:0:0], attrs...)
			rec.Bound(300)
		}
	})
}
