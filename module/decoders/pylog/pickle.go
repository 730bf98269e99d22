package pylog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
)

// DefaultMaxPickle is the longest pickle DecodePickle accepts unless
// told otherwise: far more than any log record, small enough that a
// hostile sender cannot make a receiver hold much.
const DefaultMaxPickle = 1 << 20

// PickleLimits bounds the work and memory DecodePickle spends on one
// pickle. A pickle is a program for a stack machine, so its length alone
// bounds neither: a few bytes can reference one object many times or
// nest containers deeply. A zero field takes its default.
type PickleLimits struct {
	// MaxBytes is the longest pickle accepted (DefaultMaxPickle). A
	// stream reader should check a frame's length against it before
	// reading the frame; DecodePickle checks it again.
	MaxBytes int

	// MaxStack bounds the objects and marks on the stack at once
	// (20 000). Python's pickler puts at most 1000 items of a list or
	// dict on it at a time, all the items of a tuple.
	MaxStack int

	// MaxMemo bounds the memo entries (65 536); Python's pickler makes
	// one per str, container and global.
	MaxMemo int

	// MaxItems bounds the items of one list or tuple and the entries
	// of one dict (10 000).
	MaxItems int

	// MaxValues bounds the objects created in all (100 000).
	MaxValues int

	// MaxDepth bounds how deeply containers nest (64).
	MaxDepth int

	// MaxRepr bounds the repr() text built for containers (16 MiB):
	// through the memo, an object may appear any number of times in
	// the result, so that text can grow far beyond the pickle.
	MaxRepr int
}

func (l PickleLimits) withDefaults() PickleLimits {
	def := func(p *int, v int) {
		if *p <= 0 {
			*p = v
		}
	}
	def(&l.MaxBytes, DefaultMaxPickle)
	def(&l.MaxStack, 20_000)
	def(&l.MaxMemo, 1<<16)
	def(&l.MaxItems, 10_000)
	def(&l.MaxValues, 100_000)
	def(&l.MaxDepth, maxDepth)
	def(&l.MaxRepr, 16<<20)
	return l
}

// PickleError is why DecodePickle rejected a pickle at one opcode.
type PickleError struct {
	// Offset is where the opcode is in the pickle.
	Offset int
	// Op is the opcode.
	Op byte
	// Refused is true when the opcode is well-formed but would import,
	// call or build an object: the pickle was refused on principle.
	Refused bool
	// Err says what is wrong.
	Err error
}

func (e *PickleError) Error() string {
	return fmt.Sprintf("pickle opcode %s at offset %d: %v", opName(e.Op), e.Offset, e.Err)
}

func (e *PickleError) Unwrap() error { return e.Err }

// refusal marks an error as a refusal on principle, for PickleError.
type refusal struct{ error }

func refusef(format string, args ...any) error {
	return refusal{fmt.Errorf(format, args...)}
}

var (
	errTruncated = errors.New("pickle data was truncated")
	errUnderflow = errors.New("stack underflow")
	errNoMark    = errors.New("no MARK to pop to")
)

// DecodePickle decodes a pickle of plain data, as SocketHandler and
// DatagramHandler send a LogRecord's __dict__, without importing or
// calling anything.
//
// It builds only dicts, lists, tuples, str, bytes, int, float, bool and
// None, from the opcodes of protocols 0 to 5 that make them (FRAME,
// MEMOIZE and the other framing opcodes included). Every other opcode —
// GLOBAL, STACK_GLOBAL, REDUCE, BUILD, INST, OBJ, NEWOBJ, NEWOBJ_EX,
// PERSID, BINPERSID, EXT1/2/4, sets, out-of-band buffers and unknown
// bytes — rejects the whole pickle with a *PickleError that names the
// opcode and its offset.
//
// One exception is made, because Python's own pickler writes it for
// every bytes value below protocol 3, and SocketHandler uses protocol 1:
// `GLOBAL '_codecs encode'` applied by REDUCE to exactly (str, 'latin1')
// is read as the bytes it stands for, and `GLOBAL '__builtin__ bytes'`
// applied to () as an empty bytes (Python writes that for b"", so
// refusing it would lose every record with an empty bytes extra). These
// two globals are recognised by name, never resolved, and good for
// nothing but that REDUCE: anywhere else they are an error.
//
// What protocols 0 and 1 call a string (STRING, BINSTRING,
// SHORT_BINSTRING: Python 2's str) is decoded as UTF-8 into a str, with
// invalid bytes replaced, where Python 3 would insist on ASCII; a str
// holding lone surrogates gets U+FFFD for them. Dict keys that compare
// equal in Python (1, 1.0 and True) are one key, as in Python; keys
// Python could not hash (lists, dicts) are an error. A container inside
// itself is a KindEllipsis value with repr()'s "[...]", "{...}" or
// "(...)". Bytes after STOP are an error; Python ignores them, but here
// they mean the frame length and the pickle disagree.
func DecodePickle(data []byte, lim PickleLimits) (Value, error) {
	d := PickleDecoder{Limits: lim}
	return d.Decode(data)
}

