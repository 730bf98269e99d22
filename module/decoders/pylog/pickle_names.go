package pylog

import "fmt"

// opName names an opcode for an error message.
func opName(op byte) string {
	name := opNames(op)
	if name == "" {
		name = "unknown"
	}
	if op > ' ' && op < 0x7f {
		return fmt.Sprintf("%s '%c'", name, op)
	}
	return fmt.Sprintf("%s 0x%02x", name, op)
}

func opNames(op byte) string {
	switch op {
	case '(':
		return "MARK"
	case '.':
		return "STOP"
	case '0':
		return "POP"
	case '1':
		return "POP_MARK"
	case '2':
		return "DUP"
	case 'F':
		return "FLOAT"
	case 'I':
		return "INT"
	case 'J':
		return "BININT"
	case 'K':
		return "BININT1"
	case 'L':
		return "LONG"
	case 'M':
		return "BININT2"
	case 'N':
		return "NONE"
	case 'P':
		return "PERSID"
	case 'Q':
		return "BINPERSID"
	case 'R':
		return "REDUCE"
	case 'S':
		return "STRING"
	case 'T':
		return "BINSTRING"
	case 'U':
		return "SHORT_BINSTRING"
	case 'V':
		return "UNICODE"
	case 'X':
		return "BINUNICODE"
	case 'a':
		return "APPEND"
	case 'b':
		return "BUILD"
	case 'c':
		return "GLOBAL"
	case 'd':
		return "DICT"
	case '}':
		return "EMPTY_DICT"
	case 'e':
		return "APPENDS"
	case 'g':
		return "GET"
	case 'h':
		return "BINGET"
	case 'i':
		return "INST"
	case 'j':
		return "LONG_BINGET"
	case 'l':
		return "LIST"
	case ']':
		return "EMPTY_LIST"
	case 'o':
		return "OBJ"
	case 'p':
		return "PUT"
	case 'q':
		return "BINPUT"
	case 'r':
		return "LONG_BINPUT"
	case 's':
		return "SETITEM"
	case 't':
		return "TUPLE"
	case ')':
		return "EMPTY_TUPLE"
	case 'u':
		return "SETITEMS"
	case 'G':
		return "BINFLOAT"
	case '\x80':
		return "PROTO"
	case '\x81':
		return "NEWOBJ"
	case '\x82':
		return "EXT1"
	case '\x83':
		return "EXT2"
	case '\x84':
		return "EXT4"
	case '\x85':
		return "TUPLE1"
	case '\x86':
		return "TUPLE2"
	case '\x87':
		return "TUPLE3"
	case '\x88':
		return "NEWTRUE"
	case '\x89':
		return "NEWFALSE"
	case '\x8a':
		return "LONG1"
	case '\x8b':
		return "LONG4"
	case 'B':
		return "BINBYTES"
	case 'C':
		return "SHORT_BINBYTES"
	case '\x8c':
		return "SHORT_BINUNICODE"
	case '\x8d':
		return "BINUNICODE8"
	case '\x8e':
		return "BINBYTES8"
	case '\x8f':
		return "EMPTY_SET"
	case '\x90':
		return "ADDITEMS"
	case '\x91':
		return "FROZENSET"
	case '\x92':
		return "NEWOBJ_EX"
	case '\x93':
		return "STACK_GLOBAL"
	case '\x94':
		return "MEMOIZE"
	case '\x95':
		return "FRAME"
	case '\x96':
		return "BYTEARRAY8"
	case '\x97':
		return "NEXT_BUFFER"
	case '\x98':
		return "READONLY_BUFFER"
	}
	return ""
}

// internedStr returns the str of the keys every LogRecord has, and of
// their most common values, without allocating: they are most of the
// strings of a record.
func internedStr(b []byte) (Value, bool) {
	var raw string
	switch string(b) {
	case "name":
		raw = "'name'"
	case "msg":
		raw = "'msg'"
	case "args":
		raw = "'args'"
	case "levelname":
		raw = "'levelname'"
	case "levelno":
		raw = "'levelno'"
	case "pathname":
		raw = "'pathname'"
	case "filename":
		raw = "'filename'"
	case "module":
		raw = "'module'"
	case "exc_info":
		raw = "'exc_info'"
	case "exc_text":
		raw = "'exc_text'"
	case "stack_info":
		raw = "'stack_info'"
	case "lineno":
		raw = "'lineno'"
	case "funcName":
		raw = "'funcName'"
	case "created":
		raw = "'created'"
	case "msecs":
		raw = "'msecs'"
	case "relativeCreated":
		raw = "'relativeCreated'"
	case "thread":
		raw = "'thread'"
	case "threadName":
		raw = "'threadName'"
	case "processName":
		raw = "'processName'"
	case "process":
		raw = "'process'"
	case "taskName":
		raw = "'taskName'"
	case "message":
		raw = "'message'"
	case "asctime":
		raw = "'asctime'"
	case "MainThread":
		raw = "'MainThread'"
	case "MainProcess":
		raw = "'MainProcess'"
	case "DEBUG":
		raw = "'DEBUG'"
	case "INFO":
		raw = "'INFO'"
	case "WARNING":
		raw = "'WARNING'"
	case "ERROR":
		raw = "'ERROR'"
	case "CRITICAL":
		raw = "'CRITICAL'"
	case "latin1":
		raw = "'latin1'"
	default:
		return Value{}, false
	}
	return Value{Kind: KindStr, Raw: raw, Str: raw[1 : len(raw)-1]}, true
}
