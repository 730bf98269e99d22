package otlp

import (
	"errors"
	"strings"
	"testing"
	"time"

	collogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	common "go.opentelemetry.io/proto/otlp/common/v1"
	logs "go.opentelemetry.io/proto/otlp/logs/v1"
	resource "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/protobuf/proto"

	"github.com/caddy-applog/caddy-applog/module/intake"
)

var now = time.Unix(1764900000, 0)

func str(s string) *common.AnyValue {
	return &common.AnyValue{Value: &common.AnyValue_StringValue{StringValue: s}}
}

func kv(k string, v *common.AnyValue) *common.KeyValue { return &common.KeyValue{Key: k, Value: v} }

// sample is one export with everything the mapping reads.
func sample() *collogs.ExportLogsServiceRequest {
	return &collogs.ExportLogsServiceRequest{ResourceLogs: []*logs.ResourceLogs{{
		Resource: &resource.Resource{Attributes: []*common.KeyValue{
			kv("service.name", str("shop")),
			kv("host.name", str("web-1")),
		}},
		ScopeLogs: []*logs.ScopeLogs{{
			Scope: &common.InstrumentationScope{Name: "shop.views", Version: "1.2"},
			LogRecords: []*logs.LogRecord{
				{
					TimeUnixNano:   1764900000123456789,
					SeverityNumber: logs.SeverityNumber_SEVERITY_NUMBER_WARN,
					SeverityText:   "WARN",
					Body:           str("user alice logged in"),
					Attributes: []*common.KeyValue{
						kv("user", str("alice")),
						kv("n", &common.AnyValue{Value: &common.AnyValue_IntValue{IntValue: 42}}),
						kv("tags", &common.AnyValue{Value: &common.AnyValue_ArrayValue{ArrayValue: &common.ArrayValue{Values: []*common.AnyValue{str("a"), {Value: &common.AnyValue_DoubleValue{DoubleValue: 1.5}}}}}}),
					},
					TraceId: []byte{0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c},
					SpanId:  []byte{0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74},
					Flags:   1,
				},
				{
					ObservedTimeUnixNano: 1764900001000000000,
					SeverityNumber:       logs.SeverityNumber_SEVERITY_NUMBER_INFO3,
					Body: &common.AnyValue{Value: &common.AnyValue_KvlistValue{KvlistValue: &common.KeyValueList{Values: []*common.KeyValue{
						kv("msg", str("structured")), kv("k", &common.AnyValue{Value: &common.AnyValue_BoolValue{BoolValue: true}}),
					}}}},
					Attributes: []*common.KeyValue{kv("logger", str("shop.jobs"))},
				},
			},
		}},
	}}}
}

const sampleJSON = `{"resourceLogs":[{"resource":{"attributes":[
 {"key":"service.name","value":{"stringValue":"shop"}},{"key":"host.name","value":{"stringValue":"web-1"}}]},
 "scopeLogs":[{"scope":{"name":"shop.views","version":"1.2"},"logRecords":[
  {"timeUnixNano":"1764900000123456789","severityNumber":13,"severityText":"WARN","body":{"stringValue":"user alice logged in"},
   "attributes":[{"key":"user","value":{"stringValue":"alice"}},{"key":"n","value":{"intValue":"42"}},
    {"key":"tags","value":{"arrayValue":{"values":[{"stringValue":"a"},{"doubleValue":1.5}]}}}],
   "traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"eee19b7ec3c1b174","flags":1},
  {"observedTimeUnixNano":"1764900001000000000","severityNumber":"SEVERITY_NUMBER_INFO3",
   "body":{"kvlistValue":{"values":[{"key":"msg","value":{"stringValue":"structured"}},{"key":"k","value":{"boolValue":true}}]}},
   "attributes":[{"key":"logger","value":{"stringValue":"shop.jobs"}}],"unknownField":1}]}]}]}`

func attrsOf(r intake.Record) string {
	var b strings.Builder
	for _, a := range r.Attrs {
		b.WriteString(a.Key + "=" + a.Value.String() + " ")
	}
	return strings.TrimSpace(b.String())
}

