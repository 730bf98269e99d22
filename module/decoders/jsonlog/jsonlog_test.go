package jsonlog

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/caddy-applog/caddy-applog/module/intake"
)

var now = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

func TestDecodeSlog(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	l.Info("invoice sent", "logger", "billing.worker", "n", 3, "ratio", 0.25, "ok", true,
		"nested", map[string]any{"b": 1, "a": []int{1, 2}}, "nothing", nil)
	l.Log(context.Background(), slog.LevelWarn+2, "odd level")
	recs, err := Decode(buf.Bytes(), Limits{}, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 {
		t.Fatalf("got %d records", len(recs))
	}
	r := recs[0]
	if r.Message != "invoice sent" || r.LevelNo != 20 || r.LevelName != "INFO" || r.Logger != "billing.worker" {
		t.Fatalf("record: %+v", r)
	}
	if time.Since(r.Time) > time.Minute {
		t.Fatalf("time not taken from record: %v", r.Time)
	}
	want := []intake.Attr{
		{Key: "n", Value: intake.Int(3)},
		{Key: "ratio", Value: intake.Float(0.25)},
		{Key: "ok", Value: intake.Bool(true)},
		{Key: "nested", Value: intake.JSON(`{"a":[1,2],"b":1}`)},
		{Key: "nothing", Value: intake.Null()},
	}
	if len(r.Attrs) != len(want) {
		t.Fatalf("attrs: %+v", r.Attrs)
	}
	for i := range want {
		if r.Attrs[i] != want[i] {
			t.Errorf("attr %d = %+v, want %+v", i, r.Attrs[i], want[i])
		}
	}
	if recs[1].LevelName != "WARN+2" || recs[1].LevelNo != 35 {
		t.Fatalf("slog level with offset: %+v", recs[1])
	}
}

func TestDecodeShapes(t *testing.T) {
	for name, body := range map[string]string{
		"object": `{"msg":"a"}`,
		"array":  ` [ {"msg":"a"} , {"msg":"b"} ] `,
		"ndjson": "{\"msg\":\"a\"}\n{\"msg\":\"b\"}\r\n\n{\"msg\":\"c\"}\n",
		"mixed":  `[{"msg":"a"}] {"msg":"b"}`,
	} {
		recs, err := Decode([]byte(body), Limits{}, now)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if recs[0].Message != "a" {
			t.Errorf("%s: %+v", name, recs)
		}
	}
}

func TestDecodeKeys(t *testing.T) {
	body := `{"message":"rendered","msg":"tmpl %s","levelname":"WARNING","created":1763726400.25,` +
		`"name":"django.request","app":"shop","facility":"web..req","host":"claimed","e":"\u00e9\ud83d\ude00\t"}`
	recs, err := Decode([]byte(body), Limits{}, now)
	if err != nil {
		t.Fatal(err)
	}
	r := recs[0]
	if r.Message != "rendered" || r.LevelNo != 30 || r.Logger != "django.request" || r.App != "shop" || r.Facility != "web.req" {
		t.Fatalf("%+v", r)
	}
	if !r.Time.Equal(time.Unix(1763726400, 250000000)) {
		t.Fatalf("time %v", r.Time)
	}
	keys := []string{}
	for _, a := range r.Attrs {
		keys = append(keys, a.Key+"="+a.Value.String())
	}
	if got := strings.Join(keys, ","); got != "host=claimed,e=é😀\t,msg=tmpl %s" {
		t.Fatalf("attrs: %s", got)
	}
}

func TestDecodeTimes(t *testing.T) {
	for body, want := range map[string]time.Time{
		`{"msg":"x","time":"2026-11-21T10:00:00.123456789+01:00"}`: time.Date(2026, 11, 21, 9, 0, 0, 123456789, time.UTC),
		`{"msg":"x","ts":1763726400}`:                              time.Unix(1763726400, 0),
		`{"msg":"x","timestamp":1763726400123}`:                    time.UnixMilli(1763726400123),
		`{"msg":"x","@timestamp":1763726400123456789}`:             time.Unix(0, 1763726400123456789),
		`{"msg":"x","time":"yesterday"}`:                           now,
	} {
		recs, err := Decode([]byte(body), Limits{}, now)
		if err != nil {
			t.Fatal(err)
		}
		if !recs[0].Time.Equal(want) {
			t.Errorf("%s: time %v, want %v", body, recs[0].Time, want)
		}
	}
}

func TestDecodeNumbers(t *testing.T) {
	recs, err := Decode([]byte(`{"msg":"x","big":123456789012345678901234567890,"huge":1e400,"neg":-0.5e-3,"level":40}`), Limits{}, now)
	if err != nil {
		t.Fatal(err)
	}
	r := recs[0]
	if r.LevelNo != 40 || r.LevelName != "ERROR" {
		t.Fatalf("numeric level: %+v", r)
	}
	want := []intake.Attr{
		{Key: "big", Value: intake.JSON("123456789012345678901234567890")},
		{Key: "huge", Value: intake.JSON("1e400")},
		{Key: "neg", Value: intake.Float(-0.0005)},
	}
	for i := range want {
		if r.Attrs[i] != want[i] {
			t.Errorf("attr %d = %+v, want %+v", i, r.Attrs[i], want[i])
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	deep := strings.Repeat("[", 100) + strings.Repeat("]", 100)
	many := "{" + strings.Repeat(`"k":1,`, 20) + `"msg":"x"}`
	for body, want := range map[string]string{
		``:                               "no records",
		`   `:                            "no records",
		`"just a string"`:                "line 1: expected a JSON object or array",
		`{"msg":"a"}` + "\n" + `{"msg":`: "line 2: unexpected end of body",
		`[1,2]`:                          "array elements must be objects",
		`{"msg":"a",}`:                   "expected a string",
		`{"msg":"a"`:                     "expected ',' or '}'",
		"{\"msg\":\"a\x01\"}":            "control character",
		`{"msg":"\q"}`:                   "invalid escape",
		`{"msg":"\u12"}`:                 "invalid \\u escape",
		`{"msg":tru}`:                    "invalid literal",
		`{"msg":01}`:                     "expected ',' or '}'",
		`{"msg":-}`:                      "invalid number",
		`{"a":` + deep + `}`:             "nesting deeper than 64",
		many:                             "more than 10 fields",
		`{}`:                             "empty record object",
		`[{"msg":"a"},{"msg":"b"},{"msg":"c"},{"msg":"d"}]`: "more than 3 records",
	} {
		_, err := Decode([]byte(body), Limits{MaxFields: 10, MaxRecords: 3}, now)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Decode(%.40q): error %v, want it to contain %q", body, err, want)
		}
	}
}

func TestDecodeText(t *testing.T) {
	recs, err := DecodeText([]byte("first line\r\n\n  \nsecond \xff line"), Limits{}, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].Message != "first line" || recs[1].Message != "second \uFFFD line" || recs[0].LevelNo != 20 {
		t.Fatalf("%+v", recs)
	}
	if _, err := DecodeText([]byte("\n\n"), Limits{}, now); err == nil {
		t.Fatal("empty text body accepted")
	}
}

// FuzzDecode checks that no input panics the decoder and that nested
// documents it keeps are valid, single-line JSON.
func FuzzDecode(f *testing.F) {
	for _, s := range append(fuzzSeeds, `{"msg":"a","n":[1,{"b":null}]}`, "{\"a\":\n[1,\n2]}", `[{"level":"INFO+2"}]`, `{"time":1e400}`, `{"x":"\ud800"}`) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		recs, err := Decode(body, Limits{MaxDepth: 16}, now)
		if err != nil {
			if n := errLine(t, err); n > bytes.Count(body, []byte{'\n'})+1 {
				t.Fatalf("error %q names a line past the body's last", err)
			}
			return
		}
		for _, r := range recs {
			if !utf8.ValidString(r.Message) || r.LevelName == "" {
				t.Fatalf("record %+v", r)
			}
			for _, a := range r.Attrs {
				if a.Value.Kind == intake.KindJSON {
					if !json.Valid([]byte(a.Value.Str)) || strings.ContainsAny(a.Value.Str, "\n\r") {
						t.Fatalf("attr %s holds bad JSON %q", a.Key, a.Value.Str)
					}
				}
			}
		}
	})
}

