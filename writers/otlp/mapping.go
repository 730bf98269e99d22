package otlp

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"math"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	collogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	common "go.opentelemetry.io/proto/otlp/common/v1"
	logs "go.opentelemetry.io/proto/otlp/logs/v1"
	resource "go.opentelemetry.io/proto/otlp/resource/v1"

	"github.com/caddy-applog/caddy-applog/internal/forward"
)

// mapper turns JSON log entries into an OTLP export: one ResourceLogs
// per (service.name, host.name), one ScopeLogs per logger within it.
type mapper struct {
	// hostname is host.name for entries without a host field (Caddy's
	// own loggers: this machine).
	hostname string
	// extra resource attributes, after service.name and host.name.
	extra []*common.KeyValue
	now   func() time.Time
}

// caddyService is service.name for entries that name no app.
const caddyService = "caddy"

type resKey struct{ service, host string }

// export maps recs onto one request, in order within each resource and
// scope.
func (m *mapper) export(recs []forward.Record) *collogs.ExportLogsServiceRequest {
	observed := uint64(m.now().UnixNano())
	req := &collogs.ExportLogsServiceRequest{}
	resources := map[resKey]*logs.ResourceLogs{}
	scopes := map[*logs.ResourceLogs]map[string]*logs.ScopeLogs{}
	for _, r := range recs {
		lr, service, host, scope := m.record(r)
		lr.ObservedTimeUnixNano = observed
		k := resKey{service, host}
		rl := resources[k]
		if rl == nil {
			attrs := []*common.KeyValue{strKV("service.name", service), strKV("host.name", host)}
			rl = &logs.ResourceLogs{Resource: &resource.Resource{Attributes: append(attrs, m.extra...)}}
			resources[k] = rl
			scopes[rl] = map[string]*logs.ScopeLogs{}
			req.ResourceLogs = append(req.ResourceLogs, rl)
		}
		sl := scopes[rl][scope]
		if sl == nil {
			sl = &logs.ScopeLogs{Scope: &common.InstrumentationScope{Name: scope}}
			scopes[rl][scope] = sl
			rl.ScopeLogs = append(rl.ScopeLogs, sl)
		}
		sl.LogRecords = append(sl.LogRecords, lr)
	}
	return req
}

// record maps one entry. An entry that is not a JSON object becomes a
// record whose body is the line.
func (m *mapper) record(r forward.Record) (lr *logs.LogRecord, service, host, scope string) {
	lr = &logs.LogRecord{TimeUnixNano: uint64(r.Time)}
	service, host = caddyService, m.hostname
	var entry map[string]any
	dec := json.NewDecoder(bytes.NewReader(r.Data))
	dec.UseNumber()
	if err := dec.Decode(&entry); err != nil || entry == nil || dec.More() {
		lr.Body = strAV(string(r.Data))
		return lr, service, host, ""
	}
	if t, ok := entryTime(entry["ts"]); ok {
		lr.TimeUnixNano = t
	}
	lr.SeverityNumber, lr.SeverityText = severity(entry)
	if msg, ok := entry["msg"].(string); ok {
		lr.Body = strAV(msg)
	} else if v, ok := entry["msg"]; ok {
		lr.Body = anyValue(v)
	}
	if app, ok := entry["app"].(string); ok && app != "" {
		service = app
	}
	if h, ok := entry["host"].(string); ok && h != "" {
		host = h
	}
	scope, _ = entry["logger"].(string)
	traceContext(lr, entry)
	for _, k := range []string{"ts", "level", "level_no", "level_name", "msg", "app", "host", "logger"} {
		delete(entry, k)
	}
	if strings.HasPrefix(scope, "http.log.access") {
		lr.Attributes = accessAttributes(entry)
	}
	lr.Attributes = append(lr.Attributes, kvs(entry)...)
	return lr, service, host, scope
}

