package ingest_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"

	collogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	common "go.opentelemetry.io/proto/otlp/common/v1"
	logs "go.opentelemetry.io/proto/otlp/logs/v1"
	resource "go.opentelemetry.io/proto/otlp/resource/v1"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

func otlpExport(service string, levels ...logs.SeverityNumber) []byte {
	sl := &logs.ScopeLogs{Scope: &common.InstrumentationScope{Name: "shop.views"}}
	for _, l := range levels {
		sl.LogRecords = append(sl.LogRecords, &logs.LogRecord{
			SeverityNumber: l,
			Body:           &common.AnyValue{Value: &common.AnyValue_StringValue{StringValue: "hello"}},
		})
	}
	req := &collogs.ExportLogsServiceRequest{ResourceLogs: []*logs.ResourceLogs{{
		Resource: &resource.Resource{Attributes: []*common.KeyValue{{Key: "service.name",
			Value: &common.AnyValue{Value: &common.AnyValue_StringValue{StringValue: service}}}}},
		ScopeLogs: []*logs.ScopeLogs{sl},
	}}}
	b, err := proto.Marshal(req)
	if err != nil {
		panic(err)
	}
	return b
}

func gz(b []byte) []byte {
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	_, _ = w.Write(b)
	_ = w.Close()
	return out.Bytes()
}

func TestOTLPInProcess(t *testing.T) {
	tester := startInProcess(t, `
		log_ingest /fixed/v1/logs shop
		log_ingest /small/v1/logs shop {
			max_body_size 200
		}
		log_ingest /any/*`)

	info, debug := logs.SeverityNumber_SEVERITY_NUMBER_INFO, logs.SeverityNumber_SEVERITY_NUMBER_DEBUG
	bomb := gz(bytes.Repeat([]byte{0}, 1<<20))
	for _, tc := range []struct {
		name, path, ctype, encoding string
		body                        []byte
		status                      int
		rejected                    int64  // partial_success.rejected_log_records
		reason                      string // in the google.rpc.Status of an error
	}{
		{"protobuf", "/fixed/v1/logs", "application/x-protobuf", "", otlpExport("shop", info, info), 200, 0, ""},
		{"protobuf elsewhere", "/any/x", "application/x-protobuf", "", otlpExport("shop", info), 200, 0, ""},
		{"below level", "/fixed/v1/logs", "application/x-protobuf", "", otlpExport("shop", info, debug, debug), 200, 2, ""},
		{"gzip", "/fixed/v1/logs", "application/x-protobuf", "gzip", gz(otlpExport("shop", info)), 200, 0, ""},
		{"json", "/any/v1/logs", "application/json", "", []byte(`{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"shop"}}]},"scopeLogs":[{"logRecords":[{"severityNumber":5,"body":{"stringValue":"x"}}]}]}]}`), 200, 1, ""},
		{"empty", "/fixed/v1/logs", "application/json", "", []byte(`{}`), 200, 0, ""},
		{"other service", "/fixed/v1/logs", "application/x-protobuf", "", otlpExport("billing", info), 403, 0, `names app "billing", but this endpoint accepts only app "shop"`},
		{"unknown service", "/any/v1/logs", "application/x-protobuf", "", otlpExport("billing", info), 403, 0, `unknown app "billing"`},
		{"no service", "/any/v1/logs", "application/x-protobuf", "", otlpExport("unknown_service:x", info), 400, 0, "names no app (set the resource attribute service.name"},
		{"bad protobuf", "/fixed/v1/logs", "application/x-protobuf", "", []byte("\x0a\x05\x12"), 400, 0, "malformed OTLP protobuf body: invalid protobuf"},
		{"wrong type", "/fixed/v1/logs", "application/json", "", []byte(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":true}]}]}]}`), 400, 0, "malformed OTLP JSON body"},
		{"bad gzip", "/fixed/v1/logs", "application/x-protobuf", "gzip", []byte("this is not a gzip stream"), 400, 0, "gzip: invalid header"},
		{"oversize", "/small/v1/logs", "application/x-protobuf", "", otlpExport("shop", info, info, info, info, info, info, info, info, info, info, info, info, info, info, info, info, info, info, info, info, info), 413, 0, "body larger than max_body_size"},
		{"gzip bomb", "/small/v1/logs", "application/x-protobuf", "gzip", bomb, 413, 0, "body larger than max_body_size"},
		{"other type", "/fixed/v1/logs", "text/plain", "", []byte("x"), 415, 0, "unsupported Content-Type"},
		{"other encoding", "/fixed/v1/logs", "application/x-protobuf", "br", []byte("x"), 415, 0, `unsupported Content-Encoding "br"`},
	} {
		req, _ := http.NewRequest(http.MethodPost, "http://localhost:9080"+tc.path, bytes.NewReader(tc.body))
		req.Header.Set("Content-Type", tc.ctype)
		if tc.encoding != "" {
			req.Header.Set("Content-Encoding", tc.encoding)
		}
		resp := tester.AssertResponseCode(req, tc.status)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		isJSON := tc.ctype == "application/json"
		unmarshal := proto.Unmarshal
		wantType := "application/x-protobuf"
		if isJSON {
			unmarshal, wantType = protojson.Unmarshal, tc.ctype
		}
		if got := resp.Header.Get("Content-Type"); got != wantType {
			t.Errorf("%s: Content-Type %q, want %q", tc.name, got, wantType)
		}
		if tc.status == 200 {
			var out collogs.ExportLogsServiceResponse
			if err := unmarshal(body, &out); err != nil {
				t.Errorf("%s: response %q: %v", tc.name, body, err)
			}
			if got := out.GetPartialSuccess().GetRejectedLogRecords(); got != tc.rejected {
				t.Errorf("%s: rejected %d, want %d (%q)", tc.name, got, tc.rejected, body)
			}
			if tc.rejected == 0 && len(body) > 0 && string(body) != "{}" {
				t.Errorf("%s: a full success answers an empty response, got %q", tc.name, body)
			}
			continue
		}
		var st rpcstatus.Status
		if err := unmarshal(body, &st); err != nil {
			t.Errorf("%s: error body %q is not a google.rpc.Status: %v", tc.name, body, err)
		}
		if !strings.Contains(st.Message, tc.reason) || st.Code == 0 {
			t.Errorf("%s: status %v, want a message containing %q", tc.name, &st, tc.reason)
		}
	}
	// Only POST exports.
	req, _ := http.NewRequest(http.MethodGet, "http://localhost:9080/fixed/v1/logs", nil)
	resp := tester.AssertResponseCode(req, 405)
	resp.Body.Close()
	if got := resp.Header.Get("Allow"); got != "POST" {
		t.Errorf("Allow %q", got)
	}
}
