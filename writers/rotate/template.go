package rotate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
)

// A pathTemplate is a file name with placeholders that each entry fills
// from its fields, read back from the JSON object the entry was encoded
// as: `/var/log/applog/{app}/{facility}.log`, `/srv/log/{request.host}.log`.
// Every value becomes part of one path component: it is sanitised (see
// appendSanitized), so an entry can never name a file outside the
// template's folders, a hidden file, or an empty component.
type pathTemplate struct {
	raw    string // absolute and clean, placeholders included
	parts  []tmplPart
	fields []fieldPath // the distinct fields read
	dir    string      // the deepest folder of raw without a placeholder
}

type tmplPart struct {
	lit    string
	field  int // index into fields; -1 for a literal
	def    string
	hasDef bool
}

// A fieldPath is a dotted path into an entry: `app`, `request.host`.
type fieldPath struct {
	name string
	keys []string
	// fold makes a host name of the value: without the port a client
	// may send in its Host header, and lower-cased, since host names
	// compare without case, so `Example.COM:8443` and `example.com`
	// share a file.
	fold bool
}

// maxTemplateFields bounds the distinct fields of a template, so that a
// lookup keeps its values on the stack.
const maxTemplateFields = 8

// maxValueLen bounds the bytes one value adds to a file name, leaving
// room in the 255 bytes of a name for the rest and the backup suffixes.
const maxValueLen = 100