// PickleDecoder decodes pickles as DecodePickle does, keeping its
// working memory from one pickle to the next, which halves what a
// record costs: a receiver holds one per connection. The zero value
// decodes with the default limits. It is not safe for concurrent use.
type PickleDecoder struct {
	Limits PickleLimits
	u      unpickler
}

// Decode decodes one pickle; see DecodePickle. The result shares no
// memory with the decoder.
func (d *PickleDecoder) Decode(data []byte) (Value, error) {
	lim := d.Limits.withDefaults()
	if len(data) > lim.MaxBytes {
		return Value{}, fmt.Errorf("pickle of %d bytes exceeds the limit of %d", len(data), lim.MaxBytes)
	}
	u := &d.u
	u.start(data, lim)
	defer u.finish()
	root, err := u.run()
	if err != nil {
		return Value{}, err
	}
	v, err := u.value(root, 0)
	if err != nil {
		return Value{}, fmt.Errorf("pickle: %w", err)
	}
	return v, nil
}

// nodeKind tells what a node of the object graph is.
type nodeKind uint8

const (
	nodeScalar nodeKind = iota // v holds it
	nodeList
	nodeTuple
	nodeDict
	nodeCodecsEncode // GLOBAL _codecs.encode, waiting for REDUCE
	nodeBytesType    // GLOBAL __builtin__.bytes, waiting for REDUCE
)

// Conversion states of a container node.
const (
	stateNew uint8 = iota
	stateBusy
	stateDone
)

// pnode is an object as the unpickler builds it. Containers are filled
// after they are memoized (EMPTY_LIST, BINPUT, ..., APPENDS), and may
// be referenced from several places or from inside themselves, so the
// graph is built first and turned into Values once complete.
type pnode struct {
	kind  nodeKind
	state uint8
	v     Value    // a scalar; a container's value once converted
	items []*pnode // list and tuple items; a dict's keys and values, alternating
	keys  *dictKeys
}

// dictKeys are the keys of a dict node, to find a key set again.
type dictKeys struct {
	list  []hashKey
	index map[hashKey]int // position by key, for dicts past smallDict
}

// smallDict is the size up to which a dict's keys are searched
// linearly: a record has about 25.
const smallDict = 48

// hashKey identifies a dict key the way Python's equality does for the
// types we build: 1, 1.0 and True are one key.
type hashKey struct {
	k byte
	s string
}

type unpickler struct {
	data   []byte
	pos    int
	lim    PickleLimits
	stack  []*pnode
	marks  []int // stack lengths at each MARK
	memo   []*pnode
	sparse map[uint32]*pnode // memo entries past the end of memo
	nmemo  int
	nodes  int
	slabs  [][]pnode // node storage in use; the last one is being filled
	free   [][]pnode // cleared slabs, for the next pickle
	spent  int       // repr bytes built
}

const (
	slabSize  = 64
	keepSlabs = 8    // slabs kept for the next pickle
	keepStack = 4096 // longest stack and memo kept for the next pickle
)

// start prepares to decode data.
func (u *unpickler) start(data []byte, lim PickleLimits) {
	u.data, u.pos, u.lim = data, 0, lim
	u.nmemo, u.nodes, u.spent = 0, 0, 0
	if u.stack == nil {
		u.stack = make([]*pnode, 0, slabSize)
		u.memo = make([]*pnode, 0, slabSize)
	}
}

// finish drops every reference the decoding made, so that a decoder
// kept for the next pickle holds on to nothing of this one, and keeps a
// bounded amount of its memory for reuse.
func (u *unpickler) finish() {
	u.data = nil
	clear(u.stack[:cap(u.stack)])
	clear(u.memo[:cap(u.memo)])
	u.stack, u.memo, u.marks, u.sparse = u.stack[:0], u.memo[:0], u.marks[:0], nil
	if cap(u.stack) > keepStack || cap(u.memo) > keepStack {
		u.stack, u.memo = nil, nil
	}
	for _, s := range u.slabs {
		clear(s)
		if len(u.free) < keepSlabs {
			u.free = append(u.free, s[:0])
		}
	}
	clear(u.slabs)
	u.slabs = u.slabs[:0]
}