func TestDecodeBothFormats(t *testing.T) {
	pb, err := proto.Marshal(sample())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		body   []byte
		format Format
	}{{"protobuf", pb, Protobuf}, {"json", []byte(sampleJSON), JSON}} {
		t.Run(tc.name, func(t *testing.T) {
			recs, err := Decode(tc.body, tc.format, Limits{}, now)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != 2 {
				t.Fatalf("got %d records", len(recs))
			}
			r := recs[0]
			if r.App != "shop" || r.Logger != "shop.views" || r.Facility != "" || r.Message != "user alice logged in" ||
				r.LevelNo != 30 || r.LevelName != "WARN" || !r.Time.Equal(time.Unix(0, 1764900000123456789)) || r.Host != "" {
				t.Errorf("record 1: %+v", r)
			}
			want := `user=alice n=42 tags=["a",1.5] trace_id=5b8efff798038103d269b633813fc60c span_id=eee19b7ec3c1b174 trace_flags=1 scope_version=1.2 resource={"host.name":"web-1"}`
			if got := attrsOf(r); got != want {
				t.Errorf("record 1 attrs:\n got %s\nwant %s", got, want)
			}
			r = recs[1]
			if r.Logger != "shop.jobs" || r.Message != "structured" || r.LevelNo != 25 || r.LevelName != "INFO3" ||
				!r.Time.Equal(time.Unix(1764900001, 0)) {
				t.Errorf("record 2: %+v", r)
			}
			want = `body={"msg":"structured","k":true} scope_version=1.2 resource={"host.name":"web-1"}`
			if got := attrsOf(r); got != want {
				t.Errorf("record 2 attrs:\n got %s\nwant %s", got, want)
			}
			if r.Wire <= 0 || r.Wire > len(tc.body) {
				t.Errorf("wire %d of a %d-byte body", r.Wire, len(tc.body))
			}
		})
	}
}

