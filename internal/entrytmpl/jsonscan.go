package entrytmpl

// The JSON scanning that templates read an entry's fields with.

import "bytes"

func skipSpace(p []byte, i int) int {
	for i < len(p) && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r') {
		i++
	}
	return i
}

// scanString returns the index just past the string starting at p[i]
// (a '"'), and whether it holds escapes; -1 if it does not end. Most
// strings have no escape: short ones (keys, levels) end within a few
// bytes of a plain loop; for longer ones (messages) bytes.IndexByte
// finds the end a word at a time, and the byte loop only runs from the
// first backslash.
func scanString(p []byte, i int) (end int, escaped bool) {
	j := i + 1
	for short := min(len(p), j+16); j < short; j++ {
		switch p[j] {
		case '"':
			return j + 1, false
		case '\\':
			return scanEscaped(p, j)
		}
	}
	if j >= len(p) {
		return -1, false
	}
	k := bytes.IndexByte(p[j:], '"')
	if k < 0 {
		return -1, false
	}
	if b := bytes.IndexByte(p[j:j+k], '\\'); b >= 0 {
		return scanEscaped(p, j+b)
	}
	return j + k + 1, false
}

// scanEscaped goes on from the backslash at p[j] of a string.
func scanEscaped(p []byte, j int) (end int, escaped bool) {
	for ; j < len(p); j++ {
		switch p[j] {
		case '\\':
			j++
		case '"':
			return j + 1, true
		}
	}
	return -1, true
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
