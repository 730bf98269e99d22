package otlp

// A JSON entry read in one pass into a small tree of nodes, kept from
// one entry to the next, so that mapping it onto OTLP boxes nothing.
// It reads JSON as encoding/json decodes an entry into a map[string]any
// (which the mapping did before): the same entries are valid, strings
// come out the same (escapes, invalid UTF-8 as U+FFFD byte by byte), an
// object's members are sorted by key and a repeated key keeps its last
// value. internal/entrytmpl's scanner skips values without checking
// them; this one must refuse what encoding/json refuses, as such an
// entry is sent as a line.

import (
	"slices"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

type jsonKind uint8

const (
	jsonNull jsonKind = iota
	jsonFalse
	jsonTrue
	jsonNumber
	jsonString
	jsonObject
	jsonArray
)

// jsonNode is one value. An object's members and an array's elements
// are entryTree.kids[kids : kids+n].
type jsonNode struct {
	kind jsonKind
	// taken: the mapping moved this member elsewhere (a record field, a
	// semantic-convention attribute); it is no longer in its object.
	taken bool
	key   string // the member's key, in an object
	text  string // a string's value, a number's literal
	kids  int32
	n     int32
}

// maxDepth is encoding/json's limit on nesting.
const maxDepth = 10000

// entryTree is the last entry parsed; its strings are slices of the
// entry (one copy of it) unless they had escapes.
type entryTree struct {
	src   string
	nodes []jsonNode
	kids  []int32
	stack []int32 // members of the objects being read
	buf   []byte  // unescaping
	depth int
}

// parse reads data as one JSON object followed by nothing (or by what
// json.Decoder.More takes for the end: space, or a closing bracket).
// The root, when ok, is node 0.
func (t *entryTree) parse(data []byte) bool {
	t.src = string(data)
	t.nodes, t.kids, t.stack, t.depth = t.nodes[:0], t.kids[:0], t.stack[:0], 0
	i := skipSpace(t.src, 0)
	if i >= len(t.src) || t.src[i] != '{' {
		return false
	}
	i, _ = t.value(i)
	if i < 0 {
		return false
	}
	i = skipSpace(t.src, i)
	return i == len(t.src) || t.src[i] == '}' || t.src[i] == ']'
}

func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

// value reads the value at s[i] (not space) into a new node: the index
// past it, -1 if it is not valid, and the node.
func (t *entryTree) value(i int) (int, int32) {
	s := t.src
	idx := int32(len(t.nodes))
	t.nodes = append(t.nodes, jsonNode{})
	switch c := s[i]; {
	case c == '"':
		end, text := t.str(i)
		t.nodes[idx] = jsonNode{kind: jsonString, text: text}
		return end, idx
	case c == '{' || c == '[':
		return t.container(i, idx), idx
	case c == '-' || c >= '0' && c <= '9':
		end := number(s, i)
		if end > 0 {
			t.nodes[idx] = jsonNode{kind: jsonNumber, text: s[i:end]}
		}
		return end, idx
	case strings.HasPrefix(s[i:], "true"):
		t.nodes[idx].kind = jsonTrue
		return i + 4, idx
	case strings.HasPrefix(s[i:], "false"):
		t.nodes[idx].kind = jsonFalse
		return i + 5, idx
	case strings.HasPrefix(s[i:], "null"):
		return i + 4, idx
	}
	return -1, idx
}

// container reads the object or array at s[i] into node idx.
func (t *entryTree) container(i int, idx int32) int {
	s := t.src
	object := s[i] == '{'
	closing := byte(']')
	if object {
		closing = '}'
	}
	if t.depth++; t.depth > maxDepth {
		return -1
	}
	base := len(t.stack)
	i = skipSpace(s, i+1)
	if i < len(s) && s[i] == closing {
		i++
	} else {
		for {
			var key string
			if object {
				if i >= len(s) || s[i] != '"' {
					return -1
				}
				if i, key = t.str(i); i < 0 {
					return -1
				}
				if i = skipSpace(s, i); i >= len(s) || s[i] != ':' {
					return -1
				}
				i = skipSpace(s, i+1)
			}
			if i >= len(s) {
				return -1
			}
			var kid int32
			if i, kid = t.value(i); i < 0 {
				return -1
			}
			t.nodes[kid].key = key
			t.stack = append(t.stack, kid)
			if i = skipSpace(s, i); i >= len(s) {
				return -1
			}
			if s[i] == closing {
				i++
				break
			}
			if s[i] != ',' {
				return -1
			}
			i = skipSpace(s, i+1)
		}
	}
	t.depth--
	kids := t.stack[base:]
	if object {
		kids = t.members(kids)
	}
	t.nodes[idx] = jsonNode{kind: jsonArray, kids: int32(len(t.kids)), n: int32(len(kids))}
	if object {
		t.nodes[idx].kind = jsonObject
	}
	t.kids = append(t.kids, kids...)
	t.stack = t.stack[:base]
	return i
}

// members sorts an object's members by key, keeping the last of each
// key, as a map would hold them.
func (t *entryTree) members(kids []int32) []int32 {
	sorted := true
	for j := 1; j < len(kids); j++ {
		if t.nodes[kids[j-1]].key >= t.nodes[kids[j]].key {
			sorted = false
			break
		}
	}
	if sorted {
		return kids
	}
	slices.SortStableFunc(kids, func(a, b int32) int {
		return strings.Compare(t.nodes[a].key, t.nodes[b].key)
	})
	out := kids[:0]
	for j, k := range kids {
		if j+1 < len(kids) && t.nodes[kids[j+1]].key == t.nodes[k].key {
			continue // a later value of the same key wins
		}
		out = append(out, k)
	}
	return out
}

// plain marks the bytes a string holds as they are: not a quote, a
// backslash, a control character or the start of a multi-byte rune.
var plain = func() (p [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		p[c] = c != '"' && c != '\\'
	}
	return
}()

// str reads the string at s[i] (a '"'): the index past it (-1 if it is
// not valid) and its value.
func (t *entryTree) str(i int) (int, string) {
	s := t.src
	j := i + 1
	for j < len(s) && plain[s[j]] {
		j++
	}
	if j < len(s) && s[j] == '"' {
		return j + 1, s[i+1 : j]
	}
	// Escapes or multi-byte runes: check them, then decode.
	escaped := false
	for ; j < len(s); j++ {
		switch c := s[j]; {
		case c == '"':
			body := s[i+1 : j]
			if !escaped && utf8.ValidString(body) {
				return j + 1, body
			}
			return j + 1, t.unquote(body)
		case c < 0x20:
			return -1, ""
		case c == '\\':
			escaped = true
			if j+1 >= len(s) {
				return -1, ""
			}
			switch s[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j++
			case 'u':
				if hex4(s, j+2) < 0 {
					return -1, ""
				}
				j += 5
			default:
				return -1, ""
			}
		}
	}
	return -1, ""
}

// hex4 is the code unit of the 4 hex digits at s[i], -1 if they are not.
func hex4(s string, i int) rune {
	if i+4 > len(s) {
		return -1
	}
	var r rune
	for _, c := range []byte(s[i : i+4]) {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// unquote decodes a checked string body as encoding/json does: each
// byte of invalid UTF-8 becomes U+FFFD, and so does a \u escape of a
// surrogate that does not pair with the next one.
func (t *entryTree) unquote(s string) string {
	b := t.buf[:0]
	for r := 0; r < len(s); {
		c := s[r]
		switch {
		case c == '\\':
			switch e := s[r+1]; e {
			case 'u':
				rr := hex4(s, r+2)
				r += 6
				if utf16.IsSurrogate(rr) {
					rr1 := rune(-1)
					if r+1 < len(s) && s[r] == '\\' && s[r+1] == 'u' {
						rr1 = hex4(s, r+2)
					}
					if dec := utf16.DecodeRune(rr, rr1); dec != utf8.RuneError {
						r += 6
						b = utf8.AppendRune(b, dec)
						continue
					}
					rr = utf8.RuneError
				}
				b = utf8.AppendRune(b, rr)
			default:
				b = append(b, unescape[e])
				r += 2
			}
		case c < utf8.RuneSelf:
			b = append(b, c)
			r++
		default:
			rr, size := utf8.DecodeRuneInString(s[r:])
			r += size
			b = utf8.AppendRune(b, rr) // RuneError for a bad byte
		}
	}
	t.buf = b
	return string(b)
}

var unescape = [256]byte{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}

// number returns the index past the JSON number at s[i], -1 if it is
// not one: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func number(s string, i int) int {
	if s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		i = digits(s, i)
	default:
		return -1
	}
	if i < len(s) && s[i] == '.' {
		j := digits(s, i+1)
		if j == i+1 {
			return -1
		}
		i = j
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		j := digits(s, i)
		if j == i {
			return -1
		}
		i = j
	}
	return i
}

func digits(s string, i int) int {
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}

// Reading the tree.

func (t *entryTree) node(i int32) *jsonNode { return &t.nodes[i] }

// members of an object or elements of an array, taken ones included.
func (t *entryTree) children(n *jsonNode) []int32 { return t.kids[n.kids : n.kids+n.n] }

// get is the member key of object n that is still there, or nil.
func (t *entryTree) get(n *jsonNode, key string) *jsonNode {
	if n == nil || n.kind != jsonObject {
		return nil
	}
	for _, k := range t.children(n) {
		if m := &t.nodes[k]; m.key == key && !m.taken {
			return m
		}
	}
	return nil
}

// take is get, taking the member out of its object.
func (t *entryTree) take(n *jsonNode, key string) *jsonNode {
	m := t.get(n, key)
	if m != nil {
		m.taken = true
	}
	return m
}

// count is how many members of object n are still there.
func (t *entryTree) count(n *jsonNode) int {
	c := 0
	for _, k := range t.children(n) {
		if !t.nodes[k].taken {
			c++
		}
	}
	return c
}

// str is n's value if n is a string, else "".
func (n *jsonNode) str() (string, bool) {
	if n == nil || n.kind != jsonString {
		return "", false
	}
	return n.text, true
}