// run executes the pickle up to STOP and returns the object it built.
func (u *unpickler) run() (*pnode, error) {
	for u.pos < len(u.data) {
		start := u.pos
		op := u.data[u.pos]
		u.pos++
		root, err := u.step(op)
		if err != nil {
			var r refusal
			if errors.As(err, &r) {
				return nil, &PickleError{Offset: start, Op: op, Refused: true, Err: r.error}
			}
			return nil, &PickleError{Offset: start, Op: op, Err: err}
		}
		if root != nil {
			if u.pos != len(u.data) {
				return nil, fmt.Errorf("pickle: %d bytes after STOP at offset %d", len(u.data)-u.pos, start)
			}
			return root, nil
		}
	}
	return nil, errors.New("pickle ends without STOP")
}

// step executes one opcode; it returns the result at STOP.
func (u *unpickler) step(op byte) (*pnode, error) {
	switch op {
	case '.': // STOP
		return u.pop()
	case '(': // MARK
		if err := u.room(); err != nil {
			return nil, err
		}
		u.marks = append(u.marks, len(u.stack))
	case '0': // POP
		switch {
		case len(u.stack) > u.base():
			u.stack = u.stack[:len(u.stack)-1]
		case len(u.marks) > 0:
			u.marks = u.marks[:len(u.marks)-1]
		default:
			return nil, errUnderflow
		}
	case '1': // POP_MARK
		_, err := u.popMark()
		return nil, err
	case '2': // DUP
		top, err := u.top()
		if err != nil {
			return nil, err
		}
		return nil, u.push(top)
	case 'N': // NONE
		return nil, u.pushScalar(None())
	case '\x88': // NEWTRUE
		return nil, u.pushScalar(Bool(true))
	case '\x89': // NEWFALSE
		return nil, u.pushScalar(Bool(false))
	case 'I', 'J', 'K', 'M', 'L', '\x8a', '\x8b':
		return nil, u.integer(op)
	case 'F', 'G':
		return nil, u.float(op)
	case 'S', 'T', 'U', 'V', 'X', '\x8c', '\x8d', 'B', 'C', '\x8e':
		return nil, u.text(op)
	case ')': // EMPTY_TUPLE
		return nil, u.pushContainer(nodeTuple, nil)
	case ']': // EMPTY_LIST
		return nil, u.pushContainer(nodeList, nil)
	case '}': // EMPTY_DICT
		return nil, u.pushContainer(nodeDict, nil)
	case 't', 'l', 'd', '\x85', '\x86', '\x87':
		return nil, u.build(op)
	case 'a', 'e': // APPEND, APPENDS
		return nil, u.appendItems(op == 'e')
	case 's', 'u': // SETITEM, SETITEMS
		return nil, u.setItems(op == 'u')
	case 'g', 'h', 'j': // GET, BINGET, LONG_BINGET
		return nil, u.get(op)
	case 'p', 'q', 'r', '\x94': // PUT, BINPUT, LONG_BINPUT, MEMOIZE
		return nil, u.put(op)
	case '\x80': // PROTO
		b, err := u.read(1)
		if err != nil {
			return nil, err
		}
		if b[0] > 5 {
			return nil, fmt.Errorf("unsupported pickle protocol %d", b[0])
		}
	case '\x95': // FRAME: only a hint for buffered readers
		b, err := u.read(8)
		if err != nil {
			return nil, err
		}
		if n := binary.LittleEndian.Uint64(b); n > uint64(len(u.data)-u.pos) {
			return nil, fmt.Errorf("frame of %d bytes runs past the end of the pickle", n)
		}
	case 'c': // GLOBAL
		return nil, u.global()
	case 'R': // REDUCE
		return nil, u.reduce()
	case 'b', 'i', 'o', '\x81', '\x92', '\x93', 'P', 'Q', '\x82', '\x83', '\x84':
		return nil, refusef("refused: it would import, call or build an object")
	default:
		return nil, errors.New("unsupported opcode")
	}
	return nil, nil
}

