package pylog

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"math/big"
	"os/exec"
	"testing"
	"time"

	"github.com/caddy-applog/caddy-applog/module/intake"
)

func FuzzDecodePickle(f *testing.F) {
	f.Add([]byte(typicalFrame[4:]))
	for _, tc := range opcodeCases {
		f.Add([]byte(tc.in))
	}
	if _, err := exec.LookPath("python3"); err == nil {
		frames, _ := pythonFrames(f)
		sc := NewSocketScanner(bytes.NewReader(frames), 0)
		for sc.Scan() {
			if len(sc.Bytes()) < 16<<10 {
				f.Add(bytes.Clone(sc.Bytes()))
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := DecodePickle(data, PickleLimits{})
		// A decoder used before decodes the same.
		var d PickleDecoder
		_, _ = d.Decode([]byte(typicalFrame[4:]))
		_, _ = d.Decode(data[:len(data)/2])
		if again, againErr := d.Decode(data); again.Raw != v.Raw || (againErr == nil) != (err == nil) {
			t.Fatalf("reused decoder: %s, %v; new one %s, %v", again.Raw, againErr, v.Raw, err)
		}
		if err != nil {
			return
		}
		checkRaws(t, v, 0)
		if len(v.Raw) < 1<<16 {
			if enc, ok := encodePickle(nil, v); ok {
				again, err := DecodePickle(enc, PickleLimits{MaxStack: 1 << 20})
				if err != nil || again.Raw != v.Raw {
					t.Fatalf("re-encoded %s decodes to %s, %v", v.Raw, again.Raw, err)
				}
			}
		}
		rec, err := FromPickle(v, time.Time{})
		if err != nil {
			return
		}
		for _, a := range rec.Attrs {
			if a.Value.Kind == intake.KindJSON && !json.Valid([]byte(a.Value.Str)) {
				t.Fatalf("attr %s is not valid JSON: %s", a.Key, a.Value.Str)
			}
		}
	})
}

// encodePickle appends a pickle of v made of other opcodes than Python
// uses at protocol 1 (BININT, LONG1, BINBYTES, LIST, DICT...), so that
// decoding it again checks that Raw follows from the values alone. ok is
// false for what a pickle cannot hold: a container inside itself.
func encodePickle(b []byte, v Value) ([]byte, bool) {
	b, ok := encodeValue(b, v)
	return append(b, '.'), ok
}

func encodeValue(b []byte, v Value) ([]byte, bool) {
	ok := true
	switch v.Kind {
	case KindNone:
		return append(b, 'N'), true
	case KindBool:
		if v.Int != 0 {
			return append(b, 0x88), true
		}
		return append(b, 0x89), true
	case KindInt:
		x := v.Big
		if x == nil {
			if v.Int >= math.MinInt32 && v.Int <= math.MaxInt32 {
				b = append(b, 'J')
				return binary.LittleEndian.AppendUint32(b, uint32(int32(v.Int))), true
			}
			x = big.NewInt(v.Int)
		}
		le := twosComplement(x)
		b = append(b, 0x8b)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(le)))
		return append(b, le...), true
	case KindFloat:
		b = append(b, 'G')
		return binary.BigEndian.AppendUint64(b, math.Float64bits(v.Float)), true
	case KindStr, KindBytes:
		op := byte('X')
		if v.Kind == KindBytes {
			op = 'B'
		}
		b = append(b, op)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(v.Str)))
		return append(b, v.Str...), true
	case KindTuple, KindList:
		b = append(b, '(')
		for _, it := range v.Items {
			if b, ok = encodeValue(b, it); !ok {
				return b, false
			}
		}
		if v.Kind == KindList {
			return append(b, 'l'), true
		}
		return append(b, 't'), true
	case KindDict:
		b = append(b, '(')
		for _, p := range v.Pairs {
			if b, ok = encodeValue(b, p.Key); !ok {
				return b, false
			}
			if b, ok = encodeValue(b, p.Value); !ok {
				return b, false
			}
		}
		return append(b, 'd'), true
	}
	return b, false
}

// twosComplement is x as LONG1 and LONG4 hold it: little-endian two's
// complement, long enough for the sign.
func twosComplement(x *big.Int) []byte {
	n := x.BitLen()/8 + 1
	y := new(big.Int).Set(x)
	if x.Sign() < 0 {
		y.Add(y, new(big.Int).Lsh(big.NewInt(1), uint(8*n)))
	}
	be := y.FillBytes(make([]byte, n))
	for i, j := 0, len(be)-1; i < j; i, j = i+1, j-1 {
		be[i], be[j] = be[j], be[i]
	}
	return be
}

func TestEncodePickleRoundTrip(t *testing.T) {
	huge, _ := new(big.Int).SetString("-123456789012345678901234567890", 10)
	v := Dict(
		Pair{Str("a"), List(Int(0), Int(-1), Int(math.MaxInt64), Int(math.MinInt64), BigInt(huge), Int(128), Int(-129))},
		Pair{Tuple(Int(1), Str("x")), Tuple(Float(0.1), Bool(true), None(), Bytes([]byte{0, 255}))},
	)
	enc, ok := encodePickle(nil, v)
	if !ok {
		t.Fatal("not encodable")
	}
	again, err := DecodePickle(enc, PickleLimits{})
	if err != nil || again.Raw != v.Raw {
		t.Fatalf("round trip: %s, %v; want %s", again.Raw, err, v.Raw)
	}
}
