package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// otlpCollector is a real OpenTelemetry Collector (integration/otelcol)
// whose otlp receiver takes OTLP/HTTP on port and whose contrib file
// exporter writes every export it is given as one line of OTLP JSON to
// out, appending across restarts. The file exporter has no sending
// queue: it writes an export before the receiver answers it, and
// flushes every 100 ms and on shutdown, so what is in out once the
// Collector stopped is everything it answered for.
type otlpCollector struct {
	*tlsDaemon
	port int
	out  string
}

// otlpStartCollector starts the Collector until t ends.
func otlpStartCollector(t *testing.T) *otlpCollector {
	t.Helper()
	bin := buildOtelcol(t)
	dir := t.TempDir()
	c := &otlpCollector{port: freePort(t), out: filepath.Join(dir, "logs.json")}
	cfg := filepath.Join(dir, "otelcol.yaml")
	config := otelcolConfig(c.port, fmt.Sprintf(`  file:
    path: %s
    format: json
    append: true
    flush_interval: 100ms
`, c.out), "file")
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	c.tlsDaemon = &tlsDaemon{t: t, name: "otelcol", ports: []int{c.port},
		cmd: func() *exec.Cmd { return exec.Command(bin, "--config", "file:"+cfg) }}
	c.start()
	return c
}

// otelcolConfig is a Collector config: an otlp receiver for OTLP/HTTP
// on port, the exporters given (YAML under exporters:, indented) and one
// logs pipeline from the receiver to those named.
func otelcolConfig(port int, exporters string, names ...string) string {
	return fmt.Sprintf(`receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:%d
exporters:
%sservice:
  telemetry:
    metrics:
      level: none
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [%s]
`, port, exporters, strings.Join(names, ", "))
}

// endpoint is the base URL of the Collector's OTLP/HTTP receiver.
func (c *otlpCollector) endpoint() string { return fmt.Sprintf("http://127.0.0.1:%d", c.port) }

// records decodes every whole line the file exporter wrote so far.
func (c *otlpCollector) records(t *testing.T) []otlpFileRecord {
	t.Helper()
	data, err := os.ReadFile(c.out)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	// Only whole lines: the exporter may be flushing the last one.
	data = data[:bytes.LastIndexByte(data, '\n')+1]
	var out []otlpFileRecord
	for i, line := range bytes.Split(data, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		recs, err := decodeOTLPFileLine(line)
		if err != nil {
			t.Fatalf("%s line %d: %v: %s", c.out, i+1, err, line)
		}
		out = append(out, recs...)
	}
	return out
}

// peer is the Collector as a delivery peer for the load helpers: each
// record's app is its service.name, its severity the severity text, its
// message the body.
func (c *otlpCollector) peer(t *testing.T) *tlsPeer {
	return &tlsPeer{name: "otelcol", port: c.port, t: t, start: c.start, stop: c.stop,
		outs: func() []tlsArrival {
			var out []tlsArrival
			for _, r := range c.records(t) {
				app, _ := r.Resource["service.name"].(string)
				body, _ := r.Body.(string)
				out = append(out, tlsArrival{app: app, severity: r.SeverityText, msg: body})
			}
			return out
		}}
}

// otlpFileRecord is one log record of the file exporter's output, with
// its resource and scope, values decoded from OTLP JSON: strings,
// bools, int64s, float64s, []any, map[string]any and nil.
type otlpFileRecord struct {
	Resource       map[string]any
	Scope          string
	Time, Observed uint64
	SeverityNumber int
	SeverityText   string
	Body           any
	Attributes     map[string]any
	TraceID        string
	SpanID         string
	Flags          uint32
}