func BenchmarkDecodeNDJSON(b *testing.B) {
	line := `{"time":"2026-11-21T10:00:00.123456789Z","level":"INFO","msg":"request served","logger":"web","path":"/api/v1/items","status":200,"duration":0.0123,"user":{"id":42}}` + "\n"
	body := []byte(strings.Repeat(line, 100))
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(body, Limits{}, now); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*100), "ns/record")
}

func TestErrorLines(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		lines      bool // DecodeLines rather than Decode
		want       string
	}{
		{"ndjson: unclosed object on line 2", "{\"msg\":\"a\"}\n{\"msg\":\"b\"\n{\"msg\":\"c\"}\n", true, "line 2: unexpected end of line"},
		{"ndjson: after blank lines", "{\"msg\":\"a\"}\n\n\n{\"msg\":\"b\",}\n", true, "line 4: expected a string"},
		{"ndjson: CRLF", "{\"msg\":\"a\"}\r\n{\"msg\":\"b\"}\r\n{\"msg\" \"c\"}\r\n", true, "line 3: expected ':' after key \"msg\""},
		{"ndjson: broken string", "{\"msg\":\"a\"}\n{\"msg\":\"b}\n{\"msg\":\"c\"}\n", true, "line 2: unterminated string"},
		{"ndjson: a batch per line", "[{\"msg\":\"a\"},{\"msg\":\"b\"}]\n[{\"msg\":\"c\"} {\"msg\":\"d\"}]\n", true, "line 2: expected ',' or ']' in array"},
		{"ndjson: garbage line", "{\"msg\":\"a\"}\n\nhello\n", true, "line 3: expected a JSON object or array"},
		{"stream: missing brace blamed on its line", "{\"msg\":\"a\"}\n{\"msg\":\"b\"\n\n\n{\"msg\":\"c\"}\n", false, "line 2: expected ',' or '}' after value of \"msg\""},
		{"stream: trailing comma", "{\"msg\":\"a\",\n\n}\n", false, "line 1: expected a string"},
		{"stream: missing comma in array", "[{\"msg\":\"a\"}\r\n\r\n{\"msg\":\"b\"}]", false, "line 1: expected ',' or ']' in array"},
		{"stream: unexpected character", "{\"msg\":\"a\"}\n\n{\"msg\":x}", false, "line 3: unexpected character 'x'"},
		{"stream: cut short", "{\"msg\":\"a\",\n\"b\":", false, "line 2: unexpected end of body"},
	} {
		decode := Decode
		if tc.lines {
			decode = DecodeLines
		}
		_, err := decode([]byte(tc.body), Limits{}, now)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestDecodeLines(t *testing.T) {
	body := "{\"msg\":\"a\"}\r\n\n  \n[{\"msg\":\"b\"},{\"msg\":\"c\"}]\n{\"msg\":\"d\"} {\"msg\":\"e\"}"
	recs, err := DecodeLines([]byte(body), Limits{}, now)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, r.Message)
	}
	if strings.Join(got, ",") != "a,b,c,d,e" {
		t.Fatalf("got %v", got)
	}
	if _, err := DecodeLines([]byte("\n \r\n"), Limits{}, now); err == nil || err.Error() != "no records in body" {
		t.Fatalf("blank body: %v", err)
	}
}