func TestLevels(t *testing.T) {
	for n, want := range map[int]int{1: 1, 4: 8, 5: 10, 9: 20, 10: 23, 11: 25, 13: 30, 17: 40, 21: 50, 24: 58} {
		if got := Level(n); got != want {
			t.Errorf("Level(%d) = %d, want %d", n, got, want)
		}
	}
	for n, want := range map[int]string{1: "TRACE", 6: "DEBUG2", 9: "INFO", 16: "WARN4", 24: "FATAL4", 0: "", 25: ""} {
		if got := SeverityName(n); got != want {
			t.Errorf("SeverityName(%d) = %q, want %q", n, got, want)
		}
	}
	one := func(lr string) (intake.Record, error) {
		recs, err := Decode([]byte(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[`+lr+`]}]}]}`), JSON, Limits{}, now)
		if err != nil {
			return intake.Record{}, err
		}
		return recs[0], nil
	}
	for lr, want := range map[string]string{
		`{"severityText":"notice"}`: "25 notice",
		`{}`:                        "20 INFO",
		`{"severityNumber":17,"severityText":"oops"}`: "40 oops",
	} {
		r, err := one(lr)
		if err != nil {
			t.Fatalf("%s: %v", lr, err)
		}
		if got := intake.Int(int64(r.LevelNo)).String() + " " + r.LevelName; got != want {
			t.Errorf("%s: got %s, want %s", lr, got, want)
		}
	}
	for lr, want := range map[string]string{
		`{"severityText":"loud"}`:                `unknown severity_text "loud"`,
		`{"severityNumber":30}`:                  "severity_number 30",
		`{"traceId":"abc"}`:                      "trace_id: want 32 hex digits",
		`{"traceId":"W47/95gDgQPSabYzgT/GDA=="}`: "trace_id: want 32 hex digits",
		`{"spanId":"eee19b7ec3c1b17z"}`:          "span_id: want 16 hex digits",
		`{"body":{"intValue":"x"}}`:              "invalid OTLP JSON",
		`{"attributes":[{"key":"a","value":1}]}`: "invalid OTLP JSON",
		`{"timeUnixNano":"-1"}`:                  "invalid OTLP JSON",
	} {
		if _, err := one(lr); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", lr, err, want)
		}
	}
}

func TestServiceName(t *testing.T) {
	for res, want := range map[string]string{
		`{"attributes":[{"key":"service.name","value":{"stringValue":"unknown_service:app"}}]}`: "",
		`{}`: "",
		`{"attributes":[{"key":"service.name","value":{"stringValue":"billing"}}]}`: "billing",
	} {
		recs, err := Decode([]byte(`{"resourceLogs":[{"resource":`+res+`,"scopeLogs":[{"logRecords":[{}]}]}]}`), JSON, Limits{}, now)
		if err != nil {
			t.Fatal(err)
		}
		if recs[0].App != want {
			t.Errorf("%s: app %q, want %q", res, recs[0].App, want)
		}
		if len(recs[0].Attrs) != 0 {
			t.Errorf("%s: attrs %s", res, attrsOf(recs[0]))
		}
	}
}

func TestLimits(t *testing.T) {
	many := &collogs.ExportLogsServiceRequest{ResourceLogs: []*logs.ResourceLogs{{ScopeLogs: []*logs.ScopeLogs{{}}}}}
	for range 11 {
		sl := many.ResourceLogs[0].ScopeLogs[0]
		sl.LogRecords = append(sl.LogRecords, &logs.LogRecord{Attributes: []*common.KeyValue{kv("a", str("b"))}})
	}
	pb, _ := proto.Marshal(many)
	if _, err := Decode(pb, Protobuf, Limits{MaxRecords: 10}, now); !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "more than 10 log records") {
		t.Errorf("11 records over 10: %v", err)
	}
	if _, err := Decode(pb, Protobuf, Limits{MaxValues: 30}, now); !errors.Is(err, ErrLimit) {
		t.Errorf("values: %v", err)
	}
	if recs, err := Decode(pb, Protobuf, Limits{MaxRecords: 11, MaxValues: 40}, now); err != nil || len(recs) != 11 {
		t.Errorf("at the limits: %d records, %v", len(recs), err)
	}
	// Arrays in arrays, deeper than the limit, in both encodings.
	v := str("x")
	for range 40 {
		v = &common.AnyValue{Value: &common.AnyValue_ArrayValue{ArrayValue: &common.ArrayValue{Values: []*common.AnyValue{v}}}}
	}
	deep := &collogs.ExportLogsServiceRequest{ResourceLogs: []*logs.ResourceLogs{{ScopeLogs: []*logs.ScopeLogs{{LogRecords: []*logs.LogRecord{{Body: v}}}}}}}
	pb, _ = proto.Marshal(deep)
	if _, err := Decode(pb, Protobuf, Limits{MaxDepth: 32}, now); !errors.Is(err, ErrLimit) {
		t.Errorf("deep protobuf: %v", err)
	}
	if recs, err := Decode(pb, Protobuf, Limits{}, now); err != nil || !strings.HasPrefix(recs[0].Attrs[0].Value.Str, "[[[[") {
		t.Errorf("deep protobuf within the default: %v", err)
	}
	js := `{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":` + strings.Repeat(`{"arrayValue":{"values":[`, 40) + `{}` + strings.Repeat(`]}}`, 40) + `}]}]}]}`
	if _, err := Decode([]byte(js), JSON, Limits{MaxDepth: 32}, now); err == nil {
		t.Errorf("deep JSON decoded")
	}
	if _, err := Decode([]byte(strings.Repeat("{", 50)), JSON, Limits{MaxValues: 40}, now); !errors.Is(err, ErrLimit) {
		t.Errorf("JSON objects: %v", err)
	}
	for _, bad := range []string{"\x0a\x05\x12", "\xff\xff\xff", "\x0a\x02\x12\x00\x0a"} {
		if _, err := Decode([]byte(bad), Protobuf, Limits{}, now); err == nil || errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "invalid protobuf") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// TestWireShare checks a large resource is not counted whole by every
// record under it: a record's bound stays near its own size.
func TestWireShare(t *testing.T) {
	req := sample()
	big := strings.Repeat("r", 100000)
	req.ResourceLogs[0].Resource.Attributes = append(req.ResourceLogs[0].Resource.Attributes, kv("big", str(big)))
	pb, _ := proto.Marshal(req)
	recs, err := Decode(pb, Protobuf, Limits{}, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Wire > proto.Size(sample().ResourceLogs[0].ScopeLogs[0].LogRecords[0])+maxContextShare {
			t.Errorf("wire %d", r.Wire)
		}
		if !r.Bound(r.Limit(0)) {
			t.Errorf("a 100 kB resource was not cut from a record")
		}
	}
}
