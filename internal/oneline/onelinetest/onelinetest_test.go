package onelinetest

import "testing"

func TestProblem(t *testing.T) {
	for _, tc := range []struct {
		out  string
		tabs bool
		want string
	}{
		{"one line\ttab ✓\n", true, ""},
		{"one line\ttab\n", false, "a raw U+0009"},
		{"no newline", true, "no final newline"},
		{"two\nlines\n", true, "a raw U+000A"},
		{"esc \x1b[31m\n", true, "a raw U+001B"},
		{"del \x7f\n", true, "a raw U+007F"},
		{"csi \u009b\n", true, "a raw U+009B"},
		{"sep \u2028\n", true, "a raw U+2028"},
		{"latin1 caf\xe9\n", true, "bytes that are not UTF-8"},
	} {
		if got := Problem(tc.out, tc.tabs); got != tc.want {
			t.Errorf("Problem(%q, %v) = %q, want %q", tc.out, tc.tabs, got, tc.want)
		}
	}
}
