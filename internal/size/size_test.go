package size

import (
	"math"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]int64{
		"100": 100, "1KB": 1000, "1kb": 1000, "1KiB": 1024, "8k": 8000, "10MiB": 10 << 20,
		"1.5mb": 1500000, "2GiB": 2 << 30, "3 MB": 3000000, "1,000": 1000, "1GiB": 1 << 30,
	} {
		got, err := Parse(in, math.MaxInt64)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MB", "10XB", "-5", "1e400", "1 parsec"} {
		if n, err := Parse(in, math.MaxInt64); err == nil {
			t.Errorf("Parse(%q) accepted as %d", in, n)
		}
	}
	if _, err := Parse("99EiB", math.MaxInt64); err == nil {
		t.Error("a size beyond int64 accepted")
	}
}

func TestParseLimit(t *testing.T) {
	if n, err := Parse("1GiB", 1<<30); err != nil || n != 1<<30 {
		t.Errorf("the limit itself: %d, %v", n, err)
	}
	_, err := Parse("1.5GiB", 1<<30)
	if err == nil || err.Error() != "size 1.5GiB is larger than 1GiB" {
		t.Errorf("over the limit: %v", err)
	}
	if _, err := Parse("65508", 65507); err == nil || !strings.HasSuffix(err.Error(), "larger than 65507B") {
		t.Errorf("over a limit in bytes: %v", err)
	}
}

func TestFormat(t *testing.T) {
	for n, want := range map[int64]string{0: "0B", 512: "512B", 1 << 10: "1KiB", 16 << 20: "16MiB", 1 << 30: "1GiB", 1 << 40: "1TiB", 3 << 39: "1536GiB", 65507: "65507B"} {
		if got := Format(n); got != want {
			t.Errorf("Format(%d) = %q, want %q", n, got, want)
		}
	}
}