func TestUnknownLevel(t *testing.T) {
	_, err := Decode([]byte("{\"msg\":\"a\"}\n{\"msg\":\"b\",\"level\":\"loud\"}"), Limits{}, now)
	if err == nil || !strings.HasPrefix(err.Error(), `line 2: unknown level "loud": use a number`) || !strings.Contains(err.Error(), "warning") {
		t.Fatalf("got %v", err)
	}
	// A number beside an unknown name decides, and the name is kept.
	recs, err := Decode([]byte(`{"msg":"a","levelname":"TRACE5","levelno":5}`), Limits{}, now)
	if err != nil || recs[0].LevelNo != 5 || len(recs[0].Attrs) != 1 || recs[0].Attrs[0].Value.Str != "TRACE5" {
		t.Fatalf("custom level with a number: %+v, %v", recs, err)
	}
	for _, name := range []string{"WARNING", "warn", "Notice", "INFO+2", "Level 25", "35"} {
		if _, err := Decode([]byte(`{"msg":"a","level":"`+name+`"}`), Limits{}, now); err != nil {
			t.Errorf("level %q: %v", name, err)
		}
	}
}

func TestNonStringMessage(t *testing.T) {
	for body, want := range map[string]string{
		`{"msg":{"a": [1, 2]}}`:              `{"a":[1,2]}`,
		`{"msg":[1,"x"]}`:                    `[1,"x"]`,
		`{"msg":12.50}`:                      `12.50`,
		`{"msg":-3}`:                         `-3`,
		`{"msg":true}`:                       `true`,
		`{"message":{"k":"v"},"msg":"tmpl"}`: `{"k":"v"}`,
	} {
		recs, err := Decode([]byte(body), Limits{}, now)
		if err != nil || recs[0].Message != want {
			t.Errorf("%s: got %+v, %v; want message %q", body, recs, err, want)
		}
	}
	recs, err := Decode([]byte(`{"msg":null,"logger":"x"}`), Limits{}, now)
	if err != nil || recs[0].Message != "" || len(recs[0].Attrs) != 1 || recs[0].Attrs[0].Key != "msg" {
		t.Fatalf("null message: %+v, %v", recs, err)
	}
}
