package integration

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/contrib/bridges/otelslog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"
	collogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"

	"github.com/caddy-applog/caddy-applog/internal/testdaemon"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// otelApp logs through Go's OTel log SDK as an instrumented app does:
// slog, bridged by otelslog, batched by the SDK and exported by
// otlploghttp to endpoint. It returns when the SDK has exported
// everything, with what the exporter reported.
func otelApp(t *testing.T, endpoint string, gzip bool, log func(ctx context.Context, newLogger func(name string) *slog.Logger)) error {
	t.Helper()
	opts := []otlploghttp.Option{otlploghttp.WithEndpointURL(endpoint), otlploghttp.WithRetry(otlploghttp.RetryConfig{Enabled: false})}
	if gzip {
		opts = append(opts, otlploghttp.WithCompression(otlploghttp.GzipCompression))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	exp, err := otlploghttp.New(ctx, opts...)
	if err != nil {
		t.Fatal(err)
	}
	// The exporter's errors reach the processor's caller only through
	// ForceFlush: record them on the way.
	rec := &recordingExporter{Exporter: exp}
	lp := sdklog.NewLoggerProvider(
		sdklog.WithResource(resource.NewSchemaless(
			attribute.String("service.name", "shop"),
			attribute.String("host.name", "edge-7"),
		)),
		sdklog.WithProcessor(sdklog.NewBatchProcessor(rec)),
	)
	log(ctx, func(name string) *slog.Logger {
		return otelslog.NewLogger(name, otelslog.WithLoggerProvider(lp))
	})
	// Caddy's partial success for records below their facility's level
	// comes back from the exporter as an error, as the SDK reports it.
	flushErr := lp.ForceFlush(ctx)
	if err := lp.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if rec.err != nil {
		return rec.err // what ForceFlush returned too
	}
	return flushErr
}

type recordingExporter struct {
	sdklog.Exporter
	err error
}

func (r *recordingExporter) Export(ctx context.Context, recs []sdklog.Record) error {
	err := r.Exporter.Export(ctx, recs)
	if err != nil {
		r.err = errors.Join(r.err, err)
	}
	return err
}

// withoutTime returns an entry without its ts, checking ts is within
// the test's run.
func withoutTime(t *testing.T, e map[string]any, start time.Time) map[string]any {
	t.Helper()
	out := map[string]any{}
	for k, v := range e {
		out[k] = v
	}
	ts, err := strconv.ParseInt(fmt.Sprint(out["ts"]), 10, 64)
	if err != nil || ts < start.UnixNano() || ts > time.Now().UnixNano() {
		t.Errorf("ts %v is not the record's time during the test (%v)", out["ts"], err)
	}
	delete(out, "ts")
	return out
}

// asJSON decodes doc with numbers kept as json.Number, as readLines does.
func asJSON(t *testing.T, doc string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("%v: %s", err, doc)
	}
	return m
}

// slogApp is what the OTel-instrumented app logs: a record in a span,
// levels across the scale, one below its facility's level, and
// non-ASCII text.
func slogApp(ctx context.Context, newLogger func(string) *slog.Logger) {
	traceID, _ := trace.TraceIDFromHex("5b8efff798038103d269b633813fc60c")
	spanID, _ := trace.SpanIDFromHex("eee19b7ec3c1b174")
	spanCtx := trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled,
	}))
	views, noisy := newLogger("shop.views"), newLogger("shop.noisy")
	views.InfoContext(spanCtx, "user logged in", "user", "alice", "n", 42, slog.Group("req", "path", "/a", "ok", true))
	views.Debug("debug detail")
	views.Log(ctx, slog.LevelInfo+2, "between info and warn", "ratio", 0.5)
	noisy.Info("below the facility's level")
	noisy.Error("héllo ✓ 日本語")
}

// slogAppLines are the entries slogApp's records become, without ts.
var slogAppLines = func() []string {
	resource := `{"host.name":"edge-7"}`
	return []string{
		`{"level":"info","logger":"applog.shop.shop.views","msg":"user logged in","app":"shop","facility":"shop.views","host":"127.0.0.1","logger_name":"shop.views","level_name":"INFO","level_no":20,
		  "attrs":{"user":"alice","n":42,"req":{"path":"/a","ok":true},"trace_id":"5b8efff798038103d269b633813fc60c","span_id":"eee19b7ec3c1b174","trace_flags":1,"resource":` + resource + `}}`,
		`{"level":"debug","logger":"applog.shop.shop.views","msg":"debug detail","app":"shop","facility":"shop.views","host":"127.0.0.1","logger_name":"shop.views","level_name":"DEBUG","level_no":10,"attrs":{"resource":` + resource + `}}`,
		`{"level":"info","logger":"applog.shop.shop.views","msg":"between info and warn","app":"shop","facility":"shop.views","host":"127.0.0.1","logger_name":"shop.views","level_name":"INFO+2","level_no":25,"attrs":{"ratio":0.5,"resource":` + resource + `}}`,
		`{"level":"error","logger":"applog.shop.shop.noisy","msg":"héllo ✓ 日本語","app":"shop","facility":"shop.noisy","host":"127.0.0.1","logger_name":"shop.noisy","level_name":"ERROR","level_no":40,"attrs":{"resource":` + resource + `}}`,
	}
}()