// read consumes the next n bytes.
func (u *unpickler) read(n int) ([]byte, error) {
	if n < 0 || n > len(u.data)-u.pos {
		return nil, errTruncated
	}
	b := u.data[u.pos : u.pos+n]
	u.pos += n
	return b, nil
}

// readLen consumes a length of size bytes (1, 4 or 8, little-endian)
// and checks that that many bytes follow.
func (u *unpickler) readLen(size int, signed bool) (int, error) {
	b, err := u.read(size)
	if err != nil {
		return 0, err
	}
	var n uint64
	switch size {
	case 1:
		n = uint64(b[0])
	case 4:
		x := binary.LittleEndian.Uint32(b)
		if signed && int32(x) < 0 {
			return 0, fmt.Errorf("negative length %d", int32(x))
		}
		n = uint64(x)
	default:
		n = binary.LittleEndian.Uint64(b)
	}
	if n > uint64(len(u.data)-u.pos) {
		return 0, fmt.Errorf("%d bytes announced, %d left: %w", n, len(u.data)-u.pos, errTruncated)
	}
	return int(n), nil
}

// readLine consumes a line of a text opcode, without its '\n'.
func (u *unpickler) readLine() ([]byte, error) {
	rest := u.data[u.pos:]
	for i, c := range rest {
		if c == '\n' {
			u.pos += i + 1
			return rest[:i], nil
		}
	}
	return nil, fmt.Errorf("line not terminated: %w", errTruncated)
}

// base is where the stack of the innermost MARK begins.
func (u *unpickler) base() int {
	if len(u.marks) == 0 {
		return 0
	}
	return u.marks[len(u.marks)-1]
}

func (u *unpickler) room() error {
	if len(u.stack)+len(u.marks) >= u.lim.MaxStack {
		return fmt.Errorf("more than %d values held at once (too deeply nested, or too many items)", u.lim.MaxStack)
	}
	return nil
}

func (u *unpickler) push(n *pnode) error {
	if err := u.room(); err != nil {
		return err
	}
	u.stack = append(u.stack, n)
	return nil
}

func (u *unpickler) pop() (*pnode, error) {
	if len(u.stack) <= u.base() {
		return nil, errUnderflow
	}
	n := u.stack[len(u.stack)-1]
	u.stack = u.stack[:len(u.stack)-1]
	return n, nil
}

func (u *unpickler) top() (*pnode, error) {
	if len(u.stack) <= u.base() {
		return nil, errUnderflow
	}
	return u.stack[len(u.stack)-1], nil
}

// popMark removes the innermost MARK and returns the objects above it.
// They stay valid until the next push.
func (u *unpickler) popMark() ([]*pnode, error) {
	if len(u.marks) == 0 {
		return nil, errNoMark
	}
	m := u.marks[len(u.marks)-1]
	u.marks = u.marks[:len(u.marks)-1]
	items := u.stack[m:]
	u.stack = u.stack[:m]
	return items, nil
}

// newNode allocates a node from a slab, so that a record's few dozen
// objects cost a few allocations rather than one each.
func (u *unpickler) newNode(kind nodeKind) (*pnode, error) {
	if u.nodes >= u.lim.MaxValues {
		return nil, fmt.Errorf("more than %d objects", u.lim.MaxValues)
	}
	u.nodes++
	last := len(u.slabs) - 1
	if last < 0 || len(u.slabs[last]) == cap(u.slabs[last]) {
		if n := len(u.free); n > 0 {
			u.slabs = append(u.slabs, u.free[n-1])
			u.free = u.free[:n-1]
		} else {
			u.slabs = append(u.slabs, make([]pnode, 0, slabSize))
		}
		last++
	}
	s := u.slabs[last]
	s = s[:len(s)+1]
	u.slabs[last] = s
	n := &s[len(s)-1]
	n.kind = kind
	return n, nil
}

func (u *unpickler) pushScalar(v Value) error {
	n, err := u.newNode(nodeScalar)
	if err != nil {
		return err
	}
	n.v = v
	return u.push(n)
}

func (u *unpickler) pushContainer(kind nodeKind, items []*pnode) error {
	n, err := u.newNode(kind)
	if err != nil {
		return err
	}
	n.items = items
	return u.push(n)
}

