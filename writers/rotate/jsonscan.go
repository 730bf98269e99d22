package rotate

// The JSON scanning that path templates read an entry's fields with.

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