// OTLP JSON (the OTLP/HTTP JSON encoding, which the file exporter's
// json format writes one export a line): protobuf's JSON mapping with
// lowerCamelCase names, 64-bit integers as strings, trace and span ids
// as hex.
type (
	otlpJSONLogsData struct {
		ResourceLogs []struct {
			Resource struct {
				Attributes []otlpJSONKeyValue `json:"attributes"`
			} `json:"resource"`
			ScopeLogs []struct {
				Scope struct {
					Name string `json:"name"`
				} `json:"scope"`
				LogRecords []struct {
					TimeUnixNano         string             `json:"timeUnixNano"`
					ObservedTimeUnixNano string             `json:"observedTimeUnixNano"`
					SeverityNumber       int                `json:"severityNumber"`
					SeverityText         string             `json:"severityText"`
					Body                 *otlpJSONAnyValue  `json:"body"`
					Attributes           []otlpJSONKeyValue `json:"attributes"`
					TraceID              string             `json:"traceId"`
					SpanID               string             `json:"spanId"`
					Flags                uint32             `json:"flags"`
				} `json:"logRecords"`
			} `json:"scopeLogs"`
		} `json:"resourceLogs"`
	}
	otlpJSONKeyValue struct {
		Key   string           `json:"key"`
		Value otlpJSONAnyValue `json:"value"`
	}
	otlpJSONAnyValue struct {
		StringValue *string         `json:"stringValue"`
		BoolValue   *bool           `json:"boolValue"`
		IntValue    json.RawMessage `json:"intValue"` // "42" (or 42)
		DoubleValue *float64        `json:"doubleValue"`
		ArrayValue  *struct {
			Values []otlpJSONAnyValue `json:"values"`
		} `json:"arrayValue"`
		KvlistValue *struct {
			Values []otlpJSONKeyValue `json:"values"`
		} `json:"kvlistValue"`
		BytesValue *string `json:"bytesValue"`
	}
)

// decodeOTLPFileLine decodes one line of the file exporter's output.
func decodeOTLPFileLine(line []byte) ([]otlpFileRecord, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields() // a field this test does not check is a field it missed
	var ld otlpJSONLogsData
	if err := dec.Decode(&ld); err != nil {
		return nil, err
	}
	var out []otlpFileRecord
	for _, rl := range ld.ResourceLogs {
		res, err := otlpJSONAttributes(rl.Resource.Attributes)
		if err != nil {
			return nil, fmt.Errorf("resource: %w", err)
		}
		for _, sl := range rl.ScopeLogs {
			for _, lr := range sl.LogRecords {
				r := otlpFileRecord{Resource: res, Scope: sl.Scope.Name, SeverityNumber: lr.SeverityNumber,
					SeverityText: lr.SeverityText, TraceID: lr.TraceID, SpanID: lr.SpanID, Flags: lr.Flags}
				if r.Time, err = strconv.ParseUint(lr.TimeUnixNano, 10, 64); err != nil {
					return nil, fmt.Errorf("timeUnixNano: %w", err)
				}
				if r.Observed, err = strconv.ParseUint(lr.ObservedTimeUnixNano, 10, 64); err != nil {
					return nil, fmt.Errorf("observedTimeUnixNano: %w", err)
				}
				if lr.Body != nil {
					if r.Body, err = lr.Body.value(); err != nil {
						return nil, fmt.Errorf("body: %w", err)
					}
				}
				if r.Attributes, err = otlpJSONAttributes(lr.Attributes); err != nil {
					return nil, fmt.Errorf("attributes: %w", err)
				}
				out = append(out, r)
			}
		}
	}
	return out, nil
}

// otlpJSONAttributes maps key-value pairs, refusing a key twice (OTLP
// requires them unique).
func otlpJSONAttributes(kvs []otlpJSONKeyValue) (map[string]any, error) {
	out := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		if _, dup := out[kv.Key]; dup {
			return nil, fmt.Errorf("key %q twice", kv.Key)
		}
		v, err := kv.Value.value()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", kv.Key, err)
		}
		out[kv.Key] = v
	}
	return out, nil
}

func (v otlpJSONAnyValue) value() (any, error) {
	switch {
	case v.StringValue != nil:
		return *v.StringValue, nil
	case v.BoolValue != nil:
		return *v.BoolValue, nil
	case v.IntValue != nil:
		return strconv.ParseInt(strings.Trim(string(v.IntValue), `"`), 10, 64)
	case v.DoubleValue != nil:
		return *v.DoubleValue, nil
	case v.ArrayValue != nil:
		out := make([]any, len(v.ArrayValue.Values))
		for i, e := range v.ArrayValue.Values {
			var err error
			if out[i], err = e.value(); err != nil {
				return nil, err
			}
		}
		return out, nil
	case v.KvlistValue != nil:
		return otlpJSONAttributes(v.KvlistValue.Values)
	case v.BytesValue != nil:
		return nil, fmt.Errorf("bytesValue %q: the writer sends none", *v.BytesValue)
	}
	return nil, nil // an empty value: JSON's null
}

