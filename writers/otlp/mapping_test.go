package otlp

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	common "go.opentelemetry.io/proto/otlp/common/v1"
	logs "go.opentelemetry.io/proto/otlp/logs/v1"

	"github.com/caddy-applog/caddy-applog/internal/forward"
)

func TestSeverity(t *testing.T) {
	for _, tc := range []struct {
		entry string
		num   logs.SeverityNumber
		text  string
	}{
		{`{"level":"info"}`, 9, "INFO"},
		{`{"level":"debug"}`, 5, "DEBUG"},
		{`{"level":"warn"}`, 13, "WARN"},
		{`{"level":"error"}`, 17, "ERROR"},
		{`{"level":"dpanic"}`, 21, "DPANIC"},
		{`{"level":"fatal"}`, 24, "FATAL"},
		{`{}`, 0, ""},
		// level_no wins, on log_ingest's table read backwards.
		{`{"level":"warn","level_no":30,"level_name":"WARNING"}`, 13, "WARNING"},
		{`{"level":"info","level_no":20,"level_name":"INFO"}`, 9, "INFO"},
		{`{"level":"debug","level_no":10}`, 5, "DEBUG"},
		{`{"level":"error","level_no":40}`, 17, "ERROR"},
		{`{"level":"dpanic","level_no":50,"level_name":"CRITICAL"}`, 21, "CRITICAL"},
		{`{"level":"info","level_no":23,"level_name":"INFO2"}`, 10, "INFO2"},
		{`{"level":"info","level_no":25}`, 11, "INFO"},
		{`{"level":"info","level_no":28}`, 12, "INFO"},
		{`{"level":"dpanic","level_no":58}`, 24, "DPANIC"},
		{`{"level":"debug","level_no":1}`, 1, "DEBUG"},
		{`{"level":"debug","level_no":8}`, 4, "DEBUG"},
		{`{"level":"debug","level_no":13}`, 6, "DEBUG"},
		{`{"level":"warn","level_no":33}`, 14, "WARN"},
		{`{"level":"error","level_no":45}`, 19, "ERROR"},
		{`{"level":"dpanic","level_no":99}`, 24, "DPANIC"},
		{`{"level":"debug","level_no":-5}`, 1, "DEBUG"},
	} {
		m := &mapper{now: time.Now}
		lr, _, _, _ := m.record(forward.Record{Data: []byte(tc.entry)})
		if lr.SeverityNumber != tc.num || lr.SeverityText != tc.text {
			t.Errorf("%s: severity %d %q, want %d %q", tc.entry, lr.SeverityNumber, lr.SeverityText, tc.num, tc.text)
		}
	}
}

