package rotate

import (
	"encoding/json"
	"path/filepath"
)

// hostOf returns the value of the top-level "host" key of a JSON object
// (as written by Caddy's json encoder: one object per entry), without
// decoding the rest: it only scans over the other values. isObject is
// false when p is not a well-formed JSON object up to that key. A host
// that is not a string, or a key spelled with escapes, counts as absent.
func hostOf(p []byte) (host []byte, isObject bool) {
	i := skipSpace(p, 0)
	if i >= len(p) || p[i] != '{' {
		return nil, false
	}
	i++
	for {
		i = skipSpace(p, i)
		if i >= len(p) {
			return nil, false
		}
		if p[i] == '}' {
			return nil, true
		}
		if p[i] != '"' {
			return nil, false
		}
		keyEnd, keyEsc := scanString(p, i)
		if keyEnd < 0 {
			return nil, false
		}
		key := p[i+1 : keyEnd-1]
		i = skipSpace(p, keyEnd)
		if i >= len(p) || p[i] != ':' {
			return nil, false
		}
		i = skipSpace(p, i+1)
		if i >= len(p) {
			return nil, false
		}
		if !keyEsc && string(key) == "host" {
			if p[i] != '"' {
				return nil, true
			}
			end, esc := scanString(p, i)
			if end < 0 {
				return nil, false
			}
			if !esc {
				return p[i+1 : end-1], true
			}
			var s string
			if json.Unmarshal(p[i:end], &s) != nil {
				return nil, false
			}
			return []byte(s), true
		}
		i = skipValue(p, i)
		if i < 0 {
			return nil, false
		}
		i = skipSpace(p, i)
		if i >= len(p) {
			return nil, false
		}
		switch p[i] {
		case ',':
			i++
		case '}':
			return nil, true
		default:
			return nil, false
		}
	}
}

func skipSpace(p []byte, i int) int {
	for i < len(p) && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r') {
		i++
	}
	return i
}

// scanString returns the index just past the string starting at p[i]
// (a '"'), and whether it holds escapes; -1 if it does not end.
func scanString(p []byte, i int) (end int, escaped bool) {
	for j := i + 1; j < len(p); j++ {
		switch p[j] {
		case '\\':
			escaped = true
			j++
		case '"':
			return j + 1, escaped
		}
	}
	return -1, escaped
}

// skipValue returns the index just past the value starting at p[i], -1
// if it does not end. Nested objects and arrays are skipped by counting
// brackets outside strings; scalars run to the next delimiter.
func skipValue(p []byte, i int) int {
	switch p[i] {
	case '"':
		end, _ := scanString(p, i)
		return end
	case '{', '[':
		depth := 0
		for j := i; j < len(p); j++ {
			switch p[j] {
			case '"':
				end, _ := scanString(p, j)
				if end < 0 {
					return -1
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	default:
		j := i
	scalar:
		for ; j < len(p); j++ {
			switch p[j] {
			case ',', '}', ']', ' ', '\t', '\r', '\n':
				break scalar
			}
		}
		if j == i {
			return -1
		}
		return j
	}
}

// maxHostLen bounds a sanitised host name, leaving room in the 255 bytes
// of a file name for the base name, the time and the suffixes.
const maxHostLen = 100

// sanitizeHost turns a host into something safe in a file name: lower
// case letters, digits, '-', '_' and '.', where every other byte
// (':' of IPv6 addresses, '%' of zones, '/', spaces...) becomes '_', and
// a '.' that starts the name or follows another '.' becomes '_' too, so
// the result is never "." or ".." and never hidden. Names are cut at 100
// bytes. It returns "" for an empty host.
func sanitizeHost(h []byte) string {
	if len(h) > maxHostLen {
		h = h[:maxHostLen]
	}
	out := make([]byte, len(h))
	for i, c := range h {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
			out[i] = c
		case c >= 'A' && c <= 'Z':
			out[i] = c + 'a' - 'A'
		case c == '.' && i > 0 && out[i-1] != '.':
			out[i] = c
		default:
			out[i] = '_'
		}
	}
	return string(out)
}

// maxOpenHosts bounds the per_host files kept open; the least recently
// written one is closed (and reopened when needed) beyond it.
const maxOpenHosts = 64

// hostFile returns the live file for entries of host, opening it if
// needed; the main file if the host sanitises to nothing or its file
// cannot be opened (better there than lost).
func (s *sink) hostFile(raw []byte) *logFile {
	if lf := s.byRaw[string(raw)]; lf != nil {
		return lf
	}
	h := sanitizeHost(raw)
	if h == "" {
		return s.main
	}
	lf := s.hosts[h]
	if lf == nil {
		if len(s.hosts) >= maxOpenHosts {
			s.closeIdlestHost()
		}
		m := s.main.set
		set := fileSet{dir: m.dir, name: h + "-" + m.base, base: m.base, host: h, ext: m.ext}
		lf = &logFile{set: set, path: filepath.Join(m.dir, set.liveName()), meter: s.meter}
		if err := s.openLive(lf); err != nil {
			s.logLater("opening per_host file; its entries go to the main file", err)
			return s.main
		}
		s.hosts[h] = lf
	}
	if len(s.byRaw) >= 4*maxOpenHosts {
		clear(s.byRaw)
	}
	s.byRaw[string(raw)] = lf
	return lf
}

func (s *sink) closeIdlestHost() {
	var idlest *logFile
	for _, lf := range s.hosts {
		if idlest == nil || lf.used < idlest.used {
			idlest = lf
		}
	}
	if idlest == nil {
		return
	}
	if err := idlest.flush(); err != nil {
		s.logLater("flushing log file", err)
	}
	idlest.close()
	delete(s.hosts, idlest.set.host)
	clear(s.byRaw)
}
