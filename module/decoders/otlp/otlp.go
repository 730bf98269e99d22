// Package otlp decodes OpenTelemetry log exports (OTLP/HTTP: an
// ExportLogsServiceRequest as protobuf or as OTLP's JSON) into records.
//
// Each log record becomes one intake.Record:
//
//	app        resource attribute service.name (none for the SDKs' unknown_service default)
//	logger     attribute "logger", else the instrumentation scope's name, else attribute code.namespace
//	level      severity_number (OTel's 1-24 mapped onto Python's scale), else severity_text
//	level name severity_text, else OTel's short name of the number (INFO2)
//	message    the body when it is a string, number or bool; a structured body's
//	           "message" or "msg" string
//	time       time_unix_nano, else observed_time_unix_nano, else the arrival time
//	attrs      the record's attributes in order, then body (a structured body),
//	           trace_id and span_id (hex), trace_flags, event_name, scope_version,
//	           and resource (every resource attribute but service.name, host.name included)
//
// The decoder is a pure function with hard limits (Limits): a protobuf
// body is scanned, and its messages counted, before any is allocated.
package otlp

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	collogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	common "go.opentelemetry.io/proto/otlp/common/v1"
	logs "go.opentelemetry.io/proto/otlp/logs/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/caddy-applog/caddy-applog/module/intake"
)

// Format is the encoding of a request body.
type Format uint8

// The two encodings of OTLP/HTTP.
const (
	Protobuf Format = iota // application/x-protobuf
	JSON                   // application/json, OTLP's proto3 JSON mapping
)

// Limits bound what one request may make the decoder do.
type Limits struct {
	// MaxRecords is the most log records one request may hold.
	MaxRecords int
	// MaxValues is the most messages (resources, scopes, records,
	// attributes, values) one request may hold.
	MaxValues int
	// MaxDepth is the deepest nesting of messages allowed; an array or
	// map value takes two levels.
	MaxDepth int
}

// DefaultLimits are used for zero fields of Limits.
var DefaultLimits = Limits{MaxRecords: 10000, MaxValues: 250000, MaxDepth: 128}

func (l Limits) withDefaults() Limits {
	if l.MaxRecords <= 0 {
		l.MaxRecords = DefaultLimits.MaxRecords
	}
	if l.MaxValues <= 0 {
		l.MaxValues = DefaultLimits.MaxValues
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultLimits.MaxDepth
	}
	return l
}

// maxContextShare is how much of its resource's and scope's size a
// record may count as its own Wire: the resource is copied into every
// record, so counting it whole would let one large resource be
// multiplied by the number of records under it.
const maxContextShare = 1024

// Decode parses body, an ExportLogsServiceRequest in format, into
// records; records without a time get now. An error wraps ErrLimit when
// the body is over lim, and says what is wrong otherwise.
func Decode(body []byte, format Format, lim Limits, now time.Time) ([]intake.Record, error) {
	lim = lim.withDefaults()
	req := new(collogs.ExportLogsServiceRequest)
	switch format {
	case Protobuf:
		s := scanner{lim: lim}
		if err := s.scan(body, kRequest, 0); err != nil {
			return nil, err
		}
		opts := proto.UnmarshalOptions{DiscardUnknown: true, RecursionLimit: lim.MaxDepth + 1}
		if err := opts.Unmarshal(body, req); err != nil {
			return nil, fmt.Errorf("invalid protobuf: %w", err)
		}
	case JSON:
		// Every message in JSON is an object: its braces bound the
		// messages before any is made.
		if n := bytes.Count(body, []byte{'{'}); n > lim.MaxValues {
			return nil, fmt.Errorf("%w: more than %d objects in one request", ErrLimit, lim.MaxValues)
		}
		opts := protojson.UnmarshalOptions{DiscardUnknown: true, RecursionLimit: lim.MaxDepth + 1}
		if err := opts.Unmarshal(body, req); err != nil {
			return nil, fmt.Errorf("invalid OTLP JSON: %w", err)
		}
	default:
		return nil, fmt.Errorf("unknown format %d", format)
	}
	return records(req, format, lim, now)
}

func records(req *collogs.ExportLogsServiceRequest, format Format, lim Limits, now time.Time) ([]intake.Record, error) {
	n := 0
	for _, rl := range req.ResourceLogs {
		for _, sl := range rl.ScopeLogs {
			n += len(sl.LogRecords)
		}
	}
	if n > lim.MaxRecords {
		return nil, fmt.Errorf("%w: more than %d log records in one request", ErrLimit, lim.MaxRecords)
	}
	if n == 0 {
		return nil, nil
	}
	recs := make([]intake.Record, 0, n)
	var d decoder
	d.format, d.depth = format, lim.MaxDepth
	for i, rl := range req.ResourceLogs {
		app, resource := d.resource(rl.Resource)
		resSize := proto.Size(rl.Resource)
		for j, sl := range rl.ScopeLogs {
			share := min(resSize+proto.Size(sl.Scope), maxContextShare)
			for k, lr := range sl.LogRecords {
				if lr == nil {
					continue
				}
				rec, err := d.record(lr, sl.Scope, now)
				if err != nil {
					return nil, fmt.Errorf("resource_logs[%d].scope_logs[%d].log_records[%d]: %w", i, j, k, err)
				}
				rec.App = app
				if resource.Str != "" {
					rec.Attrs = append(rec.Attrs, intake.Attr{Key: "resource", Value: resource})
				}
				rec.Wire = proto.Size(lr) + share
				recs = append(recs, rec)
			}
		}
	}
	return recs, nil
}

