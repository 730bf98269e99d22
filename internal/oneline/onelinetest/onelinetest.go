// Package onelinetest checks, for tests, what package oneline promises of
// an encoded entry: that it is exactly one clean line.
package onelinetest

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// Problem returns what keeps out from being one clean line, or "": out
// must end in its only newline and be valid UTF-8 without a raw control
// character (C0 but tab, and tab too unless tabs; DEL; C1) or line or
// paragraph separator (U+2028, U+2029).
func Problem(out string, tabs bool) string {
	body, ok := strings.CutSuffix(out, "\n")
	if !ok {
		return "no final newline"
	}
	if !utf8.ValidString(body) {
		return "bytes that are not UTF-8"
	}
	for _, r := range body {
		if r < 0x20 && (r != '\t' || !tabs) || r >= 0x7f && r <= 0x9f || r == 0x2028 || r == 0x2029 {
			return fmt.Sprintf("a raw %U", r)
		}
	}
	return ""
}

// Check fails t unless out is one clean line (see Problem).
func Check(t testing.TB, out string, tabs bool) {
	t.Helper()
	if p := Problem(out, tabs); p != "" {
		t.Fatalf("%s in %q", p, out)
	}
}