// TestMapping maps whole entries and compares the records in OTLP's
// JSON form (protojson's: ids in base64, 01..10 is AQID...EA==).
func TestMapping(t *testing.T) {
	observed := time.Unix(1800000000, 0)
	for _, tc := range []struct {
		name, entry          string
		service, host, scope string
		record               string
	}{
		{
			name:    "applog entry",
			entry:   `{"level":"warn","ts":1795255200.1234567,"logger":"applog.myapp.shop.views","msg":"3 items at 12.50% off","app":"myapp","facility":"shop.views","host":"127.0.0.1","logger_name":"shop.views","level_name":"WARNING","level_no":30,"attrs":{"lineno":42,"ratio":0.5,"tags":["a",true,null]}}`,
			service: "myapp", host: "127.0.0.1", scope: "applog.myapp.shop.views",
			record: `{"timeUnixNano":"1795255200123456700","observedTimeUnixNano":"1800000000000000000","severityNumber":"SEVERITY_NUMBER_WARN","severityText":"WARNING","body":{"stringValue":"3 items at 12.50% off"},"attributes":[{"key":"attrs","value":{"kvlistValue":{"values":[{"key":"lineno","value":{"intValue":"42"}},{"key":"ratio","value":{"doubleValue":0.5}},{"key":"tags","value":{"arrayValue":{"values":[{"stringValue":"a"},{"boolValue":true},{}]}}}]}}},{"key":"facility","value":{"stringValue":"shop.views"}},{"key":"logger_name","value":{"stringValue":"shop.views"}}]}`,
		},
		{
			name:    "caddy's own entry",
			entry:   `{"level":"info","ts":1795255200.5,"logger":"tls","msg":"cleaning storage unit","storage":"FileStorage:/data"}`,
			service: "caddy", host: "this-host", scope: "tls",
			record: `{"timeUnixNano":"1795255200500000000","observedTimeUnixNano":"1800000000000000000","severityNumber":"SEVERITY_NUMBER_INFO","severityText":"INFO","body":{"stringValue":"cleaning storage unit"},"attributes":[{"key":"storage","value":{"stringValue":"FileStorage:/data"}}]}`,
		},
		{
			name:    "access log",
			entry:   `{"level":"info","ts":1795255201,"logger":"http.log.access.log0","msg":"handled request","request":{"remote_ip":"10.0.0.9","remote_port":"51234","client_ip":"203.0.113.7","proto":"HTTP/2.0","method":"GET","host":"shop.example:8443","uri":"/cart?id=7","headers":{"User-Agent":["curl/8.5.0"],"Accept":["*/*"]}},"bytes_read":0,"user_id":"","duration":0.0012,"size":512,"status":200,"resp_headers":{"Server":["Caddy"]}}`,
			service: "caddy", host: "this-host", scope: "http.log.access.log0",
			record: `{"timeUnixNano":"1795255201000000000","observedTimeUnixNano":"1800000000000000000","severityNumber":"SEVERITY_NUMBER_INFO","severityText":"INFO","body":{"stringValue":"handled request"},"attributes":[{"key":"http.request.method","value":{"stringValue":"GET"}},{"key":"url.path","value":{"stringValue":"/cart"}},{"key":"url.query","value":{"stringValue":"id=7"}},{"key":"network.protocol.name","value":{"stringValue":"http"}},{"key":"network.protocol.version","value":{"stringValue":"2"}},{"key":"server.address","value":{"stringValue":"shop.example"}},{"key":"server.port","value":{"intValue":"8443"}},{"key":"client.address","value":{"stringValue":"203.0.113.7"}},{"key":"network.peer.address","value":{"stringValue":"10.0.0.9"}},{"key":"network.peer.port","value":{"intValue":"51234"}},{"key":"user_agent.original","value":{"stringValue":"curl/8.5.0"}},{"key":"http.response.status_code","value":{"intValue":"200"}},{"key":"http.response.body.size","value":{"intValue":"512"}},{"key":"http.request.body.size","value":{"intValue":"0"}},{"key":"duration","value":{"doubleValue":0.0012}},{"key":"request","value":{"kvlistValue":{"values":[{"key":"headers","value":{"kvlistValue":{"values":[{"key":"Accept","value":{"arrayValue":{"values":[{"stringValue":"*/*"}]}}},{"key":"User-Agent","value":{"arrayValue":{"values":[{"stringValue":"curl/8.5.0"}]}}}]}}}]}}},{"key":"resp_headers","value":{"kvlistValue":{"values":[{"key":"Server","value":{"arrayValue":{"values":[{"stringValue":"Caddy"}]}}}]}}},{"key":"user_id","value":{"stringValue":""}}]}`,
		},
		{
			name:    "not JSON",
			entry:   `2026/12/05 03:00:00.000	INFO	plain console line`,
			service: "caddy", host: "this-host",
			record: `{"timeUnixNano":"1795255100000000000","observedTimeUnixNano":"1800000000000000000","body":{"stringValue":"2026/12/05 03:00:00.000\tINFO\tplain console line"}}`,
		},
		{
			name:    "two JSON values on a line",
			entry:   `{"msg":"a"} {"msg":"b"}`,
			service: "caddy", host: "this-host",
			record: `{"timeUnixNano":"1795255100000000000","observedTimeUnixNano":"1800000000000000000","body":{"stringValue":"{\"msg\":\"a\"} {\"msg\":\"b\"}"}}`,
		},
		{
			name:    "time as RFC 3339, msg not a string, nanosecond ts",
			entry:   `{"ts":"2026-12-05T03:00:00.25Z","msg":{"k":1}}`,
			service: "caddy", host: "this-host",
			record: `{"timeUnixNano":"1796439600250000000","observedTimeUnixNano":"1800000000000000000","body":{"kvlistValue":{"values":[{"key":"k","value":{"intValue":"1"}}]}}}`,
		},
		{
			name:    "epoch nanos and millis",
			entry:   `{"ts":1795255200123456789,"msg":"n","t2":1}`,
			service: "caddy", host: "this-host",
			record: `{"timeUnixNano":"1795255200123456789","observedTimeUnixNano":"1800000000000000000","body":{"stringValue":"n"},"attributes":[{"key":"t2","value":{"intValue":"1"}}]}`,
		},
		{
			name:    "trace context under attrs (log_ingest's OTLP door)",
			entry:   `{"msg":"t","attrs":{"trace_id":"0102030405060708090a0b0c0d0e0f10","span_id":"0102030405060708","trace_flags":1}}`,
			service: "caddy", host: "this-host",
			record: `{"timeUnixNano":"1795255100000000000","observedTimeUnixNano":"1800000000000000000","body":{"stringValue":"t"},"traceId":"AQIDBAUGBwgJCgsMDQ4PEA==","spanId":"AQIDBAUGBwg=","flags":1}`,
		},
		{
			name:    "trace context at the top, a bad span id kept",
			entry:   `{"msg":"t","trace_id":"0102030405060708090a0b0c0d0e0f10","span_id":"xyz"}`,
			service: "caddy", host: "this-host",
			record: `{"timeUnixNano":"1795255100000000000","observedTimeUnixNano":"1800000000000000000","body":{"stringValue":"t"},"traceId":"AQIDBAUGBwgJCgsMDQ4PEA==","attributes":[{"key":"span_id","value":{"stringValue":"xyz"}}]}`,
		},
		{
			name:    "a trace id that is not one stays an attribute",
			entry:   `{"msg":"t","trace_id":"abc"}`,
			service: "caddy", host: "this-host",
			record: `{"timeUnixNano":"1795255100000000000","observedTimeUnixNano":"1800000000000000000","body":{"stringValue":"t"},"attributes":[{"key":"trace_id","value":{"stringValue":"abc"}}]}`,
		},
		{
			name:    "epoch millis",
			entry:   `{"ts":1795255200123,"msg":"m"}`,
			service: "caddy", host: "this-host",
			record: `{"timeUnixNano":"1795255200123000000","observedTimeUnixNano":"1800000000000000000","body":{"stringValue":"m"}}`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &mapper{hostname: "this-host", now: func() time.Time { return observed }}
			req := m.export([]forward.Record{{Data: []byte(tc.entry), Time: 1795255100000000000}})
			if len(req.ResourceLogs) != 1 || len(req.ResourceLogs[0].ScopeLogs) != 1 || len(req.ResourceLogs[0].ScopeLogs[0].LogRecords) != 1 {
				t.Fatalf("export %v: want one record", req)
			}
			rl := req.ResourceLogs[0]
			if got := attr(rl.Resource.Attributes, "service.name"); got != tc.service {
				t.Errorf("service.name %q, want %q", got, tc.service)
			}
			if got := attr(rl.Resource.Attributes, "host.name"); got != tc.host {
				t.Errorf("host.name %q, want %q", got, tc.host)
			}
			if got := rl.ScopeLogs[0].Scope.GetName(); got != tc.scope {
				t.Errorf("scope %q, want %q", got, tc.scope)
			}
			got, err := protojson.Marshal(rl.ScopeLogs[0].LogRecords[0])
			if err != nil {
				t.Fatal(err)
			}
			if !jsonEqual(t, got, tc.record) {
				t.Errorf("record\n got %s\nwant %s", got, tc.record)
			}
		})
	}
}

