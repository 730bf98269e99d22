package rotate

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/caddy-applog/caddy-applog/internal/entrytmpl"
)

// A pathTemplate is a file name with placeholders that each entry fills
// from its fields (internal/entrytmpl): `/var/log/applog/{app}/{facility}.log`,
// `/srv/log/{request.host}.log`. Every value becomes part of one path
// component: it is sanitised (see appendSanitized), so an entry can never
// name a file outside the template's folders, a hidden file, or an empty
// component.
type pathTemplate struct {
	raw    string // absolute and clean, placeholders included
	prefix string // the folder a relative name is in, taken literally
	tmpl   *entrytmpl.Template
	dir    string // the deepest folder of raw without a placeholder
}

// maxValueLen bounds the bytes one value adds to a file name, leaving
// room in the 255 bytes of a name for the rest and the backup suffixes.
const maxValueLen = 100

// hasPlaceholder reports whether a file name is a template.
func hasPlaceholder(s string) bool { return entrytmpl.HasPlaceholder(s) }

// parseTemplate parses a file name with placeholders `{path}` or
// `{path:default}` (the default is used when the entry has no such field
// or an empty one), in folder dir: "" if name is absolute, else the
// absolute folder it is relative to, taken literally, braces and all.
func parseTemplate(dir, name string) (*pathTemplate, error) {
	name = filepath.Clean(name)
	if dir != "" {
		dir = filepath.Clean(dir) + string(filepath.Separator)
	}
	path := dir + name
	tmpl, err := entrytmpl.Parse(name, func(def string) error {
		if def == "" || strings.ContainsAny(def, `/\`) || def == "." || def == ".." {
			return errors.New("the default must be a file name part, without '/'")
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	static := name[:strings.IndexByte(name, '{')]
	return &pathTemplate{
		raw:    path,
		prefix: dir,
		tmpl:   tmpl,
		dir:    filepath.Clean(dir + static[:strings.LastIndexByte(static, filepath.Separator)+1]),
	}, nil
}

// resolve appends to dst the file name of the entry p. If it cannot be
// placed (not a JSON object, a field missing without a default, a name
// too long), it returns why instead.
func (t *pathTemplate) resolve(dst, p []byte) ([]byte, string) {
	start := len(dst)
	dst = append(dst, t.prefix...)
	dst, err := t.tmpl.Append(dst, p, appendSanitized)
	if err != nil {
		return dst[:start], err.Error()
	}
	// Each value is bounded, but several in one component could still
	// make a name longer than file systems take.
	name := dst[start:]
	for len(name) > 0 {
		i := bytes.IndexByte(name, filepath.Separator)
		if i < 0 {
			i = len(name)
		}
		if i > 255-len(".2006-01-02T15-04-05_001.zst.tmp") {
			return dst[:start], "a file name from the template is too long"
		}
		if i == len(name) {
			break
		}
		name = name[i+1:]
	}
	return dst, ""
}

// appendSanitized appends v as a safe part of a file name: letters,
// digits, '-', '_' and '.', where every other byte (':' of IPv6
// addresses, '%' of zones, '/', spaces...) becomes '_', and a '.' that
// starts the value or follows another '.' becomes '_' too, so a value is
// never "." or "..", never hides a file and never climbs a folder. It
// takes at most maxValueLen bytes of v. A host name is lower-cased.
func appendSanitized(dst, v []byte, host bool) []byte {
	if len(v) > maxValueLen {
		v = v[:maxValueLen]
	}
	prev := byte(0)
	for i, c := range v {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
		case c >= 'A' && c <= 'Z':
			if host {
				c += 'a' - 'A'
			}
		case c == '.' && i > 0 && prev != '.':
		default:
			c = '_'
		}
		dst = append(dst, c)
		prev = c
	}
	return dst
}