// checkSlogAppLines waits for copies of slogAppLines in path and
// checks them exactly: in order when sent one copy after the other, as
// a set of lines (each copies times) when copies arrive side by side.
func checkSlogAppLines(t *testing.T, path string, start time.Time, copies int, ordered bool) {
	t.Helper()
	n := copies * len(slogAppLines)
	waitLines(t, path, n)
	time.Sleep(200 * time.Millisecond) // nothing more may come
	lines := readLines(t, path)
	if len(lines) != n {
		t.Fatalf("%d lines, want %d:\n%v", len(lines), n, lines)
	}
	var got, want []string
	for i, line := range lines {
		g, _ := json.Marshal(withoutTime(t, line, start))
		w, _ := json.Marshal(asJSON(t, slogAppLines[i%len(slogAppLines)]))
		got, want = append(got, string(g)), append(want, string(w))
	}
	if !ordered {
		slices.Sort(got)
		slices.Sort(want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("line %d:\n got %s\nwant %s", i+1, got[i], want[i])
		}
	}
}

func TestOTLPIngestGoSDK(t *testing.T) {
	s := startCaddy(t, ingestCaddyfile)
	start := time.Now()
	// The app named by the handler, then by service.name; plain, then gzip.
	for _, run := range []struct {
		path string
		gzip bool
	}{{"/otlp/shop/v1/logs", false}, {"/otlp/v1/logs", true}} {
		err := otelApp(t, s.URL(run.path), run.gzip, slogApp)
		if want := "OTLP partial success: dropped: below their facility's level (1 logs rejected)"; err == nil || !strings.Contains(err.Error(), want) || strings.Count(err.Error(), "OTLP") != 1 {
			t.Errorf("%s: the exporter reported %v, want one %q", run.path, err, want)
		}
	}
	checkSlogAppLines(t, filepath.Join(s.Dir, "shop.log"), start, 2, true)
}

// TestOTLPIngestCollector puts an OpenTelemetry Collector (built from the
// collector's modules, integration/otelcol) between the app and Caddy:
// the app exports to the Collector's OTLP receiver, which forwards
// through two otlphttp exporters, one in protobuf to the handler that
// names the app and one in JSON to the one that takes service.name.
func TestOTLPIngestCollector(t *testing.T) {
	otelcol := buildOtelcol(t)
	s := startCaddy(t, ingestCaddyfile)
	port := freePort(t)
	config := otelcolConfig(port, fmt.Sprintf(`  otlphttp/proto:
    logs_endpoint: %s
    encoding: proto
    compression: gzip
  otlphttp/json:
    logs_endpoint: %s
    encoding: json
    compression: none
`, s.URL("/otlp/shop/v1/logs"), s.URL("/otlp/v1/logs")), "otlphttp/proto", "otlphttp/json")
	cfgPath := filepath.Join(s.Dir, "otelcol.yaml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := testdaemon.Start(context.Background(), "otelcol", exec.Command(otelcol, "--config", "file:"+cfgPath), port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.Stop()
		if t.Failed() {
			t.Logf("collector output:\n%s", d.Output())
		}
	})
	start := time.Now()
	// The Collector accepts everything; Caddy's partial success for the
	// record below its level goes to the Collector's log.
	if err := otelApp(t, fmt.Sprintf("http://127.0.0.1:%d/v1/logs", port), false, slogApp); err != nil {
		t.Fatalf("export to the collector: %v", err)
	}
	checkSlogAppLines(t, filepath.Join(s.Dir, "shop.log"), start, 2, false)
}

// buildOtelcol builds the test Collector once per run, outside the
// workspace, so that its dependencies stay out of Caddy's build.
func buildOtelcol(t *testing.T) string {
	t.Helper()
	otelcolOnce.Do(func() {
		bin := filepath.Join(filepath.Dir(caddyBin), "otelcol")
		cmd := exec.Command("go", "build", "-o", bin, ".")
		cmd.Dir = "otelcol"
		cmd.Env = append(os.Environ(), "GOWORK=off")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := runBounded(cmd, 20*time.Minute); err != nil {
			otelcolErr = fmt.Errorf("building the collector: %v\n%s", err, out.String())
			return
		}
		otelcolBin = bin
	})
	if otelcolErr != nil {
		t.Fatal(otelcolErr)
	}
	return otelcolBin
}