type decoder struct {
	format Format
	depth  int
	buf    []byte
}

// resource returns the app service.name names, and the other resource
// attributes as one JSON object.
func (d *decoder) resource(r interface {
	GetAttributes() []*common.KeyValue
}) (string, intake.Value) {
	attrs := r.GetAttributes()
	app := ""
	b := d.buf[:0]
	b = append(b, '{')
	for _, kv := range attrs {
		if kv == nil {
			continue
		}
		if kv.Key == "service.name" {
			if s, ok := kv.Value.GetValue().(*common.AnyValue_StringValue); ok && !strings.HasPrefix(s.StringValue, "unknown_service") {
				// The SDKs' default when no service.name is configured
				// (unknown_service:<process>) names no app.
				app = s.StringValue
			}
			continue
		}
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = appendString(b, kv.Key)
		b = append(b, ':')
		b = d.appendAny(b, kv.Value, 0)
	}
	d.buf = b
	if len(b) == 1 {
		return app, intake.Value{}
	}
	return app, intake.JSON(string(append(b, '}')))
}

func (d *decoder) record(lr *logs.LogRecord, scope *common.InstrumentationScope, now time.Time) (intake.Record, error) {
	var rec intake.Record
	switch t := lr.TimeUnixNano; {
	case t > 0 && t <= math.MaxInt64:
		rec.Time = time.Unix(0, int64(t))
	case lr.ObservedTimeUnixNano > 0 && lr.ObservedTimeUnixNano <= math.MaxInt64:
		rec.Time = time.Unix(0, int64(lr.ObservedTimeUnixNano))
	default:
		rec.Time = now
	}
	if err := level(&rec, lr.SeverityNumber, lr.SeverityText); err != nil {
		return rec, err
	}
	rec.Attrs = make([]intake.Attr, 0, len(lr.Attributes)+6)
	namespace := ""
	hasLogger := false
	for _, kv := range lr.Attributes {
		if kv == nil {
			continue
		}
		if s, ok := kv.Value.GetValue().(*common.AnyValue_StringValue); ok {
			switch {
			case kv.Key == "logger" && !hasLogger:
				rec.Logger, hasLogger = s.StringValue, true
				continue
			case kv.Key == "code.namespace" && namespace == "":
				namespace = s.StringValue
			}
		}
		rec.Attrs = append(rec.Attrs, intake.Attr{Key: kv.Key, Value: d.value(kv.Value)})
	}
	if !hasLogger {
		rec.Logger = scope.GetName()
		if rec.Logger == "" {
			rec.Logger = namespace
		}
	}
	switch v := lr.Body.GetValue().(type) {
	case nil:
	case *common.AnyValue_StringValue:
		rec.Message = v.StringValue
	case *common.AnyValue_KvlistValue:
		for _, kv := range v.KvlistValue.GetValues() {
			if s, ok := kv.GetValue().GetValue().(*common.AnyValue_StringValue); ok && (kv.Key == "message" || kv.Key == "msg") {
				rec.Message = s.StringValue
				break
			}
		}
		rec.Attrs = append(rec.Attrs, intake.Attr{Key: "body", Value: d.value(lr.Body)})
	case *common.AnyValue_ArrayValue, *common.AnyValue_BytesValue:
		rec.Attrs = append(rec.Attrs, intake.Attr{Key: "body", Value: d.value(lr.Body)})
	default:
		rec.Message = d.value(lr.Body).String()
	}
	if err := d.ids(&rec, lr); err != nil {
		return rec, err
	}
	if f := lr.Flags & 0xff; f != 0 {
		rec.Attrs = append(rec.Attrs, intake.Attr{Key: "trace_flags", Value: intake.Int(int64(f))})
	}
	if lr.EventName != "" {
		rec.Attrs = append(rec.Attrs, intake.Attr{Key: "event_name", Value: intake.String(lr.EventName)})
	}
	if v := scope.GetVersion(); v != "" {
		rec.Attrs = append(rec.Attrs, intake.Attr{Key: "scope_version", Value: intake.String(v)})
	}
	return rec, nil
}