// build executes TUPLE, LIST, DICT and TUPLE1/2/3.
func (u *unpickler) build(op byte) error {
	var items []*pnode
	switch op {
	case '\x85', '\x86', '\x87': // TUPLE1, TUPLE2, TUPLE3
		n := int(op - '\x84')
		if len(u.stack)-u.base() < n {
			return errUnderflow
		}
		items = u.stack[len(u.stack)-n:]
		u.stack = u.stack[:len(u.stack)-n]
	default:
		var err error
		if items, err = u.popMark(); err != nil {
			return err
		}
	}
	limit := u.lim.MaxItems
	if op == 'd' {
		limit *= 2
	}
	if len(items) > limit {
		return fmt.Errorf("more than %d items", u.lim.MaxItems)
	}
	if op == 'd' {
		if len(items)%2 != 0 {
			return errors.New("odd number of items for DICT")
		}
		d, err := u.newNode(nodeDict)
		if err != nil {
			return err
		}
		if err := u.setPairs(d, items); err != nil {
			return err
		}
		return u.push(d)
	}
	items = append([]*pnode(nil), items...)
	if op == 'l' {
		return u.pushContainer(nodeList, items)
	}
	return u.pushContainer(nodeTuple, items)
}

// appendItems executes APPEND and APPENDS.
func (u *unpickler) appendItems(many bool) error {
	var items []*pnode
	var one [1]*pnode
	if many {
		var err error
		if items, err = u.popMark(); err != nil {
			return err
		}
	} else {
		v, err := u.pop()
		if err != nil {
			return err
		}
		one[0] = v
		items = one[:]
	}
	list, err := u.top()
	if err != nil {
		return err
	}
	if list.kind != nodeList {
		return fmt.Errorf("cannot append to %s", list.kindName())
	}
	if len(list.items)+len(items) > u.lim.MaxItems {
		return fmt.Errorf("list of more than %d items", u.lim.MaxItems)
	}
	list.items = append(list.items, items...)
	return nil
}

// setItems executes SETITEM and SETITEMS.
func (u *unpickler) setItems(many bool) error {
	var items []*pnode
	if many {
		var err error
		if items, err = u.popMark(); err != nil {
			return err
		}
		if len(items)%2 != 0 {
			return errors.New("odd number of items for SETITEMS")
		}
	} else {
		if len(u.stack)-u.base() < 2 {
			return errUnderflow
		}
		items = u.stack[len(u.stack)-2:]
		u.stack = u.stack[:len(u.stack)-2]
	}
	d, err := u.top()
	if err != nil {
		return err
	}
	if d.kind != nodeDict {
		return fmt.Errorf("cannot set items of %s", d.kindName())
	}
	return u.setPairs(d, items)
}

// setPairs sets keys and values, alternating in kv, in dict d: a key
// already there keeps its place and takes the new value, as in Python.
func (u *unpickler) setPairs(d *pnode, kv []*pnode) error {
	if d.keys == nil {
		d.keys = &dictKeys{list: make([]hashKey, 0, len(kv)/2)}
	}
	keys := d.keys
	d.items = slices.Grow(d.items, len(kv))
	keys.list = slices.Grow(keys.list, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		hk, err := u.hashOf(kv[i], 0)
		if err != nil {
			return err
		}
		if j, ok := keys.lookup(hk); ok {
			d.items[2*j+1] = kv[i+1]
			continue
		}
		if len(keys.list) >= u.lim.MaxItems {
			return fmt.Errorf("dict of more than %d entries", u.lim.MaxItems)
		}
		keys.list = append(keys.list, hk)
		d.items = append(d.items, kv[i], kv[i+1])
		switch {
		case keys.index != nil:
			keys.index[hk] = len(keys.list) - 1
		case len(keys.list) > smallDict:
			keys.index = make(map[hashKey]int, 2*len(keys.list))
			for j, k := range keys.list {
				keys.index[k] = j
			}
		}
	}
	return nil
}

// lookup returns the position of key hk.
func (d *dictKeys) lookup(hk hashKey) (int, bool) {
	if d.index != nil {
		j, ok := d.index[hk]
		return j, ok
	}
	for j, k := range d.list {
		if k == hk {
			return j, true
		}
	}
	return 0, false
}