var (
	otelcolOnce sync.Once
	otelcolBin  string
	otelcolErr  error
)

// TestOTLPIngestJSONCurl posts OTLP's JSON encoding with curl, as a
// Collector's otlphttp exporter with encoding json does, and checks the
// documented answers: partial success, and errors as google.rpc.Status.
func TestOTLPIngestJSONCurl(t *testing.T) {
	curl := requireTool(t, "curl")
	s := startCaddy(t, ingestCaddyfile)
	run := func(path, ctype string, body []byte) (int, string, string) {
		t.Helper()
		cmd := exec.Command(curl, "-sS", "-o", "-", "-w", "\n%{http_code} %{content_type}", "-X", "POST",
			"-H", "Content-Type: "+ctype, "--data-binary", "@-", s.URL(path))
		cmd.Stdin = bytes.NewReader(body)
		var out bytes.Buffer
		cmd.Stdout = &out
		if err := runBounded(cmd, 20*time.Second); err != nil {
			t.Fatalf("curl: %v", err)
		}
		text := out.String()
		i := strings.LastIndexByte(text, '\n')
		code, ct, _ := strings.Cut(text[i+1:], " ")
		n, _ := strconv.Atoi(code)
		return n, ct, text[:i]
	}
	start := time.Now()
	body := `{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"shop"}}]},
	 "scopeLogs":[{"scope":{"name":"shop.jobs","version":"2.0"},"logRecords":[
	  {"timeUnixNano":"` + strconv.FormatInt(start.UnixNano(), 10) + `","severityNumber":17,"severityText":"ERROR",
	   "body":{"kvlistValue":{"values":[{"key":"message","value":{"stringValue":"job failed"}},{"key":"tries","value":{"intValue":"3"}}]}},
	   "attributes":[{"key":"job","value":{"stringValue":"mail"}},{"key":"big","value":{"intValue":"9007199254740993"}}],
	   "traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"eee19b7ec3c1b174"},
	  {"severityNumber":9,"body":{"stringValue":"fine"},"attributes":[{"key":"logger","value":{"stringValue":"shop.noisy.sub"}}]}
	 ]}]}]}`
	code, ct, resp := run("/otlp/v1/logs", "application/json", []byte(body))
	var answer collogs.ExportLogsServiceResponse
	if err := protojson.Unmarshal([]byte(resp), &answer); err != nil || code != 200 || ct != "application/json" ||
		answer.PartialSuccess.GetRejectedLogRecords() != 1 || answer.PartialSuccess.GetErrorMessage() != "dropped: below their facility's level" {
		t.Fatalf("%d %s %s (%v)", code, ct, resp, err)
	}
	lines := waitLines(t, filepath.Join(s.Dir, "shop.log"), 1)
	if len(lines) != 1 {
		t.Fatalf("%d lines", len(lines))
	}
	got := withoutTime(t, lines[0], start.Add(-time.Nanosecond))
	if ts := fmt.Sprint(lines[0]["ts"]); ts != strconv.FormatInt(start.UnixNano(), 10) {
		t.Errorf("ts %s, want the record's time %d", ts, start.UnixNano())
	}
	want := asJSON(t, `{"level":"error","logger":"applog.shop.shop.jobs","msg":"job failed","app":"shop","facility":"shop.jobs","host":"127.0.0.1","logger_name":"shop.jobs","level_name":"ERROR","level_no":40,
	  "attrs":{"job":"mail","big":9007199254740993,"body":{"message":"job failed","tries":3},"trace_id":"5b8efff798038103d269b633813fc60c","span_id":"eee19b7ec3c1b174","scope_version":"2.0"}}`)
	if !reflect.DeepEqual(got, want) {
		gj, _ := json.Marshal(got)
		t.Errorf("got %s", gj)
	}

	// Errors, each answered with a google.rpc.Status in the request's
	// encoding, and nothing written.
	big := `{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"` + strings.Repeat("x", 3000) + `"}}]}]}]}`
	for _, tc := range []struct {
		path, ctype string
		body        []byte
		code        int
		reason      string
	}{
		{"/otlp/shop/v1/logs", "application/x-protobuf", []byte("\x0a\x05\x12\x03"), 400, "malformed OTLP protobuf body: invalid protobuf"},
		{"/otlp/shop/v1/logs", "application/json", []byte(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"severityNumber":true}]}]}]}`), 400, "malformed OTLP JSON body: invalid OTLP JSON"},
		{"/otlp/shop/v1/logs", "application/json", []byte(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"attributes":{"a":1}}]}]}]}`), 400, "malformed OTLP JSON body: invalid OTLP JSON"},
		{"/otlp/shop/v1/logs", "application/json", []byte(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"xyz"}]}]}]}`), 400, "trace_id: want 32 hex digits"},
		{"/otlp/shop/v1/logs", "application/json", []byte(`{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"billing"}}]},"scopeLogs":[{"logRecords":[{}]}]}]}`), 403, `names app "billing", but this endpoint accepts only app "shop"`},
		{"/_applog/small", "application/x-protobuf", []byte(big), 413, "body larger than max_body_size (1.0 KiB)"},
		{"/otlp/shop/v1/logs", "application/x-protobuf", attributeBomb(1 << 20), 413, "more than 250000 messages"},
		{"/otlp/shop/v1/logs", "application/json", []byte(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"attributes":[` + strings.Repeat(`{},`, 300000) + `{}]}]}]}]}`), 413, "more than 250000 objects"},
		{"/otlp/shop/v1/logs", "text/plain", []byte("x"), 415, `unsupported Content-Type "text/plain" for an OTLP export`},
	} {
		code, ct, resp := run(tc.path, tc.ctype, tc.body)
		var st rpcstatus.Status
		unmarshal, wantCT := proto.Unmarshal, "application/x-protobuf"
		if tc.ctype == "application/json" {
			unmarshal, wantCT = protojson.Unmarshal, tc.ctype
		}
		if err := unmarshal([]byte(resp), &st); err != nil || code != tc.code || ct != wantCT || !strings.Contains(st.Message, tc.reason) {
			t.Errorf("%s %s: %d %s %q (%v), want %d and %q", tc.path, tc.ctype, code, ct, st.Message, err, tc.code, tc.reason)
		}
	}
	if out := s.Output(); !strings.Contains(out, `"msg":"rejected OTLP log records","peer":"127.0.0.1","status":413`) {
		t.Errorf("no one-line reason naming the peer in Caddy's log")
	}
	time.Sleep(200 * time.Millisecond)
	if n := len(readLines(t, filepath.Join(s.Dir, "shop.log"))); n != 1 {
		t.Errorf("%d lines after the refused requests, want 1", n)
	}
}

