package pylog

import (
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The text and number encodings of the pickle opcodes.

// maxIntBits bounds the ints we build: 4300 decimal digits, the most
// Python will convert to text, and so the most repr() can show.
const maxIntBits = 14284

// decodeLong reads a little-endian two's complement integer.
func decodeLong(b []byte) (*big.Int, error) {
	if len(b)*8 > maxIntBits+8 {
		return nil, fmt.Errorf("int of %d bytes is too large", len(b))
	}
	be := make([]byte, len(b))
	for i, c := range b {
		be[len(b)-1-i] = c
	}
	x := new(big.Int).SetBytes(be)
	if len(b) > 0 && b[len(b)-1]&0x80 != 0 {
		x.Sub(x, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	if x.BitLen() > maxIntBits {
		return nil, fmt.Errorf("int of %d bytes is too large", len(b))
	}
	return x, nil
}

// parseDecimal reads the decimal integers Python's pickler writes for
// INT and LONG: an optional sign and digits, without leading zeros. It
// returns a big.Int only for those that do not fit in an int64.
func parseDecimal(s string) (int64, *big.Int, error) {
	digits := strings.TrimLeft(s, "+-")
	if len(s)-len(digits) > 1 || digits == "" || !allDigits(digits) || len(digits) > 1 && digits[0] == '0' {
		return 0, nil, fmt.Errorf("invalid integer %s", quoteBrief(s))
	}
	if len(digits) > maxIntDigits {
		return 0, nil, fmt.Errorf("integer of %d digits is too large", len(digits))
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, nil, nil
	}
	x, ok := new(big.Int).SetString(s, 10)
	if !ok {
		return 0, nil, fmt.Errorf("invalid integer %s", quoteBrief(s))
	}
	return 0, x, nil
}

// escapeDecode undoes the escapes of a quoted Python 2 str repr, as
// codecs.escape_decode does.
func escapeDecode(line []byte) ([]byte, error) {
	if len(line) < 2 || line[0] != line[len(line)-1] || line[0] != '\'' && line[0] != '"' {
		return nil, errors.New("the STRING opcode argument must be quoted")
	}
	s := line[1 : len(line)-1]
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		if i == len(s) {
			return nil, errors.New(`trailing \ in string`)
		}
		switch c = s[i]; c {
		case '\n':
		case '\\', '\'', '"':
			out = append(out, c)
		case 'a':
			out = append(out, 7)
		case 'b':
			out = append(out, 8)
		case 'f':
			out = append(out, 12)
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'v':
			out = append(out, 11)
		case 'x':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return nil, fmt.Errorf(`invalid \x escape at position %d`, i-1)
			}
			out = append(out, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		case '0', '1', '2', '3', '4', '5', '6', '7':
			v := int(c - '0')
			for k := 0; k < 2 && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '7'; k++ {
				i++
				v = v*8 + int(s[i]-'0')
			}
			out = append(out, byte(v))
		default:
			out = append(out, '\\', c)
		}
	}
	return out, nil
}

// rawUnicodeDecode decodes raw-unicode-escape: bytes are Latin-1 code
// points, and \uXXXX and \UXXXXXXXX after an odd number of backslashes
// are escapes.
func rawUnicodeDecode(line []byte) (string, error) {
	var b strings.Builder
	b.Grow(len(line))
	for i := 0; i < len(line); i++ {
		c := line[i]
		if c != '\\' {
			b.WriteRune(rune(c))
			continue
		}
		j := i
		for j < len(line) && line[j] == '\\' {
			j++
		}
		if (j-i)%2 == 0 || j == len(line) || line[j] != 'u' && line[j] != 'U' {
			for ; i < j; i++ {
				b.WriteByte('\\')
			}
			i--
			continue
		}
		for ; i < j-1; i++ {
			b.WriteByte('\\')
		}
		n := 4
		if line[j] == 'U' {
			n = 8
		}
		if j+n >= len(line) {
			return "", fmt.Errorf(`truncated \%c escape`, line[j])
		}
		var r uint32
		for _, h := range line[j+1 : j+1+n] {
			if !isHex(h) {
				return "", fmt.Errorf(`truncated \%c escape`, line[j])
			}
			r = r<<4 | uint32(unhex(h))
		}
		if r > utf8.MaxRune {
			return "", errors.New(`\U escape out of range`)
		}
		b.WriteRune(rune(r))
		i = j + n
	}
	return b.String(), nil
}

// latin1 encodes s as Latin-1, as the bytes it was made from.
func latin1(s string) ([]byte, error) {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xff {
			return nil, fmt.Errorf("'latin-1' codec can't encode character %U", r)
		}
		b = append(b, byte(r))
	}
	return b, nil
}