// hashOf is the identity of n as a dict key. A tuple's is built from
// its items', and charged to the repr budget: tuples sharing items can
// make it grow exponentially with their nesting.
func (u *unpickler) hashOf(n *pnode, depth int) (hashKey, error) {
	switch n.kind {
	case nodeScalar:
		if n.v.Kind == KindFloat && math.IsNaN(n.v.Float) {
			// NaN equals nothing, itself included, so Python's dict
			// tells two NaN keys apart unless they are the same object
			// (one memoized float used twice): identity is the key.
			return hashKey{'x', fmt.Sprintf("%p", n)}, nil
		}
		return scalarHash(n.v), nil
	case nodeTuple:
		if depth >= u.lim.MaxDepth {
			return hashKey{}, fmt.Errorf("dict key nested deeper than %d", u.lim.MaxDepth)
		}
		var b strings.Builder
		for _, it := range n.items {
			hk, err := u.hashOf(it, depth+1)
			if err != nil {
				return hashKey{}, err
			}
			if err := u.charge(len(hk.s) + 8); err != nil {
				return hashKey{}, fmt.Errorf("dict key: %w", err)
			}
			b.WriteByte(hk.k)
			b.WriteString(strconv.Itoa(len(hk.s)))
			b.WriteByte(':')
			b.WriteString(hk.s)
		}
		return hashKey{'t', b.String()}, nil
	}
	return hashKey{}, fmt.Errorf("unhashable type: '%s'", n.kindName())
}

func scalarHash(v Value) hashKey {
	switch v.Kind {
	case KindStr:
		return hashKey{'s', v.Str}
	case KindBytes:
		return hashKey{'b', v.Str}
	case KindBool, KindInt:
		if v.Big != nil {
			return hashKey{'n', v.Raw}
		}
		return hashKey{'n', strconv.FormatInt(v.Int, 10)}
	case KindFloat:
		f := v.Float
		if !math.IsInf(f, 0) && !math.IsNaN(f) && f == math.Trunc(f) {
			i, _ := new(big.Float).SetFloat64(f).Int(nil)
			return hashKey{'n', i.String()}
		}
		return hashKey{'f', v.Raw}
	}
	return hashKey{'N', v.Raw}
}

func (n *pnode) kindName() string {
	switch n.kind {
	case nodeList:
		return "list"
	case nodeTuple:
		return "tuple"
	case nodeDict:
		return "dict"
	case nodeCodecsEncode, nodeBytesType:
		return "builtin_function_or_method"
	}
	return n.v.Kind.String()
}

// get executes GET, BINGET and LONG_BINGET.
func (u *unpickler) get(op byte) error {
	idx, err := u.memoIndex(op)
	if err != nil {
		return err
	}
	var n *pnode
	if idx < uint64(len(u.memo)) {
		n = u.memo[idx]
	} else if idx <= math.MaxUint32 {
		n = u.sparse[uint32(idx)]
	}
	if n == nil {
		return fmt.Errorf("memo key %d not found", idx)
	}
	return u.push(n)
}

// put executes PUT, BINPUT, LONG_BINPUT and MEMOIZE. Python's pickler
// numbers memo entries from 0 up, so they go in a slice; others in a
// map, bounded all the same.
func (u *unpickler) put(op byte) error {
	var idx uint64
	if op == '\x94' { // MEMOIZE
		idx = uint64(u.nmemo)
	} else {
		var err error
		if idx, err = u.memoIndex(op); err != nil {
			return err
		}
	}
	top, err := u.top()
	if err != nil {
		return err
	}
	if idx < uint64(len(u.memo)) {
		u.memo[idx] = top
		return nil
	}
	if _, ok := u.sparse[uint32(idx)]; !ok {
		if u.nmemo >= u.lim.MaxMemo {
			return fmt.Errorf("more than %d memo entries", u.lim.MaxMemo)
		}
		u.nmemo++
	}
	if idx == uint64(len(u.memo)) && u.sparse == nil {
		u.memo = append(u.memo, top)
		return nil
	}
	if u.sparse == nil {
		u.sparse = make(map[uint32]*pnode)
	}
	u.sparse[uint32(idx)] = top
	return nil
}

// memoIndex reads the memo key of GET, BINGET, LONG_BINGET, PUT, BINPUT
// or LONG_BINPUT.
func (u *unpickler) memoIndex(op byte) (uint64, error) {
	switch op {
	case 'h', 'q':
		b, err := u.read(1)
		if err != nil {
			return 0, err
		}
		return uint64(b[0]), nil
	case 'j', 'r':
		b, err := u.read(4)
		if err != nil {
			return 0, err
		}
		return uint64(binary.LittleEndian.Uint32(b)), nil
	}
	line, err := u.readLine()
	if err != nil {
		return 0, err
	}
	idx, err := strconv.ParseUint(string(line), 10, 32)
	if err != nil {
		return 0, fmt.Errorf("invalid memo key %s", quoteBrief(string(line)))
	}
	return idx, nil
}