// otlpFieldsCaddyfile is a Caddy whose otlp writer exports app shop's
// records and its own access log (all but /_applog's) to endpoint, and
// writes the same entries to sent.log. Both logs write ts in
// nanoseconds, so that each record's time can be compared exactly.
func otlpFieldsCaddyfile(endpoint string) string {
	return `{
	admin 127.0.0.1:{{.AdminPort}}
	applog {
		facility shop {
			level debug
		}
	}
	log tootlp {
		include applog.shop http.log.access
		level DEBUG
		output otlp ` + endpoint + ` {
			resource_attribute deployment.environment.name itest
			backoff 100ms 1s
		}
		format json {
			time_format unix_nano
		}
	}
	log sent {
		include applog.shop http.log.access
		level DEBUG
		output file {{.Dir}}/sent.log
		format json {
			time_format unix_nano
		}
	}
}

http://127.0.0.1:{{.HTTPPort}} {
	bind 127.0.0.1
	log
	handle /_applog {
		log_skip
		log_ingest shop
	}
	handle /hello {
		respond "hi" 201
	}
}
`
}

// TestOTLPWriterCollectorFields sends records of several shapes (a
// plain text line; each level with its own time; structured fields; a
// record in a span) and an access log entry from Caddy's otlp writer
// through a real Collector into its file exporter, and checks every
// field of every record there: time, observed time, severity number
// and text, body, each attribute, the resource and scope, trace and
// span ids.
func TestOTLPWriterCollectorFields(t *testing.T) {
	col := otlpStartCollector(t)
	s := startCaddy(t, otlpFieldsCaddyfile(col.endpoint()))
	start := time.Now()
	marker := tlsMarker("otlpfields")
	hostname, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}

	// want is each record by its body (the access entry's is its path).
	type want struct {
		scope          string
		time           uint64 // 0: the entry's, from sent.log
		severityNumber int
		severityText   string
		attributes     map[string]any
		traceID        string
		spanID         string
		flags          uint32
	}
	wants := map[string]want{}
	appAttrs := func(facility string, more map[string]any) map[string]any {
		m := map[string]any{"facility": facility, "logger_name": facility}
		for k, v := range more {
			m[k] = v
		}
		return m
	}

	// A plain text line: INFO, no facility.
	plain := marker + " a plain line"
	if code, resp := post(t, s.URL("/_applog"), "text/plain", []byte(plain+"\n"), nil); code != 200 {
		t.Fatalf("text/plain: %d %s", code, resp)
	}
	wants[plain] = want{scope: "applog.shop", severityNumber: 9, severityText: "INFO", attributes: appAttrs("", nil)}

	// Every level, each with its own time to the nanosecond: OTel's
	// number on log_ingest's table (docs/log_ingest.md) read backwards,
	// the level's name as the app sent it.
	base := start.Add(-time.Hour).Truncate(time.Second)
	var records []map[string]any
	for i, l := range []struct {
		name string
		sev  int
	}{{"debug", 5}, {"info", 9}, {"notice", 11}, {"warning", 13}, {"error", 17}, {"critical", 21}, {"alert", 24}} {
		ts := base.Add(time.Duration(i)*time.Second + 123456789)
		msg := fmt.Sprintf("%s level %s", marker, l.name)
		records = append(records, map[string]any{"msg": msg, "level": l.name, "logger": "shop.levels", "time": ts.Format(time.RFC3339Nano)})
		// received: when Caddy took a record that carries its own time.
		wants[msg] = want{scope: "applog.shop.shop.levels", time: uint64(ts.UnixNano()), severityNumber: l.sev, severityText: l.name,
			attributes: appAttrs("shop.levels", map[string]any{"received": "(a time during the test)"})}
	}
	// Structured fields: nested objects as key-value lists, arrays as
	// arrays, integers as ints, other numbers as doubles, null as an
	// empty value.
	orders := marker + " order placed"
	records = append(records, map[string]any{"msg": orders, "level": "info", "logger": "shop.orders",
		"order": map[string]any{"id": "A-17", "items": []any{map[string]any{"sku": "x1", "qty": 2}}, "total": 19.99, "paid": true},
		"user":  "alice", "retries": 3, "ratio": 0.25, "tags": []any{"new", "vip"}, "note": nil})
	wants[orders] = want{scope: "applog.shop.shop.orders", severityNumber: 9, severityText: "info", attributes: appAttrs("shop.orders", map[string]any{
		"attrs": map[string]any{
			"order": map[string]any{"id": "A-17", "items": []any{map[string]any{"sku": "x1", "qty": int64(2)}}, "total": 19.99, "paid": true},
			"user":  "alice", "retries": int64(3), "ratio": 0.25, "tags": []any{"new", "vip"}, "note": nil,
		},
	})}
	// A record in a span: its trace context moves to the record's own
	// fields, the rest of attrs stays.
	span := marker + " in a span"
	records = append(records, map[string]any{"msg": span, "level": "error",
		"trace_id": "5b8efff798038103d269b633813fc60c", "span_id": "eee19b7ec3c1b174", "trace_flags": 1, "user": "bob"})
	wants[span] = want{scope: "applog.shop", severityNumber: 17, severityText: "error",
		attributes: appAttrs("", map[string]any{"attrs": map[string]any{"user": "bob"}}),
		traceID:    "5b8efff798038103d269b633813fc60c", spanID: "eee19b7ec3c1b174", flags: 1}
	body, _ := json.Marshal(records)
	if code, resp := post(t, s.URL("/_applog"), "application/json", body, nil); code != 200 {
		t.Fatalf("JSON records: %d %s", code, resp)
	}

	// An access log entry: a request whose every logged part the test
	// sets (no Accept-Encoding added), from a port it knows.
	var clientPort int
	client := &http.Client{Transport: &http.Transport{DisableCompression: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err == nil {
				clientPort = c.LocalAddr().(*net.TCPAddr).Port
			}
			return c, err
		}}}
	req, _ := http.NewRequest(http.MethodGet, s.URL("/hello?x=1&y=two"), nil)
	req.Header.Set("User-Agent", "applog-itest/1.0")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	client.CloseIdleConnections()
	wants["/hello"] = want{scope: "http.log.access", severityNumber: 9, severityText: "INFO", attributes: map[string]any{
		"http.request.method":       "GET",
		"url.path":                  "/hello",
		"url.query":                 "x=1&y=two",
		"network.protocol.name":     "http",
		"network.protocol.version":  "1.1",
		"server.address":            "127.0.0.1",
		"server.port":               int64(s.HTTPPort),
		"client.address":            "127.0.0.1",
		"network.peer.address":      "127.0.0.1",
		"network.peer.port":         int64(clientPort),
		"user_agent.original":       "applog-itest/1.0",
		"http.response.status_code": int64(201),
		"http.response.body.size":   int64(2),
		"http.request.body.size":    int64(0),
		"duration":                  "(the entry's)",
		"user_id":                   "",
		"request": map[string]any{"headers": map[string]any{
			"User-Agent": []any{"applog-itest/1.0"},
		}},
		"resp_headers": map[string]any{
			"Content-Type": []any{"text/plain; charset=utf-8"},
			"Server":       []any{"Caddy"},
		},
	}}

	// Every record, once: the access entry's body is Caddy's message.
	key := func(r otlpFileRecord) string {
		if path, ok := r.Attributes["url.path"].(string); ok && r.Scope == "http.log.access" {
			return path
		}
		b, _ := r.Body.(string)
		return b
	}
	var got []otlpFileRecord
	tlsWaitFor(30*time.Second, func() bool {
		got = col.records(t)
		return len(got) >= len(wants)
	})
	time.Sleep(500 * time.Millisecond) // nothing more may come
	got = col.records(t)
	end := time.Now()
	if len(got) != len(wants) {
		t.Errorf("the file exporter wrote %d records, want %d", len(got), len(wants))
	}

	// What Caddy wrote to sent.log, by the same key: each record's time.
	sent := map[string]map[string]any{}
	for _, e := range readLines(t, filepath.Join(s.Dir, "sent.log")) {
		k, _ := e["msg"].(string)
		if req, ok := e["request"].(map[string]any); ok {
			k = strings.SplitN(fmt.Sprint(req["uri"]), "?", 2)[0]
		}
		sent[k] = e
	}

	seen := map[string]bool{}
	for _, r := range got {
		k := key(r)
		w, ok := wants[k]
		if !ok || seen[k] {
			t.Errorf("unexpected record (or one twice): %+v", r)
			continue
		}
		seen[k] = true
		e := sent[k]
		if e == nil {
			t.Errorf("%s: not in sent.log", k)
			continue
		}
		ts, _ := strconv.ParseUint(fmt.Sprint(e["ts"]), 10, 64)
		if w.time != 0 && ts != w.time {
			t.Errorf("%s: sent.log has ts %d, want the record's own time %d", k, ts, w.time)
		}
		if r.Time != ts {
			t.Errorf("%s: timeUnixNano %d, want the entry's ts %d", k, r.Time, ts)
		}
		if r.Observed < uint64(start.UnixNano()) || r.Observed > uint64(end.UnixNano()) || r.Observed < r.Time {
			t.Errorf("%s: observedTimeUnixNano %d is not a time during the test, after the record's (%d)", k, r.Observed, r.Time)
		}
		if r.SeverityNumber != w.severityNumber || r.SeverityText != w.severityText {
			t.Errorf("%s: severity %d %q, want %d %q", k, r.SeverityNumber, r.SeverityText, w.severityNumber, w.severityText)
		}
		wantBody := k
		if w.scope == "http.log.access" {
			wantBody = "handled request"
		}
		if r.Body != wantBody {
			t.Errorf("%s: body %#v, want %q", k, r.Body, wantBody)
		}
		if r.Scope != w.scope {
			t.Errorf("%s: scope %q, want %q", k, r.Scope, w.scope)
		}
		wantRes := map[string]any{"service.name": "shop", "host.name": "127.0.0.1", "deployment.environment.name": "itest"}
		if w.scope == "http.log.access" {
			wantRes["service.name"], wantRes["host.name"] = "caddy", hostname
		}
		if !reflect.DeepEqual(r.Resource, wantRes) {
			t.Errorf("%s: resource %v, want %v", k, r.Resource, wantRes)
		}
		if r.TraceID != w.traceID || r.SpanID != w.spanID || r.Flags != w.flags {
			t.Errorf("%s: trace %q span %q flags %d, want %q %q %d", k, r.TraceID, r.SpanID, r.Flags, w.traceID, w.spanID, w.flags)
		}
		// Attributes whose value is the entry's own: the time Caddy
		// received a record with a time of its own, a request's duration.
		attrs := map[string]any{}
		for a, v := range r.Attributes {
			attrs[a] = v
		}
		if _, ok := w.attributes["received"]; ok {
			rcv, _ := attrs["received"].(int64)
			if rcv < start.UnixNano() || rcv > end.UnixNano() || fmt.Sprint(rcv) != fmt.Sprint(e["received"]) {
				t.Errorf("%s: received %#v, want sent.log's %v, a time during the test", k, attrs["received"], e["received"])
			}
			attrs["received"] = w.attributes["received"]
		}
		if _, ok := w.attributes["duration"]; ok {
			d, _ := attrs["duration"].(float64)
			if want, _ := strconv.ParseFloat(fmt.Sprint(e["duration"]), 64); d != want || d <= 0 {
				t.Errorf("%s: duration %#v, want sent.log's %v", k, attrs["duration"], e["duration"])
			}
			attrs["duration"] = w.attributes["duration"]
		}
		if !reflect.DeepEqual(attrs, w.attributes) {
			t.Errorf("%s: attributes\n got %#v\nwant %#v", k, attrs, w.attributes)
		}
	}
	for k := range wants {
		if !seen[k] {
			t.Errorf("%s: never reached the file exporter", k)
		}
	}
	if t.Failed() {
		data, _ := os.ReadFile(col.out)
		t.Logf("file exporter output:\n%s", data)
	}
}

// TestOTLPDocsCollectorConfig checks that every whole Collector config
// in docs/ (a yaml block with its receivers) is one the Collector of
// these tests, with the same components at the same release, accepts.
func TestOTLPDocsCollectorConfig(t *testing.T) {
	bin := buildOtelcol(t)
	pages, err := filepath.Glob("../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, page := range pages {
		data, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		for i, block := range strings.Split(string(data), "```yaml\n")[1:] {
			block, _, _ = strings.Cut(block, "```")
			if !strings.HasPrefix(block, "receivers:") && !strings.Contains(block, "\nreceivers:") {
				continue // a fragment
			}
			found++
			cfg := filepath.Join(t.TempDir(), "otelcol.yaml")
			if err := os.WriteFile(cfg, []byte(block), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(bin, "validate", "--config", "file:"+cfg)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := runBounded(cmd, time.Minute); err != nil {
				t.Errorf("%s, yaml block %d: the Collector refuses it: %v\n%s\n%s", page, i+1, err, out.String(), block)
			}
		}
	}
	if found == 0 {
		t.Fatal("no Collector config in docs/: docs/otlp.md has one")
	}
}