// ids keeps the trace and span ids as hex. OTLP's JSON writes them in
// hex where proto3's JSON mapping has base64: protojson has decoded the
// hex digits as base64, which, for the 32 and 16 digits of valid ids,
// encodes back to exactly the digits sent.
func (d *decoder) ids(rec *intake.Record, lr *logs.LogRecord) error {
	for _, id := range [...]struct {
		key  string
		b    []byte
		size int
	}{{"trace_id", lr.TraceId, 16}, {"span_id", lr.SpanId, 8}} {
		if len(id.b) == 0 {
			continue
		}
		var s string
		if d.format == JSON {
			s = strings.ToLower(base64.StdEncoding.EncodeToString(id.b))
			if _, err := hex.DecodeString(s); err != nil || len(s) != 2*id.size {
				return fmt.Errorf("%s: want %d hex digits", id.key, 2*id.size)
			}
		} else {
			if len(id.b) != id.size {
				return fmt.Errorf("%s: want %d bytes, got %d", id.key, id.size, len(id.b))
			}
			s = hex.EncodeToString(id.b)
		}
		if strings.Trim(s, "0") == "" {
			continue // all zero: no trace
		}
		rec.Attrs = append(rec.Attrs, intake.Attr{Key: id.key, Value: intake.String(s)})
	}
	return nil
}

// severityNames are OTel's short names of severity numbers 1 to 24.
var severityNames = [...]string{"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"}

// SeverityName returns OTel's short name of severity n (1 to 24): INFO,
// INFO2, ... WARN4.
func SeverityName(n int) string {
	if n < 1 || n > 24 {
		return ""
	}
	name := severityNames[(n-1)/4]
	if k := (n-1)%4 + 1; k > 1 {
		name += strconv.Itoa(k)
	}
	return name
}

// Level maps OTel's severity number (1 to 24) onto Python's scale.
// OTel's scale is slog's shifted by 9 (INFO is 9 where slog's is 0; OTel's
// data model maps Go's slog so), so it maps as slog's levels do
// everywhere in the plugin: DEBUG 10, INFO 20, INFO3 25, WARN 30,
// ERROR 40, FATAL 50, each step between 2 or 3. TRACE is 1 to 8.
func Level(n int) int {
	return max(intake.FromSlog(n-9), 1)
}

func level(rec *intake.Record, num logs.SeverityNumber, text string) error {
	n := int(num)
	switch {
	case n < 0 || n > 24:
		return fmt.Errorf("severity_number %d: want 0 (unspecified) to 24", n)
	case n > 0:
		rec.LevelNo, rec.LevelName = Level(n), text
		if text == "" {
			rec.LevelName = SeverityName(n)
		}
	case text != "":
		l, ok := intake.ParseLevel(text)
		if !ok {
			return fmt.Errorf("unknown severity_text %q and no severity_number", intake.Brief(text))
		}
		rec.LevelNo, rec.LevelName = l, text
	default:
		rec.LevelNo, rec.LevelName = intake.LevelInfo, "INFO"
	}
	return nil
}

// value converts an AnyValue: scalars as they are, bytes as base64 (as
// OTLP's JSON writes them), arrays and maps as JSON documents.
func (d *decoder) value(v *common.AnyValue) intake.Value {
	switch x := v.GetValue().(type) {
	case *common.AnyValue_StringValue:
		return intake.String(x.StringValue)
	case *common.AnyValue_BoolValue:
		return intake.Bool(x.BoolValue)
	case *common.AnyValue_IntValue:
		return intake.Int(x.IntValue)
	case *common.AnyValue_DoubleValue:
		return intake.Float(x.DoubleValue)
	case *common.AnyValue_BytesValue:
		return intake.String(base64.StdEncoding.EncodeToString(x.BytesValue))
	case *common.AnyValue_ArrayValue, *common.AnyValue_KvlistValue:
		b := d.appendAny(d.buf[:0], v, 0)
		d.buf = b
		return intake.JSON(string(b))
	}
	return intake.Null()
}

// appendAny appends v as JSON. The scan and the unmarshaller have bounded
// the depth already; depth guards it on its own.
func (d *decoder) appendAny(b []byte, v *common.AnyValue, depth int) []byte {
	if depth > d.depth {
		return append(b, "null"...)
	}
	switch x := v.GetValue().(type) {
	case *common.AnyValue_StringValue:
		return appendString(b, x.StringValue)
	case *common.AnyValue_BoolValue:
		return strconv.AppendBool(b, x.BoolValue)
	case *common.AnyValue_IntValue:
		return strconv.AppendInt(b, x.IntValue, 10)
	case *common.AnyValue_DoubleValue:
		f := x.DoubleValue
		if math.IsNaN(f) || math.IsInf(f, 0) {
			// JSON has no such numbers; OTLP's JSON writes them so.
			return appendString(b, strconv.FormatFloat(f, 'g', -1, 64))
		}
		return strconv.AppendFloat(b, f, 'g', -1, 64)
	case *common.AnyValue_BytesValue:
		return appendString(b, base64.StdEncoding.EncodeToString(x.BytesValue))
	case *common.AnyValue_ArrayValue:
		b = append(b, '[')
		for i, e := range x.ArrayValue.GetValues() {
			if i > 0 {
				b = append(b, ',')
			}
			b = d.appendAny(b, e, depth+1)
		}
		return append(b, ']')
	case *common.AnyValue_KvlistValue:
		b = append(b, '{')
		for i, kv := range x.KvlistValue.GetValues() {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, kv.GetKey())
			b = append(b, ':')
			b = d.appendAny(b, kv.GetValue(), depth+1)
		}
		return append(b, '}')
	}
	return append(b, "null"...)
}

// appendString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always marshals
	return append(b, q...)
}
