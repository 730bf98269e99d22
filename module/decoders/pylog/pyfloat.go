package pylog

import (
	"math"
	"strconv"
	"strings"
)

// floatRepr is Python's repr() of a float: the shortest digits that read
// back to the same value, in exponent form below 1e-4 and from 1e16 on,
// and with ".0" added to integral values.
func floatRepr(f float64) string {
	return formatFloat(f, 'r', 0, false)
}

// formatFloat renders x the way CPython's PyOS_double_to_string does for
// the printf-style conversions e, E, f, F, g and G with precision prec,
// and for repr() ('r'). alt is the '#' flag. Go's strconv rounds
// correctly, as David Gay's dtoa does, so only the layout of the digits
// needs to be Python's.
func formatFloat(x float64, code byte, prec int, alt bool) string {
	upper := code >= 'A' && code <= 'Z'
	if upper {
		code += 'a' - 'A'
	}
	var s string
	switch {
	case math.IsNaN(x):
		s = "nan" // Python never shows the sign of a NaN
	case math.IsInf(x, 1):
		s = "inf"
	case math.IsInf(x, -1):
		s = "-inf"
	default:
		s = formatFinite(x, code, prec, alt)
	}
	if upper {
		s = strings.ToUpper(s)
	}
	return s
}

func formatFinite(x float64, code byte, prec int, alt bool) string {
	sign := ""
	if math.Signbit(x) {
		sign = "-"
		x = -x
	}
	switch code {
	case 'f':
		s := strconv.FormatFloat(x, 'f', prec, 64)
		if alt && prec == 0 {
			s += "."
		}
		return sign + s
	case 'e':
		s := strconv.FormatFloat(x, 'e', prec, 64)
		if alt && prec == 0 {
			s = s[:1] + "." + s[1:]
		}
		return sign + s
	case 'g':
		if prec == 0 {
			prec = 1
		}
		digits, decpt := decimalDigits(x, prec)
		return sign + layoutDigits(digits, decpt, code, prec, alt, false)
	default: // 'r'
		digits, decpt := decimalDigits(x, -1)
		return sign + layoutDigits(digits, decpt, code, 0, false, true)
	}
}

// decimalDigits returns x (finite, not negative) rounded to n significant
// digits, or to the shortest that reads back when n is -1, as dtoa does:
// the digits without trailing zeros ("0" for zero) and the position of
// the decimal point relative to their start.
func decimalDigits(x float64, n int) (string, int) {
	if n > 0 {
		n--
	}
	s := strconv.FormatFloat(x, 'e', n, 64)
	e := strings.LastIndexByte(s, 'e')
	exp, _ := strconv.Atoi(s[e+1:])
	digits := strings.Replace(s[:e], ".", "", 1)
	digits = strings.TrimRight(digits, "0")
	if digits == "" {
		return "0", 1
	}
	return digits, exp + 1
}

// layoutDigits is the part of CPython's format_float_short that places
// digits, zeros, the decimal point and the exponent, for the 'g' and 'r'
// codes.
func layoutDigits(digits string, decpt int, code byte, prec int, alt, addDot0 bool) string {
	useExp := false
	end := len(digits)
	switch code {
	case 'g':
		limit := prec
		if addDot0 {
			limit--
		}
		useExp = decpt <= -4 || decpt > limit
		if alt {
			end = prec
		}
	case 'r':
		useExp = decpt <= -4 || decpt > 16
	}
	exp := 0
	if useExp {
		exp = decpt - 1
		decpt = 1
	}
	start := 0
	if decpt <= 0 {
		start = decpt - 1
	}
	if !useExp && addDot0 {
		end = max(end, decpt+1)
	} else {
		end = max(end, decpt)
	}

	var b strings.Builder
	b.Grow(end - start + 8)
	zeros := func(n int) {
		for ; n > 0; n-- {
			b.WriteByte('0')
		}
	}
	if decpt <= 0 {
		zeros(decpt - start)
		b.WriteByte('.')
		zeros(-decpt)
	} else {
		zeros(-start)
	}
	if 0 < decpt && decpt <= len(digits) {
		b.WriteString(digits[:decpt])
		b.WriteByte('.')
		b.WriteString(digits[decpt:])
	} else {
		b.WriteString(digits)
	}
	if len(digits) < decpt {
		zeros(decpt - len(digits))
		b.WriteByte('.')
		zeros(end - decpt)
	} else {
		zeros(end - len(digits))
	}
	s := b.String()
	if !alt && strings.HasSuffix(s, ".") {
		s = s[:len(s)-1]
	}
	if useExp {
		s += "e" + expSign(exp) + twoDigits(abs(exp))
	}
	return s
}

func expSign(e int) string {
	if e < 0 {
		return "-"
	}
	return "+"
}

func twoDigits(n int) string {
	if n < 10 {
		return "0" + strconv.Itoa(n)
	}
	return strconv.Itoa(n)
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
