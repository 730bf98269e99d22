package otlp

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// ErrLimit is wrapped by the errors of a request over one of the
// decoder's Limits; a door answers it as too large (413) rather than
// malformed.
var ErrLimit = errors.New("over the decoder's limits")

// msgKind names the OTLP messages a log export holds, for the scan.
type msgKind uint8

const (
	kNone msgKind = iota
	kRequest
	kResourceLogs
	kResource
	kScopeLogs
	kScope
	kLogRecord
	kKeyValue
	kAnyValue
	kArray
	kKVList
	kOpaque // a message of no interest here (an EntityRef): counted, not entered
)

// child returns the kind of message field num of a k holds, or kNone
// for a scalar, a string or a field this decoder does not know.
func child(k msgKind, num protowire.Number) msgKind {
	switch k {
	case kRequest:
		if num == 1 {
			return kResourceLogs
		}
	case kResourceLogs:
		switch num {
		case 1:
			return kResource
		case 2:
			return kScopeLogs
		}
	case kResource:
		switch num {
		case 1:
			return kKeyValue
		case 3:
			return kOpaque
		}
	case kScopeLogs:
		switch num {
		case 1:
			return kScope
		case 2:
			return kLogRecord
		}
	case kScope:
		if num == 3 {
			return kKeyValue
		}
	case kLogRecord:
		switch num {
		case 5:
			return kAnyValue
		case 6:
			return kKeyValue
		}
	case kKeyValue:
		if num == 2 {
			return kAnyValue
		}
	case kAnyValue:
		switch num {
		case 5:
			return kArray
		case 6:
			return kKVList
		}
	case kArray:
		if num == 1 {
			return kAnyValue
		}
	case kKVList:
		if num == 1 {
			return kKeyValue
		}
	}
	return kNone
}

// scanner counts what a protobuf body would make before it is decoded:
// the generated types take some 50 bytes of memory per message, and a
// message can take 2 bytes on the wire, so a body's messages are
// counted, and its nesting measured, before any is allocated.
type scanner struct {
	lim      Limits
	records  int
	messages int
}

func (s *scanner) scan(b []byte, k msgKind, depth int) error {
	if depth > s.lim.MaxDepth {
		return fmt.Errorf("%w: values nested deeper than %d", ErrLimit, s.lim.MaxDepth)
	}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("invalid protobuf: %w", protowire.ParseError(n))
		}
		b = b[n:]
		if c := child(k, num); c != kNone && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return fmt.Errorf("invalid protobuf: %w", protowire.ParseError(n))
			}
			b = b[n:]
			if s.messages++; s.messages > s.lim.MaxValues {
				return fmt.Errorf("%w: more than %d messages (records, attributes, values) in one request", ErrLimit, s.lim.MaxValues)
			}
			if c == kLogRecord {
				if s.records++; s.records > s.lim.MaxRecords {
					return fmt.Errorf("%w: more than %d log records in one request", ErrLimit, s.lim.MaxRecords)
				}
			}
			if c == kOpaque {
				continue
			}
			if err := s.scan(v, c, depth+1); err != nil {
				return err
			}
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return fmt.Errorf("invalid protobuf: %w", protowire.ParseError(n))
		}
		b = b[n:]
	}
	return nil
}