// TestOTLPIngestSigned checks an OTLP export meets a facility's secret as
// any post does: the X-Applog-Signature covers the body as decoded, after
// gzip, and an unsigned or wrongly signed export is refused whole.
func TestOTLPIngestSigned(t *testing.T) {
	s := startCaddy(t, ingestCaddyfile)
	export, err := proto.Marshal(&collogs.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{{Key: "service.name",
			Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "billing"}}}}},
		ScopeLogs: []*logspb.ScopeLogs{{Scope: &commonpb.InstrumentationScope{Name: "billing.invoices"},
			LogRecords: []*logspb.LogRecord{{SeverityNumber: logspb.SeverityNumber_SEVERITY_NUMBER_WARN,
				Body: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "invoice 1042 late"}}}}}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	_, _ = zw.Write(export)
	_ = zw.Close()
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	for _, tc := range []struct {
		name, sig string
		status    int
		code      int32
	}{
		{"unsigned", "", 401, 16},
		{"signed over the compressed bytes", sign("s3cret", ts, zipped.Bytes()), 403, 7},
		{"signed over the export", sign("s3cret", ts, export), 200, 0},
	} {
		header := http.Header{"Content-Encoding": {"gzip"}}
		if tc.sig != "" {
			header.Set("X-Applog-Signature", tc.sig)
		}
		status, body := post(t, s.URL("/otlp/v1/logs"), "application/x-protobuf", zipped.Bytes(), header)
		var st rpcstatus.Status
		if err := proto.Unmarshal([]byte(body), &st); err != nil || status != tc.status || st.Code != tc.code {
			t.Errorf("%s: %d %v (%v), want %d with code %d", tc.name, status, &st, err, tc.status, tc.code)
		}
	}
	waitLines(t, filepath.Join(s.Dir, "billing.log"), 1)
	time.Sleep(200 * time.Millisecond)
	if lines := readLines(t, filepath.Join(s.Dir, "billing.log")); len(lines) != 1 ||
		lines[0]["app"] != "billing" || lines[0]["facility"] != "billing.invoices" || lines[0]["msg"] != "invoice 1042 late" || lines[0]["level"] != "warn" {
		t.Errorf("billing.log: %v", lines)
	}
}

// attributeBomb is an export of one log record with n empty attributes,
// two bytes each on the wire and some hundred in memory once decoded.
func attributeBomb(n int) []byte {
	rec := bytes.Repeat([]byte{0x32, 0x00}, n) // LogRecord.attributes, empty
	nest := func(field protowire.Number, inner []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(nil, field, protowire.BytesType), inner)
	}
	return nest(1, nest(2, nest(2, rec))) // resource_logs.scope_logs.log_records
}