// TestGrouping checks an export's resources (by app and host) and
// scopes (by logger), order of first appearance, and extra resource
// attributes.
func TestGrouping(t *testing.T) {
	m := &mapper{hostname: "h0", now: time.Now, extra: []*common.KeyValue{strKV("deployment.environment.name", "prod")}}
	req := m.export([]forward.Record{
		{Data: []byte(`{"app":"a","host":"h1","logger":"x","msg":"1"}`)},
		{Data: []byte(`{"logger":"http","msg":"2"}`)},
		{Data: []byte(`{"app":"a","host":"h1","logger":"y","msg":"3"}`)},
		{Data: []byte(`{"app":"a","host":"h1","logger":"x","msg":"4"}`)},
		{Data: []byte(`{"app":"a","host":"h2","logger":"x","msg":"5"}`)},
	})
	var got []string
	for _, rl := range req.ResourceLogs {
		if attr(rl.Resource.Attributes, "deployment.environment.name") != "prod" {
			t.Error("extra resource attribute missing")
		}
		for _, sl := range rl.ScopeLogs {
			for _, lr := range sl.LogRecords {
				got = append(got, attr(rl.Resource.Attributes, "service.name")+"/"+attr(rl.Resource.Attributes, "host.name")+"/"+sl.Scope.Name+":"+lr.Body.GetStringValue())
			}
		}
	}
	want := []string{"a/h1/x:1", "a/h1/x:4", "a/h1/y:3", "caddy/h0/http:2", "a/h2/x:5"}
	if len(got) != len(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}

func attr(kvs []*common.KeyValue, k string) string {
	for _, kv := range kvs {
		if kv.Key == k {
			return kv.Value.GetStringValue()
		}
	}
	return ""
}

// jsonEqual compares two JSON texts as values (protojson's spacing is
// deliberately unstable).
func jsonEqual(t *testing.T, a []byte, b string) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(b), &y); err != nil {
		t.Fatalf("want: %v", err)
	}
	return reflect.DeepEqual(x, y)
}

// TestInvalidUTF8Line: a line that is not JSON, with bytes that are not
// UTF-8, still makes an export that encodes (an export that cannot
// would be retried forever, holding up every entry behind it).
func TestInvalidUTF8Line(t *testing.T) {
	m := &mapper{now: time.Now}
	req := m.export([]forward.Record{{Data: []byte("plain \xff\xfe line")}, {Data: []byte(`{"msg":"ok"}`)}})
	if _, err := proto.Marshal(req); err != nil {
		t.Fatalf("the export does not encode: %v", err)
	}
	body := req.ResourceLogs[0].ScopeLogs[0].LogRecords[0].Body.GetStringValue()
	if body != "plain \uFFFD line" {
		t.Errorf("body %q", body)
	}
}