// hasPlaceholder reports whether a file name is a template.
func hasPlaceholder(s string) bool {
	open := strings.IndexByte(s, '{')
	return open >= 0 && strings.IndexByte(s[open:], '}') > 0
}

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
	t := &pathTemplate{raw: path}
	if dir != "" {
		t.parts = append(t.parts, tmplPart{lit: dir, field: -1})
	}
	rest := name
	for rest != "" {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			t.parts = append(t.parts, tmplPart{lit: rest, field: -1})
			break
		}
		if open > 0 {
			t.parts = append(t.parts, tmplPart{lit: rest[:open], field: -1})
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return nil, fmt.Errorf("%s: unclosed '{'", path)
		}
		inner := rest[open+1 : open+end]
		name, def, hasDef := strings.Cut(inner, ":")
		if name == "http.request.host" {
			// In a site block, the Caddyfile rewrites the shorthand
			// {host} to this before the writer sees it: the site's host,
			// `request.host` in Caddy's access log entries.
			name = "request.host"
		}
		keys := strings.Split(name, ".")
		for _, k := range keys {
			if k == "" || strings.ContainsAny(k, `/\{} `) {
				return nil, fmt.Errorf("%s: placeholder {%s}: want a field of the entry such as {app}, {facility}, {host}, {level} or a dotted path such as {request.host}", path, inner)
			}
		}
		if hasDef && (def == "" || strings.ContainsAny(def, `/\`) || def == "." || def == "..") {
			return nil, fmt.Errorf("%s: placeholder {%s}: the default must be a file name part, without '/'", path, inner)
		}
		idx := -1
		for i, f := range t.fields {
			if f.name == name {
				idx = i
			}
		}
		if idx < 0 {
			if len(t.fields) == maxTemplateFields {
				return nil, fmt.Errorf("%s: more than %d different fields", path, maxTemplateFields)
			}
			idx = len(t.fields)
			t.fields = append(t.fields, fieldPath{name: name, keys: keys, fold: keys[len(keys)-1] == "host"})
		}
		t.parts = append(t.parts, tmplPart{field: idx, def: def, hasDef: hasDef})
		rest = rest[open+end+1:]
	}
	if len(t.fields) == 0 {
		return nil, fmt.Errorf("%s: no placeholder", path)
	}
	static := name[:strings.IndexByte(name, '{')]
	t.dir = filepath.Clean(dir + static[:strings.LastIndexByte(static, filepath.Separator)+1])
	return t, nil
}

// resolve appends to dst the file name of the entry p. If it cannot be
// placed (not a JSON object, a field missing without a default, a name
// too long), it returns why instead.
func (t *pathTemplate) resolve(dst, p []byte) ([]byte, string) {
	var vals [maxTemplateFields][]byte
	if !lookupFields(p, t.fields, vals[:len(t.fields)]) {
		return dst, "the entry is not a JSON object (use `format json`, or a format that writes JSON)"
	}
	start := len(dst)
	for _, part := range t.parts {
		if part.field < 0 {
			dst = append(dst, part.lit...)
			continue
		}
		f := &t.fields[part.field]
		v := vals[part.field]
		n := len(dst)
		if f.fold {
			v = hostOnly(v)
		}
		if len(v) > 0 {
			dst = appendSanitized(dst, v, f.fold)
		}
		if len(dst) == n {
			if !part.hasDef {
				return dst[:start], "the entry has no field " + f.name
			}
			dst = appendSanitized(dst, []byte(part.def), false)
		}
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

// hostOnly strips the port from a host: `example.com:8443` and
// `[::1]:8443` give `example.com` and `::1`; a bare IPv6 address, with
// more than one colon, is left whole.
func hostOnly(v []byte) []byte {
	if len(v) > 0 && v[0] == '[' {
		if end := bytes.IndexByte(v, ']'); end > 0 {
			return v[1:end]
		}
		return v
	}
	if i := bytes.LastIndexByte(v, ':'); i >= 0 && bytes.IndexByte(v[:i], ':') < 0 {
		return v[:i]
	}
	return v
}

// appendSanitized appends v as a safe part of a file name: letters,
// digits, '-', '_' and '.', where every other byte (':' of IPv6
// addresses, '%' of zones, '/', spaces...) becomes '_', and a '.' that
// starts the value or follows another '.' becomes '_' too, so a value is
// never "." or "..", never hides a file and never climbs a folder. It
// takes at most maxValueLen bytes of v.
func appendSanitized(dst, v []byte, fold bool) []byte {
	if len(v) > maxValueLen {
		v = v[:maxValueLen]
	}
	prev := byte(0)
	for i, c := range v {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
		case c >= 'A' && c <= 'Z':
			if fold {
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

// lookupFields fills vals[i] with the value of fields[i] in the JSON
// object p (as written by Caddy's json encoder: one object per entry),
// without decoding the rest: it only scans over the other values. Only
// strings, numbers and booleans count as values. It reports false when p
// is not a well-formed JSON object as far as it had to read.
func lookupFields(p []byte, fields []fieldPath, vals [][]byte) bool {
	want := uint32(1)<<len(fields) - 1
	_, ok := scanObject(p, skipSpace(p, 0), 0, fields, vals, want, &want)
	return ok
}

// scanObject scans the object at p[i] for the fields in mask whose key
// at depth it holds; left holds the fields still to find, so that the
// scan stops once every one is found. It returns the index past the
// object (or where it stopped).
func scanObject(p []byte, i, depth int, fields []fieldPath, vals [][]byte, mask uint32, left *uint32) (int, bool) {
	if i >= len(p) || p[i] != '{' {
		return i, false
	}
	i++
	for {
		i = skipSpace(p, i)
		if i >= len(p) {
			return i, false
		}
		if p[i] == '}' {
			return i + 1, true
		}
		if p[i] != '"' {
			return i, false
		}
		keyEnd, keyEsc := scanString(p, i)
		if keyEnd < 0 {
			return i, false
		}
		key := p[i+1 : keyEnd-1]
		i = skipSpace(p, keyEnd)
		if i >= len(p) || p[i] != ':' {
			return i, false
		}
		i = skipSpace(p, i+1)
		if i >= len(p) {
			return i, false
		}
		var leaf, deeper uint32
		if !keyEsc {
			for j := range fields {
				bit := uint32(1) << j
				if mask&bit == 0 || *left&bit == 0 || fields[j].keys[depth] != string(key) {
					continue
				}
				if len(fields[j].keys) == depth+1 {
					leaf |= bit
				} else {
					deeper |= bit
				}
			}
		}
		var next int
		switch {
		case deeper != 0 && p[i] == '{':
			var ok bool
			if next, ok = scanObject(p, i, depth+1, fields, vals, deeper, left); !ok {
				return next, false
			}
		case leaf != 0:
			v, end := scalar(p, i)
			if end < 0 {
				return i, false
			}
			for j := range fields {
				if leaf&(1<<j) != 0 {
					vals[j] = v
					*left &^= 1 << j
				}
			}
			next = end
		default:
			if next = skipValue(p, i); next < 0 {
				return i, false
			}
		}
		if *left == 0 {
			return next, true
		}
		i = skipSpace(p, next)
		if i >= len(p) {
			return i, false
		}
		switch p[i] {
		case ',':
			i++
		case '}':
			return i + 1, true
		default:
			return i, false
		}
	}
}

// scalar returns the value at p[i] if it is a string (unescaped), a
// number or a boolean, nil for null, objects and arrays, and the index
// past it (-1 if it does not end).
func scalar(p []byte, i int) ([]byte, int) {
	end := skipValue(p, i)
	if end < 0 {
		return nil, -1
	}
	switch c := p[i]; {
	case c == '"':
		_, esc := scanString(p, i)
		if !esc {
			return p[i+1 : end-1], end
		}
		var s string
		if json.Unmarshal(p[i:end], &s) != nil {
			return nil, -1
		}
		return []byte(s), end
	case c == '-' || c >= '0' && c <= '9' || c == 't' || c == 'f':
		return p[i:end], end
	}
	return nil, end
}