// integer executes INT, BININT, BININT1, BININT2, LONG, LONG1 and LONG4.
func (u *unpickler) integer(op byte) error {
	switch op {
	case 'K':
		b, err := u.read(1)
		if err != nil {
			return err
		}
		return u.pushScalar(Int(int64(b[0])))
	case 'M':
		b, err := u.read(2)
		if err != nil {
			return err
		}
		return u.pushScalar(Int(int64(binary.LittleEndian.Uint16(b))))
	case 'J':
		b, err := u.read(4)
		if err != nil {
			return err
		}
		return u.pushScalar(Int(int64(int32(binary.LittleEndian.Uint32(b)))))
	case '\x8a', '\x8b':
		size := 1
		if op == '\x8b' {
			size = 4
		}
		n, err := u.readLen(size, true)
		if err != nil {
			return err
		}
		b, _ := u.read(n)
		x, err := decodeLong(b)
		if err != nil {
			return err
		}
		return u.pushScalar(BigInt(x))
	}
	line, err := u.readLine()
	if err != nil {
		return err
	}
	s := string(line)
	if op == 'I' {
		// Protocol 0 and 1 write bools this way.
		switch s {
		case "00":
			return u.pushScalar(Bool(false))
		case "01":
			return u.pushScalar(Bool(true))
		}
	} else {
		s = strings.TrimSuffix(s, "L")
	}
	n, x, err := parseDecimal(s)
	switch {
	case err != nil:
		return err
	case x != nil:
		return u.pushScalar(BigInt(x))
	}
	return u.pushScalar(Int(n))
}

// float executes FLOAT and BINFLOAT.
func (u *unpickler) float(op byte) error {
	if op == 'G' {
		b, err := u.read(8)
		if err != nil {
			return err
		}
		return u.pushScalar(Float(math.Float64frombits(binary.BigEndian.Uint64(b))))
	}
	line, err := u.readLine()
	if err != nil {
		return err
	}
	s := string(line)
	// float() reads what repr() writes; strconv also reads hex floats
	// and '_', which Python's float() does not.
	if strings.ContainsAny(s, "xXpP_") {
		return fmt.Errorf("invalid float %s", quoteBrief(s))
	}
	f, err := strconv.ParseFloat(s, 64)
	switch {
	case errors.Is(err, strconv.ErrRange) && math.IsInf(f, 0):
		// float() of text reads it as inf, but the unpickler refuses.
		return fmt.Errorf("float %s out of range", s)
	case err != nil && !errors.Is(err, strconv.ErrRange):
		return fmt.Errorf("invalid float %s", quoteBrief(s))
	}
	return u.pushScalar(Float(f))
}

// text executes the str and bytes opcodes.
func (u *unpickler) text(op byte) error {
	switch op {
	case 'S': // STRING: repr() of a Python 2 str
		line, err := u.readLine()
		if err != nil {
			return err
		}
		b, err := escapeDecode(line)
		if err != nil {
			return err
		}
		return u.pushScalar(Str(string(b)))
	case 'V': // UNICODE: raw-unicode-escape
		line, err := u.readLine()
		if err != nil {
			return err
		}
		s, err := rawUnicodeDecode(line)
		if err != nil {
			return err
		}
		return u.pushScalar(Str(s))
	}
	size, signed, isBytes := 4, false, false
	switch op {
	case 'T': // BINSTRING
		signed = true
	case 'U', '\x8c': // SHORT_BINSTRING, SHORT_BINUNICODE
		size = 1
	case 'B': // BINBYTES
		isBytes = true
	case 'C': // SHORT_BINBYTES
		size, isBytes = 1, true
	case '\x8d': // BINUNICODE8
		size = 8
	case '\x8e': // BINBYTES8
		size, isBytes = 8, true
	}
	n, err := u.readLen(size, signed)
	if err != nil {
		return err
	}
	b, _ := u.read(n)
	if isBytes {
		return u.pushScalar(Bytes(b))
	}
	if v, ok := internedStr(b); ok {
		return u.pushScalar(v)
	}
	return u.pushScalar(Str(string(b)))
}

