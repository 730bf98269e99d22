package otlp

// The mapping as it was before it scanned entries itself: each entry
// decoded by encoding/json into a map. The tests hold the mapping to it
// (TestMappingMatchesReference, FuzzMappingMatchesReference).

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
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	collogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	common "go.opentelemetry.io/proto/otlp/common/v1"
	logs "go.opentelemetry.io/proto/otlp/logs/v1"
	resource "go.opentelemetry.io/proto/otlp/resource/v1"

	"github.com/caddy-applog/caddy-applog/internal/forward"
)

// refExport maps recs onto one request, in order within each resource and
// scope.
func (m *mapper) refExport(recs []forward.Record) *collogs.ExportLogsServiceRequest {
	observed := uint64(m.now().UnixNano())
	req := &collogs.ExportLogsServiceRequest{}
	resources := map[resKey]*logs.ResourceLogs{}
	scopes := map[*logs.ResourceLogs]map[string]*logs.ScopeLogs{}
	for _, r := range recs {
		lr, service, host, scope := m.refRecord(r)
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
func (m *mapper) refRecord(r forward.Record) (lr *logs.LogRecord, service, host, scope string) {
	lr = &logs.LogRecord{TimeUnixNano: uint64(r.Time)}
	service, host = caddyService, m.hostname
	var entry map[string]any
	dec := json.NewDecoder(bytes.NewReader(r.Data))
	dec.UseNumber()
	if err := dec.Decode(&entry); err != nil || entry == nil || dec.More() {
		lr.Body = strAV(strings.ToValidUTF8(string(r.Data), "\uFFFD"))
		return lr, service, host, ""
	}
	if t, ok := refEntryTime(entry["ts"]); ok {
		lr.TimeUnixNano = t
	}
	lr.SeverityNumber, lr.SeverityText = refSeverity(entry)
	if msg, ok := entry["msg"].(string); ok {
		lr.Body = strAV(msg)
	} else if v, ok := entry["msg"]; ok {
		lr.Body = refAnyValue(v)
	}
	if app, ok := entry["app"].(string); ok && app != "" {
		service = app
	}
	if h, ok := entry["host"].(string); ok && h != "" {
		host = h
	}
	scope, _ = entry["logger"].(string)
	refTraceContext(lr, entry)
	for _, k := range []string{"ts", "level", "level_no", "level_name", "msg", "app", "host", "logger"} {
		delete(entry, k)
	}
	if strings.HasPrefix(scope, "http.log.access") {
		lr.Attributes = refAccessAttributes(entry)
	}
	lr.Attributes = append(lr.Attributes, refKVs(entry)...)
	return lr, service, host, scope
}

// traceContext moves trace_id, span_id and trace_flags (hex, as
// log_ingest's OTLP door keeps them under attrs, or at the top as
// tracing loggers write them) into the record's own fields.
func refTraceContext(lr *logs.LogRecord, entry map[string]any) {
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
func refEntryTime(v any) (uint64, bool) {
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
func refSeverity(entry map[string]any) (logs.SeverityNumber, string) {
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
	return zapSeverity[level], text // the table is unchanged
}

// accessAttributes takes the fields of a Caddy access log entry that
// OTel's HTTP semantic conventions name out of entry and returns them
// as those attributes; what they do not name stays in entry (the
// request's headers under "request", for one).
func refAccessAttributes(entry map[string]any) []*common.KeyValue {
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
				out = append(out, refIntKV("server.port", p))
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
				out = append(out, refIntKV("network.peer.port", p))
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
				out = append(out, refIntKV(attr, n))
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
func refKVs(m map[string]any) []*common.KeyValue {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]*common.KeyValue, 0, len(keys))
	for _, k := range keys {
		out = append(out, &common.KeyValue{Key: k, Value: refAnyValue(m[k])})
	}
	return out
}

// anyValue maps a decoded JSON value: objects become kvlists, integers
// ints, other numbers doubles.
func refAnyValue(v any) *common.AnyValue {
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
		return &common.AnyValue{Value: &common.AnyValue_KvlistValue{KvlistValue: &common.KeyValueList{Values: refKVs(x)}}}
	case []any:
		vals := make([]*common.AnyValue, len(x))
		for i, e := range x {
			vals[i] = refAnyValue(e)
		}
		return &common.AnyValue{Value: &common.AnyValue_ArrayValue{ArrayValue: &common.ArrayValue{Values: vals}}}
	}
	return &common.AnyValue{} // null: an empty value
}

func refIntKV(k string, v int64) *common.KeyValue {
	return &common.KeyValue{Key: k, Value: &common.AnyValue{Value: &common.AnyValue_IntValue{IntValue: v}}}
}

// refCorpus is entries at the edges of JSON and of the mapping; with
// the benchmark's, they seed FuzzMappingMatchesReference.
var refCorpus = []string{
	// JSON's edges: each either maps the same or is the line.
	`{}`, ` { "a" : [ 1 , { } , [ ] ] , "b" : null , "c":true,"d":false} `, "\t{\"a\":1}\r\n",
	`{"a":1,"a":2}`, `{"o":{"b":1,"a":2,"b":3},"msg":"m","msg":"n"}`, `{"b":1,"a":2,"c":{"z":[{"y":1,"x":2}]}}`,
	`{"msg":"a\"b\\c\/d\b\f\n\r\t\u0041\u00e9\ud83d\ude00 end"}`, `{"msg":"\ud800"}`, `{"msg":"\ud800\u0041"}`,
	`{"msg":"\udc00\ud800"}`, `{"msg":"\ud800\ud800\udc00"}`, `{"msg":"\ud83d\ude00\ud83d"}`, `{"msg":"\u0000\u001f"}`,
	"{\"msg\":\"\xff\xfe ok \xed\xa0\x80 \xe2\x82\"}", "{\"k\xff\":\"v\",\"\xef\xbf\xbd\":1}", "{\"msg\":\"caf\xc3\xa9 \\n \xc3\"}",
	`{"\u006dsg":"escaped key","\u0061pp":"esc"}`, `{"msg":"a","":"empty key"}`,
	`{"n":[-0,0,1e3,1E+3,1.5e-3,9223372036854775807,9223372036854775808,-9223372036854775808,-9223372036854775809,1e400,-1e400,1e-400,0.1,123456789012345678901234567890]}`,
	`{"a":01}`, `{"a":-}`, `{"a":1.}`, `{"a":.5}`, `{"a":+1}`, `{"a":1e}`, `{"a":1e+}`, `{"a":tru}`, `{"a":nul}`, `{"a":falsey}`,
	"{\"a\":\"\x01\"}", "{\"a\":\"ok \x1f\"}", `{"a":"\'"}`, `{"a":"\u12"}`, `{"a":"\u12g4"}`, `{"a":"\x"}`, `{"a":1,}`, `{,}`, `{"a"}`, `{"a" 1}`, `{"a":1 "b":2}`,
	`{"a":[1,2,]}`, `{"a":[,1]}`, `{"a":"b`, `{"a":{"b":1}`, `{"a":`, `{"a"`, `{`, `{"a":1`, `{"a":[}`, `{"a":{]}`, `{1:2}`,
	`[1]`, `"s"`, `1`, `null`, `true`, ``, `   `, `{"a":1}}`, `{"a":1}]`, `{"a":1} x`, `{"a":1} {`, `{"a":1}{"b":2}`, `{"a":1}` + "\n",
	"\ufeff{\"a\":1}", "{\"a\":1}\x00",
	// ts
	`{"ts":1.5e3}`, `{"ts":-1.5}`, `{"ts":15e3}`, `{"ts":1.5E+9}`, `{"ts":0}`, `{"ts":0.5}`, `{"ts":1795255200.1234567891234}`,
	`{"ts":1795255200.1e5}`, `{"ts":1795255200.123456789e5}`, `{"ts":true}`, `{"ts":"yesterday"}`, `{"ts":"2026-12-05T03:00:00+02:00"}`,
	`{"ts":1795255200123456}`, `{"ts":179525520012345678901}`, `{"ts":1795255200123.5}`, `{"ts":9e18}`, `{"ts":-0}`,
	// severity
	`{"level":"info","level_no":30.5}`, `{"level":"warn","level_no":1e400}`, `{"level":"warn","level_no":"30"}`, `{"level":5}`,
	`{"level":"Info"}`, `{"level":"panic"}`, `{"level":"error","level_name":""}`, `{"level_name":7,"level":"debug"}`, `{"level":"ünï"}`,
	// msg, app, host, logger
	`{"msg":5}`, `{"msg":1.5}`, `{"msg":null}`, `{"msg":[1,"a"]}`, `{"msg":true}`, `{"app":"","host":""}`, `{"app":5,"host":null,"logger":1}`,
	// trace context
	`{"msg":"t","trace_id":"0102030405060708090A0B0C0D0E0F10","span_id":"0102030405060708","trace_flags":1}`,
	`{"msg":"t","attrs":{"trace_id":"0102030405060708090a0b0c0d0e0f10","span_id":"010203040506070","trace_flags":1.0,"x":1}}`,
	`{"msg":"t","attrs":{"trace_id":"0102030405060708090a0b0c0d0e0f10","trace_flags":256}}`,
	`{"msg":"t","attrs":{"trace_id":"0102030405060708090a0b0c0d0e0f10","trace_flags":-1}}`,
	`{"msg":"t","attrs":{"trace_id":"0102030405060708090a0b0c0d0e0f1g"}}`, `{"msg":"t","attrs":{"trace_id":5}}`,
	`{"msg":"t","attrs":"trace_id"}`, `{"msg":"t","trace_id":null,"attrs":{"trace_id":"0102030405060708090a0b0c0d0e0f10"}}`,
	`{"msg":"t","trace_id":"0102030405060708090a0b0c0d0e0f10","attrs":{"trace_id":"0102030405060708090a0b0c0d0e0f10"}}`,
	`{"trace_id":"0102030405060708090a0b0c0d0e0f10","span_id":"0102030405060708","trace_flags":"01"}`,
	`{"trace_id":"0102030405060708090a0b0c0d0e0f10"}`, `{"attrs":{"trace_id":"0102030405060708090a0b0c0d0e0f10","span_id":"0102030405060708","trace_flags":1},"attrs":{"trace_id":"x"}}`,
	`{"attrs":{"trace_id":"0102030405060708090a0b0c0d0e0f10","trace_id":"0102030405060708090a0b0c0d0e0f11"}}`,
	// access logs
	`{"logger":"http.log.access","request":"GET /","status":"200","size":1.5,"bytes_read":1e2}`,
	`{"logger":"http.log.access.x","request":{"method":5,"uri":6,"proto":7,"host":8,"remote_ip":9,"client_ip":10,"remote_port":11,"headers":12},"status":200,"size":-1,"bytes_read":9223372036854775808}`,
	`{"logger":"http.log.access.x","request":{"host":"[::1]:443","uri":"*","proto":"HTTP/1.1","remote_port":"x"}}`,
	`{"logger":"http.log.access.x","request":{"host":"::1","uri":"http://x/y?z","proto":"h2c"}}`,
	`{"logger":"http.log.access.x","request":{"host":"host:","uri":"%zz","proto":"Foo/Bar/2.0"}}`,
	`{"logger":"http.log.access.x","request":{"host":"host:abc","uri":"/a%20b?q&r=1#f","proto":"HTTP/3.0"}}`,
	`{"logger":"http.log.access.x","request":{"host":"[::1]","uri":"","proto":"","client_ip":"","remote_ip":"10.0.0.1","headers":{"User-Agent":"x"}}}`,
	`{"logger":"http.log.access.x","request":{"host":"a:1:2","headers":{"User-Agent":[]}}}`,
	`{"logger":"http.log.access.x","request":{"headers":{"User-Agent":[5,"x"]}}}`,
	`{"logger":"http.log.access.x","request":{"headers":{"User-Agent":["ua","two"],"user-agent":["lower"]}}}`,
	`{"logger":"http.log.access.x","request":{"method":"GET","method":"POST"},"status":404,"status":500}`,
	`{"logger":"http.log.access.x","request":{},"status":200}`, `{"logger":"http.log.accessory","request":{"method":"GET"},"status":200}`,
	`{"logger":"http.log.access.x","request":{"remote_ip":"1.2.3.4","remote_port":"99999999999999999999"},"size":12345678901234567890}`,
}

// TestMappingMatchesReference maps refCorpus and the benchmark's
// entries, one by one and as one export, and holds the request to the
// one the map-based mapping makes, byte for byte once marshalled. One
// builder maps them all, as a session does, so what it keeps from an
// export must not show in the next.
func TestMappingMatchesReference(t *testing.T) {
	deep := func(n int) string { return strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n) }
	deepArr := func(n int) string { return `{"a":` + strings.Repeat("[", n-1) + strings.Repeat("]", n-1) + "}" }
	entries := append(slices.Clone(refCorpus), deep(maxDepth), deep(maxDepth+1), deepArr(maxDepth), deepArr(maxDepth+1))
	for _, r := range benchRecords(9) {
		entries = append(entries, string(r.Data))
	}
	m := &mapper{hostname: "this-host", now: func() time.Time { return time.Unix(1800000000, 0) },
		extra: []*common.KeyValue{strKV("deployment.environment.name", "prod")}}
	var b builder
	var all []forward.Record
	for i, e := range entries {
		recs := []forward.Record{{Data: []byte(e), Time: 1795255100000000000 + int64(i)}}
		all = append(all, recs...)
		checkSameExport(t, m, &b, recs)
	}
	checkSameExport(t, m, &b, all)
	checkSameExport(t, m, &b, all[:3])
}

// FuzzMappingMatchesReference holds the mapping of any entry to the
// map-based one.
func FuzzMappingMatchesReference(f *testing.F) {
	for _, e := range refCorpus {
		f.Add([]byte(e))
	}
	for _, r := range benchRecords(3) {
		f.Add(r.Data)
	}
	m := &mapper{hostname: "this-host", now: func() time.Time { return time.Unix(1800000000, 0) }}
	var b builder
	f.Fuzz(func(t *testing.T, data []byte) {
		checkSameExport(t, m, &b, []forward.Record{{Data: data, Time: 1795255100000000000}, {Data: []byte(`{"msg":"next"}`)}})
	})
}

func checkSameExport(t *testing.T, m *mapper, b *builder, recs []forward.Record) {
	t.Helper()
	want := m.refExport(recs)
	got := b.export(m, recs)
	wantPB, werr := proto.Marshal(want)
	gotPB, gerr := proto.Marshal(got)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("%q: marshal error %v, reference's %v", recs[0].Data, gerr, werr)
	}
	if werr != nil { // invalid UTF-8 in a line: neither can be sent
		return
	}
	if !bytes.Equal(gotPB, wantPB) {
		g, _ := protojson.Marshal(got)
		w, _ := protojson.Marshal(want)
		t.Fatalf("%q (%d records):\n got %s\nwant %s", recs[0].Data, len(recs), g, w)
	}
}
