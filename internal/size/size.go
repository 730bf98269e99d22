// Package size reads the byte sizes that options take (max_size,
// max_message_size, max_datagram, ...), so that every option accepts the
// same forms.
package size

import (
	"fmt"

	"github.com/dustin/go-humanize"
)

// Parse reads a size such as "65536", "64kb", "8KiB" or "1.5 MB": a
// number, with or without a unit in any case, where kB, MB, GB... are
// powers of 1000 and KiB, MiB, GiB... powers of 1024. A size over max is
// an error that names the limit.
func Parse(s string, max int64) (int64, error) {
	n, err := humanize.ParseBytes(s)
	if err != nil {
		return 0, err
	}
	if n > uint64(max) {
		return 0, fmt.Errorf("size %s is larger than %s", s, Format(max))
	}
	return int64(n), nil
}

// Format writes n in the largest binary unit that divides it: 1GiB,
// 16MiB, 65507B.
func Format(n int64) string {
	for _, u := range []struct {
		name string
		size int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.size && n%u.size == 0 {
			return fmt.Sprintf("%d%s", n/u.size, u.name)
		}
	}
	return fmt.Sprintf("%dB", n)
}
