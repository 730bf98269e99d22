package pylog

import (
	"reflect"
	"strings"
	"testing"
)

var formCases = []struct {
	raw     string
	want    []Field
	wantErr string
}{
	{raw: "", want: []Field{}},
	{raw: "b=2&a=1&c=3", want: form("b", "2", "a", "1", "c", "3")},
	{raw: "msg=hello+world%21&args=%28%27x%27%2C%29", want: form("msg", "hello world!", "args", "('x',)")},
	{raw: "a=1&&b=2&", want: form("a", "1", "b", "2")},
	{raw: "flag&k=", want: form("flag", "", "k", "")},
	{raw: "k=a=b", want: form("k", "a=b")},
	{raw: "a=1;b=2", want: form("a", "1;b=2")},
	{raw: "k=%e6%97%a5%E6%9C%AC", want: form("k", "日本")},
	{raw: "k=%ff%fe", want: form("k", "\uFFFD")},
	{raw: "%C3%A9=1", want: form("é", "1")},
	// Raw bytes above 0x7F, as a client that does not urlencode sends.
	{raw: "k=日本&a=b", want: form("k", "日本", "a", "b")},
	{raw: "k=\xff&a=b", want: form("k", "\uFFFD", "a", "b")},
	{raw: "k=a=\xff", want: form("k", "a=\uFFFD")},
	{raw: "é=1", want: form("é", "1")},
	{raw: "\xff=1", wantErr: "not valid UTF-8"},
	{raw: "a=1&\xff", wantErr: "form field 2: key"},
	{raw: "a+b=c+d%26", want: form("a b", "c d&")},
	{raw: "a=1&k=%zz", wantErr: `form field 2: value of "k": invalid escape "%zz"`},
	{raw: "k=%4", wantErr: `invalid escape "%4"`},
	{raw: "%g=1", wantErr: `form field 1: key "%g"`},
	{raw: "%ff=1", wantErr: "not valid UTF-8"},
	{raw: "a&b&c&d&e", wantErr: "more than 4 fields"},
}

func TestParseForm(t *testing.T) {
	for _, tc := range formCases {
		got, err := ParseForm(tc.raw, 4)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseForm(%q) = %v, %v; want error %q", tc.raw, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseForm(%q) = %v, %v; want %v", tc.raw, got, err, tc.want)
		}
	}
}

func TestParseFormMaxFields(t *testing.T) {
	if _, err := ParseForm("a&&&&b", 2); err != nil {
		t.Errorf("empty pieces counted as fields: %v", err)
	}
	if f, err := ParseForm(strings.Repeat("a=1&", 5000), 0); err != nil || len(f) != 5000 {
		t.Errorf("no limit: %d fields, %v", len(f), err)
	}
}

// BenchmarkParseForm reads the form of a typical record with a reused
// Scratch: the scanning and %-decoding alone.
func BenchmarkParseForm(b *testing.B) {
	var s Scratch
	b.ReportAllocs()
	b.SetBytes(int64(len(typicalForm)))
	for b.Loop() {
		if _, err := s.ParseForm(typicalForm, 100); err != nil {
			b.Fatal(err)
		}
	}
}
