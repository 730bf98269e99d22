package otlp

import (
	"math"
	"net"
	"net/url"
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

type scopeKey struct {
	rl   *logs.ResourceLogs
	name string
}

// export maps recs onto one request, in order within each resource and
// scope.
func (m *mapper) export(recs []forward.Record) *collogs.ExportLogsServiceRequest {
	return new(builder).export(m, recs)
}

// record maps one entry.
func (m *mapper) record(r forward.Record) (lr *logs.LogRecord, service, host, scope string) {
	return new(builder).record(m, r)
}

// builder maps records onto exports. It keeps what an export is made of
// (records, attributes, values, the parsed entry) for the next one, so
// a busy writer allocates next to nothing per record: a session has its
// own, and an export it returned is valid until the next. It holds on to
// as much as its largest export needed, until the session ends.
type builder struct {
	tree      entryTree
	req       collogs.ExportLogsServiceRequest
	resources map[resKey]*logs.ResourceLogs
	scopes    map[scopeKey]*logs.ScopeLogs
	lastRes   resKey
	lastRL    *logs.ResourceLogs
	lastScope scopeKey
	lastSL    *logs.ScopeLogs

	records pool[logs.LogRecord]
	kvs     pool[common.KeyValue]
	values  pool[common.AnyValue]
	strs    pool[common.AnyValue_StringValue]
	ints    pool[common.AnyValue_IntValue]
	doubles pool[common.AnyValue_DoubleValue]
	bools   pool[common.AnyValue_BoolValue]
	kvlists pool[kvlistValue]
	arrays  pool[arrayValue]
	kvPtrs  pool[*common.KeyValue]
	valPtrs pool[*common.AnyValue]
	ids     pool[byte]
}

// A kvlist or array value and the list it points to, in one piece.
type (
	kvlistValue struct {
		v common.AnyValue_KvlistValue
		l common.KeyValueList
	}
	arrayValue struct {
		v common.AnyValue_ArrayValue
		a common.ArrayValue
	}
)

func (b *builder) reset() {
	clear(b.req.ResourceLogs)
	b.req.ResourceLogs = b.req.ResourceLogs[:0]
	if b.resources == nil {
		b.resources = map[resKey]*logs.ResourceLogs{}
		b.scopes = map[scopeKey]*logs.ScopeLogs{}
	}
	clear(b.resources)
	clear(b.scopes)
	b.lastRes, b.lastRL, b.lastScope, b.lastSL = resKey{}, nil, scopeKey{}, nil
	b.records.reset()
	b.kvs.reset()
	b.values.reset()
	b.strs.reset()
	b.ints.reset()
	b.doubles.reset()
	b.bools.reset()
	b.kvlists.reset()
	b.arrays.reset()
	b.kvPtrs.reset()
	b.valPtrs.reset()
	b.ids.reset()
}

// export maps recs onto b's request, in order within each resource and
// scope.
func (b *builder) export(m *mapper, recs []forward.Record) *collogs.ExportLogsServiceRequest {
	b.reset()
	observed := uint64(m.now().UnixNano())
	for _, r := range recs {
		lr, service, host, scope := b.record(m, r)
		lr.ObservedTimeUnixNano = observed
		k := resKey{service, host}
		rl := b.lastRL
		if k != b.lastRes {
			rl = b.resources[k]
		}
		if rl == nil {
			attrs := []*common.KeyValue{strKV("service.name", service), strKV("host.name", host)}
			rl = &logs.ResourceLogs{Resource: &resource.Resource{Attributes: append(attrs, m.extra...)}}
			b.resources[k] = rl
			b.req.ResourceLogs = append(b.req.ResourceLogs, rl)
		}
		sk := scopeKey{rl, scope}
		sl := b.lastSL
		if sk != b.lastScope {
			sl = b.scopes[sk]
		}
		if sl == nil {
			sl = &logs.ScopeLogs{Scope: &common.InstrumentationScope{Name: scope}}
			b.scopes[sk] = sl
			rl.ScopeLogs = append(rl.ScopeLogs, sl)
		}
		sl.LogRecords = append(sl.LogRecords, lr)
		// Records come in runs of one app and logger: the next one
		// is likely to go where this one went.
		b.lastRes, b.lastRL, b.lastScope, b.lastSL = k, rl, sk, sl
	}
	return &b.req
}

// record maps one entry. An entry that is not a JSON object becomes a
// record whose body is the line.
func (b *builder) record(m *mapper, r forward.Record) (lr *logs.LogRecord, service, host, scope string) {
	lr = b.records.one()
	lr.TimeUnixNano = uint64(r.Time)
	service, host = caddyService, m.hostname
	t := &b.tree
	if !t.parse(r.Data) {
		// OTLP strings are UTF-8: an invalid byte would make the
		// export fail to encode and stall the queue behind it.
		lr.Body = b.str(strings.ToValidUTF8(t.src, "\uFFFD"))
		return lr, service, host, ""
	}
	entry := t.node(0)
	// The fields the record has places for, in one pass: they leave
	// the attributes.
	var ts, level, levelName, levelNo, msg *jsonNode
	for _, k := range t.children(entry) {
		n := t.node(k)
		switch n.key {
		case "ts":
			ts = n
		case "level":
			level = n
		case "level_no":
			levelNo = n
		case "level_name":
			levelName = n
		case "msg":
			msg = n
		case "app":
			if app, _ := n.str(); app != "" {
				service = app
			}
		case "host":
			if h, _ := n.str(); h != "" {
				host = h
			}
		case "logger":
			scope, _ = n.str()
		default:
			continue
		}
		n.taken = true
	}
	if ts, ok := entryTime(ts); ok {
		lr.TimeUnixNano = ts
	}
	lr.SeverityNumber, lr.SeverityText = severity(level, levelName, levelNo)
	if msg != nil {
		lr.Body = b.value(msg)
	}
	b.traceContext(lr, entry)
	var conv [16]*common.KeyValue
	named := conv[:0]
	if strings.HasPrefix(scope, "http.log.access") {
		named = b.accessAttributes(entry, named)
	}
	if n := len(named) + t.count(entry); n > 0 {
		lr.Attributes = b.kvPtrs.alloc(n)
		b.members(lr.Attributes[copy(lr.Attributes, named):], entry)
	}
	return lr, service, host, scope
}

// traceContext moves trace_id, span_id and trace_flags (hex, as
// log_ingest's OTLP door keeps them under attrs, or at the top as
// tracing loggers write them) into the record's own fields.
func (b *builder) traceContext(lr *logs.LogRecord, entry *jsonNode) {
	t := &b.tree
	from := entry
	if t.get(entry, "trace_id") == nil {
		attrs := t.get(entry, "attrs")
		if t.get(attrs, "trace_id") == nil {
			return
		}
		from = attrs
	}
	if lr.TraceId = b.hexID(from, "trace_id", 16); lr.TraceId == nil {
		return
	}
	lr.SpanId = b.hexID(from, "span_id", 8)
	if f := t.get(from, "trace_flags"); f != nil && f.kind == jsonNumber {
		if n, err := strconv.ParseUint(f.text, 10, 8); err == nil {
			lr.Flags = uint32(n)
			f.taken = true
		}
	}
	if t.count(from) == 0 {
		t.take(entry, "attrs")
	}
}

// hexID takes member k of obj if it is n bytes in hex.
func (b *builder) hexID(obj *jsonNode, k string, n int) []byte {
	m := b.tree.get(obj, k)
	s, _ := m.str()
	if len(s) != 2*n {
		return nil
	}
	id := b.ids.alloc(n)
	for i := range id {
		hi, lo := unhex(s[2*i]), unhex(s[2*i+1])
		if hi < 0 || lo < 0 {
			return nil
		}
		id[i] = byte(hi<<4 | lo)
	}
	m.taken = true
	return id
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}

// entryTime reads ts as zap writes it: Unix seconds with a fraction
// (epoch, the default), or an integer of seconds, milliseconds,
// microseconds or nanoseconds (told apart by size), or RFC 3339 text.
// A decimal is read from its digits: a float64 would lose the
// nanoseconds of today's times.
func entryTime(n *jsonNode) (uint64, bool) {
	if n == nil {
		return 0, false
	}
	switch n.kind {
	case jsonNumber:
		intPart, frac, hasFrac := strings.Cut(n.text, ".")
		secs, err := strconv.ParseUint(intPart, 10, 64)
		if err != nil {
			// An exponent or a sign: as a float, to the microsecond.
			f, err := strconv.ParseFloat(n.text, 64)
			if err != nil || f <= 0 || f > math.MaxInt64/1e9 {
				return 0, false
			}
			return uint64(math.Round(f*1e6)) * 1e3, true
		}
		if !hasFrac {
			switch {
			case secs > 1e17:
				return secs, true
			case secs > 1e14:
				return secs * 1e3, true
			case secs > 1e11:
				return secs * 1e6, true
			}
		} else if secs > 1e11 { // epoch_millis with a fraction
			return secs * 1e6, true
		}
		// The first 9 digits of the fraction are the nanoseconds; a
		// fraction with an exponent in them is not a time.
		frac = frac[:min(len(frac), 9)]
		var nanos uint64
		for _, c := range []byte(frac) {
			if c < '0' || c > '9' {
				return 0, false
			}
			nanos = nanos*10 + uint64(c-'0')
		}
		for range 9 - len(frac) {
			nanos *= 10
		}
		return secs*1e9 + nanos, true
	case jsonString:
		t, err := time.Parse(time.RFC3339Nano, n.text)
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
func severity(level, levelName, levelNo *jsonNode) (logs.SeverityNumber, string) {
	lvl, _ := level.str()
	text, _ := levelName.str()
	if text == "" {
		text = upper(lvl)
	}
	if levelNo != nil && levelNo.kind == jsonNumber {
		if f, err := strconv.ParseFloat(levelNo.text, 64); err == nil {
			n := math.Round(9 + (f-20)*0.4)
			return logs.SeverityNumber(max(1, min(24, n))), text
		}
	}
	return zapSeverity[lvl], text
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

// upper is strings.ToUpper, without a copy for zap's levels.
func upper(level string) string {
	switch level {
	case "debug":
		return "DEBUG"
	case "info":
		return "INFO"
	case "warn":
		return "WARN"
	case "error":
		return "ERROR"
	}
	return strings.ToUpper(level)
}

// accessAttributes takes the fields of a Caddy access log entry that
// OTel's HTTP semantic conventions name out of entry and appends them
// to out as those attributes; what they do not name stays in entry (the
// request's headers under "request", for one).
func (b *builder) accessAttributes(entry *jsonNode, out []*common.KeyValue) []*common.KeyValue {
	t := &b.tree
	takeStr := func(obj *jsonNode, k string) string {
		s, _ := t.take(obj, k).str()
		return s
	}
	if req := t.get(entry, "request"); req != nil && req.kind == jsonObject {
		if s := takeStr(req, "method"); s != "" {
			out = append(out, b.strKV("http.request.method", s))
		}
		if s := takeStr(req, "uri"); s != "" {
			if u, err := url.ParseRequestURI(s); err == nil {
				out = append(out, b.strKV("url.path", u.Path))
				if u.RawQuery != "" {
					out = append(out, b.strKV("url.query", u.RawQuery))
				}
			} else {
				out = append(out, b.strKV("url.path", s))
			}
		}
		if s := takeStr(req, "proto"); s != "" {
			name, version, _ := strings.Cut(s, "/")
			if name == "HTTP" {
				name = "http"
			} else {
				name = strings.ToLower(name)
			}
			out = append(out, b.strKV("network.protocol.name", name))
			out = append(out, b.strKV("network.protocol.version", strings.TrimSuffix(version, ".0")))
		}
		if s := takeStr(req, "host"); s != "" {
			host, port := s, ""
			// Without a colon SplitHostPort fails (missing port): the
			// host is s, as its error would make it, without the error.
			if strings.IndexByte(s, ':') >= 0 {
				var err error
				if host, port, err = net.SplitHostPort(s); err != nil {
					host, port = s, ""
				}
			}
			out = append(out, b.strKV("server.address", host))
			if port != "" {
				if p, err := strconv.ParseInt(port, 10, 64); err == nil {
					out = append(out, b.intKV("server.port", p))
				}
			}
		}
		remote := takeStr(req, "remote_ip")
		client := takeStr(req, "client_ip")
		if client == "" {
			client = remote
		}
		if client != "" {
			out = append(out, b.strKV("client.address", client))
		}
		if remote != "" {
			out = append(out, b.strKV("network.peer.address", remote))
		}
		if s := takeStr(req, "remote_port"); s != "" {
			if p, err := strconv.ParseInt(s, 10, 64); err == nil {
				out = append(out, b.intKV("network.peer.port", p))
			}
		}
		if ua := t.get(t.get(req, "headers"), "User-Agent"); ua != nil && ua.kind == jsonArray && ua.n > 0 {
			if s, ok := t.node(t.children(ua)[0]).str(); ok {
				out = append(out, b.strKV("user_agent.original", s))
			}
		}
		if t.count(req) == 0 {
			t.take(entry, "request")
		}
	}
	for _, f := range [...]struct{ k, attr string }{
		{"status", "http.response.status_code"},
		{"size", "http.response.body.size"},
		{"bytes_read", "http.request.body.size"},
	} {
		if v := t.get(entry, f.k); v != nil && v.kind == jsonNumber {
			if n, ok := parseInt(v.text); ok {
				out = append(out, b.intKV(f.attr, n))
				v.taken = true
			}
		}
	}
	return out
}

// members maps the members of obj that are still there onto dst, one
// each, in key order.
func (b *builder) members(dst []*common.KeyValue, obj *jsonNode) {
	i := 0
	for _, k := range b.tree.children(obj) {
		if n := b.tree.node(k); !n.taken {
			kv := b.kvs.one()
			kv.Key = n.key
			kv.Value = b.value(n)
			dst[i] = kv
			i++
		}
	}
}

// value maps a JSON value: objects become kvlists, integers ints,
// other numbers doubles, null an empty value.
func (b *builder) value(n *jsonNode) *common.AnyValue {
	switch n.kind {
	case jsonString:
		return b.str(n.text)
	case jsonTrue, jsonFalse:
		v := b.bools.one()
		v.BoolValue = n.kind == jsonTrue
		av := b.values.one()
		av.Value = v
		return av
	case jsonNumber:
		av := b.values.one()
		if i, ok := parseInt(n.text); ok {
			v := b.ints.one()
			v.IntValue = i
			av.Value = v
		} else {
			v := b.doubles.one()
			v.DoubleValue, _ = strconv.ParseFloat(n.text, 64)
			av.Value = v
		}
		return av
	case jsonObject:
		kl := b.kvlists.one()
		kl.l.Values = b.kvPtrs.alloc(b.tree.count(n))
		b.members(kl.l.Values, n)
		kl.v.KvlistValue = &kl.l
		av := b.values.one()
		av.Value = &kl.v
		return av
	case jsonArray:
		arr := b.arrays.one()
		kids := b.tree.children(n)
		arr.a.Values = b.valPtrs.alloc(len(kids))
		for i, k := range kids {
			arr.a.Values[i] = b.value(b.tree.node(k))
		}
		arr.v.ArrayValue = &arr.a
		av := b.values.one()
		av.Value = &arr.v
		return av
	}
	return b.values.one()
}

// parseInt is json.Number's Int64 without its error (and the error's
// allocation) for a number with a fraction or an exponent.
func parseInt(text string) (int64, bool) {
	if strings.ContainsAny(text, ".eE") {
		return 0, false
	}
	n, err := strconv.ParseInt(text, 10, 64)
	return n, err == nil
}

func (b *builder) str(s string) *common.AnyValue {
	v := b.strs.one()
	v.StringValue = s
	av := b.values.one()
	av.Value = v
	return av
}

func (b *builder) strKV(k, v string) *common.KeyValue {
	kv := b.kvs.one()
	kv.Key, kv.Value = k, b.str(v)
	return kv
}

func (b *builder) intKV(k string, v int64) *common.KeyValue {
	iv := b.ints.one()
	iv.IntValue = v
	av := b.values.one()
	av.Value = iv
	kv := b.kvs.one()
	kv.Key, kv.Value = k, av
	return kv
}

// pool hands out zeroed values from chunks it keeps across exports.
type pool[T any] struct {
	chunks [][]T
	c      int // the chunk in use
	used   int // of chunks[c]
}

const poolChunk = 512

func (p *pool[T]) one() *T { return &p.alloc(1)[0] }

// alloc is n zeroed values, with no room to append.
func (p *pool[T]) alloc(n int) []T {
	if n == 0 {
		return nil
	}
	for ; p.c < len(p.chunks); p.c, p.used = p.c+1, 0 {
		if ch := p.chunks[p.c]; p.used+n <= len(ch) {
			s := ch[p.used : p.used+n : p.used+n]
			p.used += n
			clear(s)
			return s
		}
	}
	ch := make([]T, max(n, poolChunk))
	p.chunks = append(p.chunks, ch)
	p.c, p.used = len(p.chunks)-1, n
	return ch[:n:n]
}

// reset makes every value handed out free again.
func (p *pool[T]) reset() { p.c, p.used = 0, 0 }

func strAV(s string) *common.AnyValue {
	return &common.AnyValue{Value: &common.AnyValue_StringValue{StringValue: s}}
}

func strKV(k, v string) *common.KeyValue { return &common.KeyValue{Key: k, Value: strAV(v)} }
