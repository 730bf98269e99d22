package access

import (
	"math"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// kind is the type of a recorded value.
type kind uint8

const (
	kString kind = iota + 1
	kByteString
	kBinary
	kBool
	kInt
	kUint
	kFloat64
	kFloat32
	kComplex
	kDuration
	kTime
	kReflected
	kObject
	kArray
	kNamespace
	kMarshaler // a Caddy marshaler kept as is, not marshaled (see AddObject)
)

// node is one recorded value: a field of an object (key set) or an
// element of an array (key empty). Objects and arrays are followed by
// their children; end is the index one past their last descendant, so
// that a reader can skip them.
type node struct {
	key  string
	str  string // kString, kByteString, kBinary
	num  uint64 // ints, uints, bools, float bits, durations
	v    any    // kComplex, kTime, kReflected, kMarshaler
	end  int32
	kind kind
}

// recorder is a zapcore.ObjectEncoder and ArrayEncoder that records
// what it is given, in order, without formatting anything: the access
// encoder reads the few values it renders straight from the nodes, and
// the fallback encoder gets the same fields replayed, exactly as they
// came. Strings are kept by reference (zap's strings are immutable);
// byte slices, which callers may reuse, are copied.
type recorder struct {
	nodes []node
}

// minNodes is the capacity a recorder grows to first: Caddy's request
// takes one node (see AddObject), a log_append field or two one each.
const minNodes = 4

func (r *recorder) add(n node) {
	if len(r.nodes) == cap(r.nodes) {
		grown := make([]node, len(r.nodes), max(2*cap(r.nodes), minNodes))
		copy(grown, r.nodes)
		r.nodes = grown
	}
	r.nodes = append(r.nodes, n)
}

// fork returns a recorder that starts with r's nodes and appends to a
// copy of its own, so that clones of one encoder never write into each
// other's backing array.
func (r *recorder) fork() recorder {
	return recorder{nodes: r.nodes[:len(r.nodes):len(r.nodes)]}
}

// ObjectEncoder.

// AddArray and AddObject record the container node, let the marshaler
// add the children, then close the node. The marshaler may reach r
// directly or through a wrapper: Caddy's filter encoder ignores the
// encoder it is handed and calls the encoder it wraps, which is the
// access encoder holding this recorder, so the children land here
// either way.
func (r *recorder) AddArray(key string, m zapcore.ArrayMarshaler) error {
	i := len(r.nodes)
	r.add(node{key: key, kind: kArray})
	err := m.MarshalLogArray(r)
	r.nodes[i].end = int32(len(r.nodes))
	return err
}

func (r *recorder) AddObject(key string, m zapcore.ObjectMarshaler) error {
	if isCaddyMarshaler(m) {
		r.add(node{key: key, kind: kMarshaler, v: m})
		return nil
	}
	i := len(r.nodes)
	r.add(node{key: key, kind: kObject})
	err := m.MarshalLogObject(r)
	r.nodes[i].end = int32(len(r.nodes))
	return err
}

func (r *recorder) AddBinary(key string, v []byte) {
	r.add(node{key: key, kind: kBinary, str: string(v)})
}

func (r *recorder) AddByteString(key string, v []byte) {
	r.add(node{key: key, kind: kByteString, str: string(v)})
}

func (r *recorder) AddBool(key string, v bool) {
	var n uint64
	if v {
		n = 1
	}
	r.add(node{key: key, kind: kBool, num: n})
}

func (r *recorder) AddComplex128(key string, v complex128) {
	r.add(node{key: key, kind: kComplex, v: v})
}

func (r *recorder) AddComplex64(key string, v complex64) {
	r.add(node{key: key, kind: kComplex, v: complex128(v)})
}

func (r *recorder) AddDuration(key string, v time.Duration) {
	r.add(node{key: key, kind: kDuration, num: uint64(v)})
}

func (r *recorder) AddFloat64(key string, v float64) {
	r.add(node{key: key, kind: kFloat64, num: math.Float64bits(v)})
}

func (r *recorder) AddFloat32(key string, v float32) {
	r.add(node{key: key, kind: kFloat32, num: math.Float64bits(float64(v))})
}

func (r *recorder) AddInt(key string, v int)     { r.AddInt64(key, int64(v)) }
func (r *recorder) AddInt32(key string, v int32) { r.AddInt64(key, int64(v)) }
func (r *recorder) AddInt16(key string, v int16) { r.AddInt64(key, int64(v)) }
func (r *recorder) AddInt8(key string, v int8)   { r.AddInt64(key, int64(v)) }
func (r *recorder) AddInt64(key string, v int64) {
	r.add(node{key: key, kind: kInt, num: uint64(v)})
}

func (r *recorder) AddString(key, v string) {
	r.add(node{key: key, kind: kString, str: v})
}

func (r *recorder) AddTime(key string, v time.Time) {
	r.add(node{key: key, kind: kTime, v: v})
}

func (r *recorder) AddUint(key string, v uint)       { r.AddUint64(key, uint64(v)) }
func (r *recorder) AddUint32(key string, v uint32)   { r.AddUint64(key, uint64(v)) }
func (r *recorder) AddUint16(key string, v uint16)   { r.AddUint64(key, uint64(v)) }
func (r *recorder) AddUint8(key string, v uint8)     { r.AddUint64(key, uint64(v)) }
func (r *recorder) AddUintptr(key string, v uintptr) { r.AddUint64(key, uint64(v)) }
func (r *recorder) AddUint64(key string, v uint64) {
	r.add(node{key: key, kind: kUint, num: v})
}

func (r *recorder) AddReflected(key string, v any) error {
	r.add(node{key: key, kind: kReflected, v: v})
	return nil
}

func (r *recorder) OpenNamespace(key string) {
	r.add(node{key: key, kind: kNamespace})
}

// ArrayEncoder: the same, without keys.

func (r *recorder) AppendArray(m zapcore.ArrayMarshaler) error   { return r.AddArray("", m) }
func (r *recorder) AppendObject(m zapcore.ObjectMarshaler) error { return r.AddObject("", m) }
func (r *recorder) AppendBool(v bool)                            { r.AddBool("", v) }
func (r *recorder) AppendByteString(v []byte)                    { r.AddByteString("", v) }
func (r *recorder) AppendComplex128(v complex128)                { r.AddComplex128("", v) }
func (r *recorder) AppendComplex64(v complex64)                  { r.AddComplex64("", v) }
func (r *recorder) AppendDuration(v time.Duration)               { r.AddDuration("", v) }
func (r *recorder) AppendFloat64(v float64)                      { r.AddFloat64("", v) }
func (r *recorder) AppendFloat32(v float32)                      { r.AddFloat32("", v) }
func (r *recorder) AppendInt(v int)                              { r.AddInt64("", int64(v)) }
func (r *recorder) AppendInt64(v int64)                          { r.AddInt64("", v) }
func (r *recorder) AppendInt32(v int32)                          { r.AddInt64("", int64(v)) }
func (r *recorder) AppendInt16(v int16)                          { r.AddInt64("", int64(v)) }
func (r *recorder) AppendInt8(v int8)                            { r.AddInt64("", int64(v)) }
func (r *recorder) AppendString(v string)                        { r.AddString("", v) }
func (r *recorder) AppendTime(v time.Time)                       { r.AddTime("", v) }
func (r *recorder) AppendUint(v uint)                            { r.AddUint64("", uint64(v)) }
func (r *recorder) AppendUint64(v uint64)                        { r.AddUint64("", v) }
func (r *recorder) AppendUint32(v uint32)                        { r.AddUint64("", uint64(v)) }
func (r *recorder) AppendUint16(v uint16)                        { r.AddUint64("", uint64(v)) }
func (r *recorder) AppendUint8(v uint8)                          { r.AddUint64("", uint64(v)) }
func (r *recorder) AppendUintptr(v uintptr)                      { r.AddUint64("", uint64(v)) }
func (r *recorder) AppendReflected(v any) error                  { return r.AddReflected("", v) }

// isCaddyMarshaler reports whether m is one of the marshalers Caddy's
// server logs requests and headers with. Those are kept as they are and
// read directly (entry.go): their values are plain fields of an
// *http.Request and an http.Header, and marshaling them into nodes would
// cost what encoding JSON costs. Storing m, already an interface value,
// allocates nothing. Wrapped marshalers, such as the filter encoder's,
// are recorded like any other.
func isCaddyMarshaler(m zapcore.ObjectMarshaler) bool {
	switch m.(type) {
	case caddyhttp.LoggableHTTPRequest, caddyhttp.LoggableHTTPHeader:
		return true
	}
	return false
}

// replayObject adds nodes[lo:hi], fields of one object, to enc.
func replayObject(enc zapcore.ObjectEncoder, nodes []node, lo, hi int) error {
	for i := lo; i < hi; i = next(nodes, i) {
		n := &nodes[i]
		switch n.kind {
		case kString:
			enc.AddString(n.key, n.str)
		case kByteString:
			enc.AddByteString(n.key, []byte(n.str))
		case kBinary:
			enc.AddBinary(n.key, []byte(n.str))
		case kBool:
			enc.AddBool(n.key, n.num != 0)
		case kInt:
			enc.AddInt64(n.key, int64(n.num))
		case kUint:
			enc.AddUint64(n.key, n.num)
		case kFloat64:
			enc.AddFloat64(n.key, math.Float64frombits(n.num))
		case kFloat32:
			enc.AddFloat32(n.key, float32(math.Float64frombits(n.num)))
		case kComplex:
			enc.AddComplex128(n.key, n.v.(complex128))
		case kDuration:
			enc.AddDuration(n.key, time.Duration(n.num))
		case kTime:
			enc.AddTime(n.key, n.v.(time.Time))
		case kReflected:
			if err := enc.AddReflected(n.key, n.v); err != nil {
				return err
			}
		case kObject:
			if err := enc.AddObject(n.key, replayedObject{nodes, i + 1, int(n.end)}); err != nil {
				return err
			}
		case kArray:
			if err := enc.AddArray(n.key, replayedArray{nodes, i + 1, int(n.end)}); err != nil {
				return err
			}
		case kNamespace:
			enc.OpenNamespace(n.key)
		case kMarshaler:
			if err := enc.AddObject(n.key, n.v.(zapcore.ObjectMarshaler)); err != nil {
				return err
			}
		}
	}
	return nil
}

// next returns the index of the sibling after nodes[i].
func next(nodes []node, i int) int {
	if k := nodes[i].kind; k == kObject || k == kArray {
		return int(nodes[i].end)
	}
	return i + 1
}

type replayedObject struct {
	nodes  []node
	lo, hi int
}

func (o replayedObject) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	return replayObject(enc, o.nodes, o.lo, o.hi)
}