// traceContext moves trace_id, span_id and trace_flags (hex, as
// log_ingest's OTLP door keeps them under attrs, or at the top as
// tracing loggers write them) into the record's own fields.
func traceContext(lr *logs.LogRecord, entry map[string]any) {
	from := entry
	if _, ok := entry["trace_id"]; !ok {
		attrs, _ := entry["attrs"].(map[string]any)
		if _, ok := attrs["trace_id"]; !ok {
			return
		}
		from = attrs
	}
	take := func(k string, n int) []byte {
		s, _ := from[k].(string)
		b, err := hex.DecodeString(s)
		if err != nil || len(b) != n {
			return nil
		}
		delete(from, k)
		return b
	}
	if lr.TraceId = take("trace_id", 16); lr.TraceId == nil {
		return
	}
	lr.SpanId = take("span_id", 8)
	if f, ok := from["trace_flags"].(json.Number); ok {
		if n, err := strconv.ParseUint(string(f), 10, 8); err == nil {
			lr.Flags = uint32(n)
			delete(from, "trace_flags")
		}
	}
	if len(from) == 0 {
		delete(entry, "attrs")
	}
}

// entryTime reads ts as zap writes it: Unix seconds with a fraction
// (epoch, the default), or an integer of seconds, milliseconds,
// microseconds or nanoseconds (told apart by size), or RFC 3339 text.
// A decimal is read from its digits: a float64 would lose the
// nanoseconds of today's times.
func entryTime(v any) (uint64, bool) {
	switch ts := v.(type) {
	case json.Number:
		intPart, frac, hasFrac := strings.Cut(string(ts), ".")
		n, err := strconv.ParseUint(intPart, 10, 64)
		if err != nil {
			// An exponent or a sign: as a float, to the microsecond.
			f, err := ts.Float64()
			if err != nil || f <= 0 || f > math.MaxInt64/1e9 {
				return 0, false
			}
			return uint64(math.Round(f*1e6)) * 1e3, true
		}
		if !hasFrac {
			switch {
			case n > 1e17:
				return n, true
			case n > 1e14:
				return n * 1e3, true
			case n > 1e11:
				return n * 1e6, true
			}
		} else if n > 1e11 { // epoch_millis with a fraction
			return n * 1e6, true
		}
		if len(frac) > 9 {
			frac = frac[:9]
		}
		nanos, err := strconv.ParseUint(frac+strings.Repeat("0", 9-len(frac)), 10, 64)
		if err != nil {
			return 0, false
		}
		return n*1e9 + nanos, true
	case string:
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			return 0, false
		}
		return uint64(t.UnixNano()), true
	}
	return 0, false
}

// severity is the inverse of log_ingest's table (docs/log_ingest.md):
// from level_no when the entry has one (OTel's number is slog's level
// plus 9; Python's 10, 20, 30, 40, 50 are slog's -4, 0, 4, 8, 12), else
// from zap's level. The text is level_name, else the level upper-cased.
func severity(entry map[string]any) (logs.SeverityNumber, string) {
	level, _ := entry["level"].(string)
	text, _ := entry["level_name"].(string)
	if text == "" {
		text = strings.ToUpper(level)
	}
	if no, ok := entry["level_no"].(json.Number); ok {
		if f, err := no.Float64(); err == nil {
			n := math.Round(9 + (f-20)*0.4)
			return logs.SeverityNumber(max(1, min(24, n))), text
		}
	}
	return zapSeverity[level], text
}

// zapSeverity is OTel's number of each zap level; another is
// unspecified (0).
var zapSeverity = map[string]logs.SeverityNumber{
	"debug":  logs.SeverityNumber_SEVERITY_NUMBER_DEBUG,
	"info":   logs.SeverityNumber_SEVERITY_NUMBER_INFO,
	"warn":   logs.SeverityNumber_SEVERITY_NUMBER_WARN,
	"error":  logs.SeverityNumber_SEVERITY_NUMBER_ERROR,
	"dpanic": logs.SeverityNumber_SEVERITY_NUMBER_FATAL,
	"panic":  logs.SeverityNumber_SEVERITY_NUMBER_FATAL2,
	"fatal":  logs.SeverityNumber_SEVERITY_NUMBER_FATAL4,
}