// global executes GLOBAL: the two callables Python's pickler writes for
// bytes below protocol 3 are kept as tokens for REDUCE, anything else
// is refused. Nothing is ever looked up.
func (u *unpickler) global() error {
	module, err := u.readLine()
	if err != nil {
		return err
	}
	name, err := u.readLine()
	if err != nil {
		return err
	}
	var kind nodeKind
	switch {
	case string(module) == "_codecs" && string(name) == "encode":
		kind = nodeCodecsEncode
	case string(module) == "__builtin__" && string(name) == "bytes":
		kind = nodeBytesType
	default:
		return refusef("refused: it would import %s", quoteBrief(string(module)+"."+string(name)))
	}
	n, err := u.newNode(kind)
	if err != nil {
		return err
	}
	return u.push(n)
}

// reduce executes REDUCE for the one use allowed: making bytes.
func (u *unpickler) reduce() error {
	args, err := u.pop()
	if err != nil {
		return err
	}
	fn, err := u.pop()
	if err != nil {
		return err
	}
	switch {
	case fn.kind == nodeCodecsEncode && args.kind == nodeTuple && len(args.items) == 2 &&
		isStr(args.items[0]) && isStr(args.items[1]) && args.items[1].v.Str == "latin1":
		b, err := latin1(args.items[0].v.Str)
		if err != nil {
			return err
		}
		return u.pushScalar(Bytes(b))
	case fn.kind == nodeBytesType && args.kind == nodeTuple && len(args.items) == 0:
		return u.pushScalar(Bytes(nil))
	}
	return refusef("refused: only _codecs.encode(str, 'latin1') and bytes() may be called, not %s", fn.kindName())
}

func isStr(n *pnode) bool { return n.kind == nodeScalar && n.v.Kind == KindStr }

// value turns the graph under n into a Value. A container met again
// while its own value is being built (one holding itself) is shown as
// repr() shows it, "[...]"; one met again elsewhere shares its Value.
func (u *unpickler) value(n *pnode, depth int) (Value, error) {
	switch n.kind {
	case nodeScalar:
		return n.v, nil
	case nodeCodecsEncode, nodeBytesType:
		return Value{}, errors.New("a global is only accepted as the callable of REDUCE")
	}
	switch n.state {
	case stateDone:
		return n.v, nil
	case stateBusy:
		return recursion(n.kind), nil
	}
	if depth >= u.lim.MaxDepth {
		return Value{}, fmt.Errorf("containers nested deeper than %d", u.lim.MaxDepth)
	}
	n.state = stateBusy
	var err error
	if n.kind == nodeDict {
		err = u.dictValue(n, depth)
	} else {
		err = u.seqValue(n, depth)
	}
	if err != nil {
		return Value{}, err
	}
	n.state = stateDone
	n.items, n.keys = nil, nil
	return n.v, nil
}

// seqValue sets the value of a list or tuple node.
func (u *unpickler) seqValue(n *pnode, depth int) error {
	items := make([]Value, len(n.items))
	size := 2 + 2*len(items)
	for i, it := range n.items {
		v, err := u.value(it, depth+1)
		if err != nil {
			return err
		}
		items[i] = v
		size += len(v.Raw)
	}
	if err := u.charge(size); err != nil {
		return err
	}
	if n.kind == nodeList {
		n.v = List(items...)
	} else {
		n.v = Tuple(items...)
	}
	return nil
}

// dictValue sets the value of a dict node.
func (u *unpickler) dictValue(n *pnode, depth int) error {
	pairs := make([]Pair, len(n.items)/2)
	size := 2 + 4*len(pairs)
	for i := range pairs {
		k, err := u.value(n.items[2*i], depth+1)
		if err != nil {
			return err
		}
		v, err := u.value(n.items[2*i+1], depth+1)
		if err != nil {
			return err
		}
		pairs[i] = Pair{Key: k, Value: v}
		size += len(k.Raw) + len(v.Raw)
	}
	if err := u.charge(size); err != nil {
		return err
	}
	n.v = Dict(pairs...)
	return nil
}

// charge counts size bytes of repr() text against MaxRepr.
func (u *unpickler) charge(size int) error {
	if u.spent += size; u.spent > u.lim.MaxRepr {
		return fmt.Errorf("repr() of the result longer than %d bytes", u.lim.MaxRepr)
	}
	return nil
}

// recursion is what repr() writes for a container inside itself.
func recursion(kind nodeKind) Value {
	raw := "[...]"
	switch kind {
	case nodeTuple:
		raw = "(...)"
	case nodeDict:
		raw = "{...}"
	}
	return Value{Kind: KindEllipsis, Raw: raw}
}