type replayedArray struct {
	nodes  []node
	lo, hi int
}

func (a replayedArray) MarshalLogArray(enc zapcore.ArrayEncoder) error {
	for i := a.lo; i < a.hi; i = next(a.nodes, i) {
		n := &a.nodes[i]
		switch n.kind {
		case kString:
			enc.AppendString(n.str)
		case kByteString:
			enc.AppendByteString([]byte(n.str))
		case kBool:
			enc.AppendBool(n.num != 0)
		case kInt:
			enc.AppendInt64(int64(n.num))
		case kUint:
			enc.AppendUint64(n.num)
		case kFloat64:
			enc.AppendFloat64(math.Float64frombits(n.num))
		case kFloat32:
			enc.AppendFloat32(float32(math.Float64frombits(n.num)))
		case kComplex:
			enc.AppendComplex128(n.v.(complex128))
		case kDuration:
			enc.AppendDuration(time.Duration(n.num))
		case kTime:
			enc.AppendTime(n.v.(time.Time))
		case kReflected:
			if err := enc.AppendReflected(n.v); err != nil {
				return err
			}
		case kObject:
			if err := enc.AppendObject(replayedObject{a.nodes, i + 1, int(n.end)}); err != nil {
				return err
			}
		case kArray:
			if err := enc.AppendArray(replayedArray{a.nodes, i + 1, int(n.end)}); err != nil {
				return err
			}
		case kMarshaler:
			if err := enc.AppendObject(n.v.(zapcore.ObjectMarshaler)); err != nil {
				return err
			}
		}
	}
	return nil
}

var (
	_ zapcore.ObjectEncoder   = (*recorder)(nil)
	_ zapcore.ArrayEncoder    = (*recorder)(nil)
	_ zapcore.ObjectMarshaler = replayedObject{}
	_ zapcore.ArrayMarshaler  = replayedArray{}
)