// accessAttributes takes the fields of a Caddy access log entry that
// OTel's HTTP semantic conventions name out of entry and returns them
// as those attributes; what they do not name stays in entry (the
// request's headers under "request", for one).
func accessAttributes(entry map[string]any) []*common.KeyValue {
	var out []*common.KeyValue
	req, _ := entry["request"].(map[string]any)
	take := func(m map[string]any, k string) (any, bool) {
		v, ok := m[k]
		if ok {
			delete(m, k)
		}
		return v, ok
	}
	takeStr := func(m map[string]any, k string) string {
		v, _ := take(m, k)
		s, _ := v.(string)
		return s
	}
	if req != nil {
		if s := takeStr(req, "method"); s != "" {
			out = append(out, strKV("http.request.method", s))
		}
		if s := takeStr(req, "uri"); s != "" {
			if u, err := url.ParseRequestURI(s); err == nil {
				out = append(out, strKV("url.path", u.Path))
				if u.RawQuery != "" {
					out = append(out, strKV("url.query", u.RawQuery))
				}
			} else {
				out = append(out, strKV("url.path", s))
			}
		}
		if s := takeStr(req, "proto"); s != "" {
			name, version, _ := strings.Cut(s, "/")
			out = append(out, strKV("network.protocol.name", strings.ToLower(name)))
			out = append(out, strKV("network.protocol.version", strings.TrimSuffix(version, ".0")))
		}
		if s := takeStr(req, "host"); s != "" {
			host, port, err := net.SplitHostPort(s)
			if err != nil {
				host, port = s, ""
			}
			out = append(out, strKV("server.address", host))
			if p, err := strconv.ParseInt(port, 10, 64); err == nil {
				out = append(out, intKV("server.port", p))
			}
		}
		remote := takeStr(req, "remote_ip")
		client := takeStr(req, "client_ip")
		if client == "" {
			client = remote
		}
		if client != "" {
			out = append(out, strKV("client.address", client))
		}
		if remote != "" {
			out = append(out, strKV("network.peer.address", remote))
		}
		if s := takeStr(req, "remote_port"); s != "" {
			if p, err := strconv.ParseInt(s, 10, 64); err == nil {
				out = append(out, intKV("network.peer.port", p))
			}
		}
		if h, ok := req["headers"].(map[string]any); ok {
			if ua, ok := h["User-Agent"].([]any); ok && len(ua) > 0 {
				if s, ok := ua[0].(string); ok {
					out = append(out, strKV("user_agent.original", s))
				}
			}
		}
		if len(req) == 0 {
			delete(entry, "request")
		}
	}
	num := func(k, attr string) {
		if v, ok := entry[k].(json.Number); ok {
			if n, err := v.Int64(); err == nil {
				out = append(out, intKV(attr, n))
				delete(entry, k)
			}
		}
	}
	num("status", "http.response.status_code")
	num("size", "http.response.body.size")
	num("bytes_read", "http.request.body.size")
	return out
}

// kvs maps an object's members, in key order (a decoded JSON object
// keeps none).
func kvs(m map[string]any) []*common.KeyValue {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]*common.KeyValue, 0, len(keys))
	for _, k := range keys {
		out = append(out, &common.KeyValue{Key: k, Value: anyValue(m[k])})
	}
	return out
}

// anyValue maps a decoded JSON value: objects become kvlists, integers
// ints, other numbers doubles.
func anyValue(v any) *common.AnyValue {
	switch x := v.(type) {
	case string:
		return strAV(x)
	case bool:
		return &common.AnyValue{Value: &common.AnyValue_BoolValue{BoolValue: x}}
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return &common.AnyValue{Value: &common.AnyValue_IntValue{IntValue: n}}
		}
		f, _ := x.Float64()
		return &common.AnyValue{Value: &common.AnyValue_DoubleValue{DoubleValue: f}}
	case map[string]any:
		return &common.AnyValue{Value: &common.AnyValue_KvlistValue{KvlistValue: &common.KeyValueList{Values: kvs(x)}}}
	case []any:
		vals := make([]*common.AnyValue, len(x))
		for i, e := range x {
			vals[i] = anyValue(e)
		}
		return &common.AnyValue{Value: &common.AnyValue_ArrayValue{ArrayValue: &common.ArrayValue{Values: vals}}}
	}
	return &common.AnyValue{} // null: an empty value
}

func strAV(s string) *common.AnyValue {
	return &common.AnyValue{Value: &common.AnyValue_StringValue{StringValue: s}}
}

func strKV(k, v string) *common.KeyValue { return &common.KeyValue{Key: k, Value: strAV(v)} }

func intKV(k string, v int64) *common.KeyValue {
	return &common.KeyValue{Key: k, Value: &common.AnyValue{Value: &common.AnyValue_IntValue{IntValue: v}}}
}
