// Package entrytmpl fills templates such as `/var/log/{app}/{facility}.log`
// or `logs.{app}` from the fields of a log entry, read from the JSON object
// the entry was encoded as without decoding the rest of it. The rotate
// writer names files with it and the kafka writer topics and keys; each
// decides how a value is written (a safe file name part, a topic name,
// raw key bytes).
package entrytmpl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// A Template is text with placeholders `{path}` or `{path:default}`,
// where path is a field of the entry or a dotted path into it (`app`,
// `request.host`), and the default is used when the entry has no such
// field or an empty one.
type Template struct {
	parts  []part
	fields []field // the distinct fields read
}

type part struct {
	lit    string
	field  int // index into fields; -1 for a literal
	def    string
	hasDef bool
}

// A field is a dotted path into an entry.
type field struct {
	name string
	keys []string
	// host makes a host name of the value: without the port a client
	// may send in its Host header (the writer lower-cases it, as host
	// names compare without case).
	host bool
}

// MaxFields bounds the distinct fields of a template, so that a lookup
// keeps its values on the stack.
const MaxFields = 8

// ErrNotObject is why an entry that is not a JSON object cannot fill a
// template.
var ErrNotObject = errors.New("the entry is not a JSON object (use `format json`, or a format that writes JSON)")

// HasPlaceholder reports whether s is a template rather than plain text.
func HasPlaceholder(s string) bool {
	open := strings.IndexByte(s, '{')
	return open >= 0 && strings.IndexByte(s[open:], '}') > 0
}

// Parse parses s. checkDefault, if not nil, says why a placeholder's
// default cannot be used (it is written as it is, not as a value).
// Errors say which placeholder is wrong, not where s came from.
func Parse(s string, checkDefault func(def string) error) (*Template, error) {
	t := &Template{}
	rest := s
	for rest != "" {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			t.parts = append(t.parts, part{lit: rest, field: -1})
			break
		}
		if open > 0 {
			t.parts = append(t.parts, part{lit: rest[:open], field: -1})
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return nil, errors.New("unclosed '{'")
		}
		inner := rest[open+1 : open+end]
		name, def, hasDef := strings.Cut(inner, ":")
		if name == "http.request.host" {
			// In a site block, the Caddyfile rewrites the shorthand
			// {host} to this before a module sees it: the site's host,
			// `request.host` in Caddy's access log entries.
			name = "request.host"
		}
		keys := strings.Split(name, ".")
		for _, k := range keys {
			if k == "" || strings.ContainsAny(k, `/\{} `) {
				return nil, fmt.Errorf("placeholder {%s}: want a field of the entry such as {app}, {facility}, {host}, {level} or a dotted path such as {request.host}", inner)
			}
		}
		if hasDef && checkDefault != nil {
			if err := checkDefault(def); err != nil {
				return nil, fmt.Errorf("placeholder {%s}: %w", inner, err)
			}
		}
		idx := -1
		for i, f := range t.fields {
			if f.name == name {
				idx = i
			}
		}
		if idx < 0 {
			if len(t.fields) == MaxFields {
				return nil, fmt.Errorf("more than %d different fields", MaxFields)
			}
			idx = len(t.fields)
			t.fields = append(t.fields, field{name: name, keys: keys, host: keys[len(keys)-1] == "host"})
		}
		t.parts = append(t.parts, part{field: idx, def: def, hasDef: hasDef})
		rest = rest[open+end+1:]
	}
	if len(t.fields) == 0 {
		return nil, errors.New("no placeholder")
	}
	return t, nil
}

// Fields returns the names of the fields the template reads, in the
// order they first appear.
func (t *Template) Fields() []string {
	names := make([]string, len(t.fields))
	for i, f := range t.fields {
		names[i] = f.name
	}
	return names
}

// A Writer appends the value v of a field to dst as the template's user
// writes values (sanitised for a file name, checked for a topic, raw);
// host says the field is a host name, already without its port.
// Appending nothing counts as an empty value: the default takes its
// place.
type Writer func(dst, v []byte, host bool) []byte

// Append appends to dst the template filled from the entry p, each value
// and default written by w. If it cannot be filled (p is not a JSON
// object, or a field is missing or empty and has no default), it returns
// dst unchanged and why.
func (t *Template) Append(dst, p []byte, w Writer) ([]byte, error) {
	var vals [MaxFields][]byte
	if !lookupFields(p, t.fields, vals[:len(t.fields)]) {
		return dst, ErrNotObject
	}
	start := len(dst)
	for _, pt := range t.parts {
		if pt.field < 0 {
			dst = append(dst, pt.lit...)
			continue
		}
		f := &t.fields[pt.field]
		v := vals[pt.field]
		n := len(dst)
		if f.host {
			v = HostOnly(v)
		}
		if len(v) > 0 {
			dst = w(dst, v, f.host)
		}
		if len(dst) == n {
			if !pt.hasDef {
				return dst[:start], MissingField(f.name)
			}
			dst = w(dst, []byte(pt.def), false)
		}
	}
	return dst, nil
}

// MissingField is why an entry without the field, and no default for it,
// cannot fill a template.
type MissingField string

func (m MissingField) Error() string { return "the entry has no field " + string(m) }

// HostOnly strips the port from a host: `example.com:8443` and
// `[::1]:8443` give `example.com` and `::1`; a bare IPv6 address, with
// more than one colon, is left whole.
func HostOnly(v []byte) []byte {
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

// Lookup returns the value of the top-level field name in the JSON
// object p (nil if it has none, or a null, object or array), and false
// if p is not a JSON object as far as it had to read.
func Lookup(p []byte, name string) ([]byte, bool) {
	var v [1][]byte
	ok := lookupFields(p, []field{{name: name, keys: []string{name}}}, v[:])
	return v[0], ok
}

// lookupFields fills vals[i] with the value of fields[i] in the JSON
// object p (as written by Caddy's json encoder: one object per entry),
// without decoding the rest: it only scans over the other values. Only
// strings, numbers and booleans count as values. It reports false when p
// is not a well-formed JSON object as far as it had to read.
func lookupFields(p []byte, fields []field, vals [][]byte) bool {
	want := uint32(1)<<len(fields) - 1
	_, ok := scanObject(p, skipSpace(p, 0), 0, fields, vals, want, &want)
	return ok
}

// scanObject scans the object at p[i] for the fields in mask whose key
// at depth it holds; left holds the fields still to find, so that the
// scan stops once every one is found. It returns the index past the
// object (or where it stopped).
func scanObject(p []byte, i, depth int, fields []field, vals [][]byte, mask uint32, left *uint32) (int, bool) {
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
