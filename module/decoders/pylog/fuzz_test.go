package pylog

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func FuzzParseLiteral(f *testing.F) {
	for _, tc := range literalCases {
		f.Add(tc.in)
	}
	for _, tc := range pythonFormatCases {
		f.Add(tc.args)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseLiteral(s)
		if err != nil {
			return
		}
		if want := strings.Trim(s, " \t\r\n"); v.Raw != want {
			t.Fatalf("Raw = %q, want the input %q", v.Raw, want)
		}
		again, err := ParseLiteral(v.Raw)
		if err != nil || again.Kind != v.Kind || again.Raw != v.Raw {
			t.Fatalf("reading Raw %q again: %v, %v", v.Raw, again.Kind, err)
		}
		checkRaws(t, v, 0)
		v.PyStr()
		v.ASCII()
		v.Truthy()
	})
}

// checkRaws checks that every nested value's Raw is valid text taken
// from its parent's.
func checkRaws(t *testing.T, v Value, depth int) {
	if depth > maxDepth {
		t.Fatalf("nested deeper than %d", maxDepth)
	}
	if v.Kind == KindStr && !utf8.ValidString(v.Str) {
		t.Fatalf("str %q decodes to invalid UTF-8", v.Raw)
	}
	for _, it := range v.Items {
		if !strings.Contains(v.Raw, it.Raw) {
			t.Fatalf("item %q not in %q", it.Raw, v.Raw)
		}
		checkRaws(t, it, depth+1)
	}
	for _, p := range v.Pairs {
		checkRaws(t, p.Key, depth+1)
		checkRaws(t, p.Value, depth+1)
	}
}

func FuzzFormat(f *testing.F) {
	for _, tc := range pythonFormatCases {
		f.Add(tc.msg, tc.args)
	}
	for _, tc := range formatCases {
		f.Add(tc.msg, tc.args)
	}
	f.Fuzz(func(t *testing.T, msg, rawArgs string) {
		args, err := ParseLiteral(rawArgs)
		if err != nil {
			args = Tuple(Str(rawArgs), Int(int64(len(rawArgs))), Float(float64(len(msg))/3))
		}
		out, err := Format(msg, args)
		if err != nil {
			return
		}
		if utf8.ValidString(msg) && !utf8.ValidString(out) {
			t.Fatalf("Format(%q, %s) = %q: invalid UTF-8", msg, args.Raw, out)
		}
		if len(out) > len(msg)+len(args.Raw)+maxGrowth+2*maxWidth+64 {
			t.Fatalf("Format(%q, %s) grew to %d bytes", msg, args.Raw, len(out))
		}
	})
}

// FuzzFormatLimit checks the formatter's budget: whatever msg and args
// ask for, the message is never longer than the limit, is valid text
// when msg is, and is what the unlimited formatter makes, cut.
func FuzzFormatLimit(f *testing.F) {
	for _, tc := range pythonFormatCases {
		f.Add(tc.msg, tc.args, uint16(len(tc.msg)))
	}
	f.Add(strings.Repeat("%65536s", 100), "('x',)", uint16(2100))
	f.Add("%(a)s%(a)s%(a)s%(a)s", "{'a': 'abc'}", uint16(5))
	f.Add("%-*d|", "(9000, 1)", uint16(3))
	f.Fuzz(func(t *testing.T, msg, rawArgs string, limit uint16) {
		args, err := ParseLiteral(rawArgs)
		if err != nil {
			args = Tuple(Str(rawArgs), Int(int64(len(rawArgs))), Float(float64(len(msg))/3))
		}
		n := int(limit) + 1
		out, cut, err := FormatLimit(msg, args, n)
		if err != nil {
			return
		}
		if len(out) > n {
			t.Fatalf("FormatLimit(%q, %s, %d) = %d bytes", msg, args.Raw, n, len(out))
		}
		if utf8.ValidString(msg) && !utf8.ValidString(out) {
			t.Fatalf("FormatLimit(%q, %s, %d) = %q: invalid UTF-8", msg, args.Raw, n, out)
		}
		full, ferr := Format(msg, args)
		switch {
		case ferr == nil && !strings.HasPrefix(full, out):
			t.Fatalf("FormatLimit(%q, %s, %d) = %q, not a prefix of %q", msg, args.Raw, n, out, full)
		case ferr == nil && !cut && out != full:
			t.Fatalf("FormatLimit(%q, %s, %d) = %q uncut, want %q", msg, args.Raw, n, out, full)
		case ferr != nil && !cut:
			t.Fatalf("FormatLimit(%q, %s, %d) = %q uncut, but Format fails: %v", msg, args.Raw, n, out, ferr)
		}
	})
}

func FuzzParseForm(f *testing.F) {
	for _, tc := range formCases {
		f.Add(tc.raw)
	}
	f.Add(typicalForm)
	// One Scratch for every input, as log_ingest reuses one: each input
	// meets the storage earlier ones left, and must decode as fresh.
	var scratch Scratch
	f.Fuzz(func(t *testing.T, raw string) {
		defer scratch.Release()
		now := time.Unix(1763712345, 0)
		fields, err := ParseForm(raw, 50)
		sfields, serr := scratch.ParseForm(raw, 50)
		if fmt.Sprint(err) != fmt.Sprint(serr) || !slices.Equal(fields, sfields) {
			t.Fatalf("with a Scratch: %q, %v; fresh: %q, %v", sfields, serr, fields, err)
		}
		if err != nil {
			return
		}
		rec, err := FromForm(fields, now)
		srec, serr := scratch.FromForm(sfields, now)
		if fmt.Sprint(err) != fmt.Sprint(serr) || !sameRecord(rec, srec) {
			t.Fatalf("with a Scratch: %+v, %v; fresh: %+v, %v", srec, serr, rec, err)
		}
		for _, fl := range fields {
			if !utf8.ValidString(fl.Key) || !utf8.ValidString(fl.Value) {
				t.Fatalf("field %q=%q is not valid UTF-8", fl.Key, fl.Value)
			}
		}
		// Where net/url accepts the form too, both must read the same
		// values for each key, in the same order.
		if q, err := url.ParseQuery(raw); err == nil {
			for key, values := range q {
				var ours []string
				for _, fl := range fields {
					if fl.Key == key {
						ours = append(ours, fl.Value)
					}
				}
				for i := range values {
					values[i] = strings.ToValidUTF8(values[i], "\uFFFD")
				}
				if utf8.ValidString(key) && !slices.Equal(ours, values) {
					t.Fatalf("key %q: ParseForm %q, net/url %q", key, ours, values)
				}
			}
		}
	})
}
