package pylog

import (
	"fmt"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-applog/caddy-applog/module/intake"
)

// attrMap returns the record's attributes as text, by key.
func attrMap(rec intake.Record) map[string]string {
	m := make(map[string]string, len(rec.Attrs))
	for _, a := range rec.Attrs {
		m[a.Key] = a.Value.String()
	}
	return m
}

func attrKeys(rec intake.Record) []string {
	keys := make([]string, len(rec.Attrs))
	for i, a := range rec.Attrs {
		keys[i] = a.Key
	}
	return keys
}

// form builds fields from key, value pairs.
func form(kv ...string) []Field {
	fields := make([]Field, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		fields = append(fields, Field{Key: kv[i], Value: kv[i+1]})
	}
	return fields
}

// typicalForm is a record as Python 3.12's HTTPHandler posts it.
const typicalForm = "name=app.web&msg=user+%25s+logged+in+from+%25s+after+%25d+tries&args=%28%27alice%27%2C+%2710.0.0.1%27%2C+3%29" +
	"&levelname=INFO&levelno=20&pathname=%2Fsrv%2Fapp%2Fviews.py&filename=views.py&module=views&exc_info=None&exc_text=None" +
	"&stack_info=None&lineno=42&funcName=login&created=1763712345.1234567&msecs=123.0&relativeCreated=5012.345678329468" +
	"&thread=140234234234112&threadName=MainThread&processName=MainProcess&process=4242&taskName=None&request_id=abc-123"

func TestFromFormTypical(t *testing.T) {
	fields, err := ParseForm(typicalForm, 100)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1, 0)
	rec, err := FromForm(fields, now)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Message != "user alice logged in from 10.0.0.1 after 3 tries" {
		t.Errorf("Message = %q", rec.Message)
	}
	if rec.Logger != "app.web" || rec.LevelNo != 20 || rec.LevelName != "INFO" {
		t.Errorf("Logger %q, level %d %q", rec.Logger, rec.LevelNo, rec.LevelName)
	}
	if want := time.Unix(1763712345, 123456700); !rec.Time.Equal(want) {
		t.Errorf("Time = %v, want %v", rec.Time, want)
	}
	wantKeys := []string{"pathname", "filename", "module", "lineno", "funcName", "relativeCreated",
		"thread", "threadName", "processName", "process", "request_id"}
	if got := attrKeys(rec); !reflect.DeepEqual(got, wantKeys) {
		t.Errorf("attr keys = %v\nwant %v", got, wantKeys)
	}
	for _, a := range rec.Attrs {
		want := intake.KindString
		switch a.Key {
		case "lineno", "thread", "process":
			want = intake.KindInt
		case "relativeCreated":
			want = intake.KindFloat
		}
		if a.Value.Kind != want {
			t.Errorf("attr %s has kind %d, want %d", a.Key, a.Value.Kind, want)
		}
	}
}

func TestFromForm(t *testing.T) {
	now := time.Unix(1700000000, 0)
	for _, tc := range []struct {
		name      string
		fields    []Field
		message   string
		level     int
		levelName string
		time      time.Time
		attrs     map[string]string // expected subset; "" means absent
	}{
		{
			name:    "formatter ran",
			fields:  form("name", "x", "msg", "%s", "args", "(1,)", "message", "already 1", "asctime", "2025-01-01 00:00:00,000"),
			message: "already 1", level: 20, levelName: "INFO", time: now,
			attrs: map[string]string{"asctime": "", "args": "", "message": ""},
		},
		{
			name:    "no args",
			fields:  form("msg", "100% sure", "args", "()"),
			message: "100% sure", level: 20, levelName: "INFO", time: now,
			attrs: map[string]string{"args": "", "format_error": ""},
		},
		{
			name:    "args None",
			fields:  form("msg", "%s", "args", "None"),
			message: "%s", level: 20, levelName: "INFO", time: now,
		},
		{
			name:    "dict args",
			fields:  form("msg", "%(user)s did %(n)d things", "args", "{'user': 'bob', 'n': 3}"),
			message: "bob did 3 things", level: 20, levelName: "INFO", time: now,
		},
		{
			name:    "format error keeps msg and args",
			fields:  form("msg", "%s %s", "args", "('only one',)", "levelname", "WARNING"),
			message: "%s %s", level: 30, levelName: "WARNING", time: now,
			attrs: map[string]string{"args": "('only one',)", "format_error": "not enough arguments for format string"},
		},
		{
			name:    "unparseable args",
			fields:  form("msg", "%s", "args", "(oops"),
			message: "%s", level: 20, levelName: "INFO", time: now,
			attrs: map[string]string{"args": "(oops"},
		},
		{
			name:    "args without msg",
			fields:  form("name", "x", "args", "(1,)"),
			message: "", level: 20, levelName: "INFO", time: now,
			attrs: map[string]string{"args": "(1,)", "format_error": "not all arguments converted during string formatting"},
		},
		{
			name:    "levelno wins",
			fields:  form("msg", "m", "levelname", "WARNING", "levelno", "35"),
			message: "m", level: 35, levelName: "WARNING", time: now,
		},
		{
			name:    "only levelno",
			fields:  form("msg", "m", "levelno", "25"),
			message: "m", level: 25, levelName: "Level 25", time: now,
		},
		{
			name:    "only levelname",
			fields:  form("msg", "m", "levelname", "ERROR"),
			message: "m", level: 40, levelName: "ERROR", time: now,
		},
		{
			name:    "bad levelno, custom name",
			fields:  form("msg", "m", "levelno", "x", "levelname", "Level 15"),
			message: "m", level: 15, levelName: "Level 15", time: now,
		},
		{
			name:    "unknown name",
			fields:  form("msg", "m", "levelname", "VERBOSE"),
			message: "m", level: 20, levelName: "VERBOSE", time: now,
		},
		{
			name:    "created rounds to the nanosecond",
			fields:  form("msg", "m", "created", "1763712345.12345678951"),
			message: "m", level: 20, levelName: "INFO", time: time.Unix(1763712345, 123456790),
		},
		{
			name:    "created integral",
			fields:  form("msg", "m", "created", "1763712345"),
			message: "m", level: 20, levelName: "INFO", time: time.Unix(1763712345, 0),
		},
		{
			name:    "created invalid",
			fields:  form("msg", "m", "created", "1.7e9"),
			message: "m", level: 20, levelName: "INFO", time: now,
		},
		{
			name: "exc_info summarized",
			fields: form("msg", "boom", "exc_info",
				"(<class 'ZeroDivisionError'>, ZeroDivisionError('division by zero'), <traceback object at 0x7f3c2a1b4d00>)",
				"exc_text", "None", "stack_info", "None"),
			message: "boom", level: 20, levelName: "INFO", time: now,
			attrs: map[string]string{"exc_info": "ZeroDivisionError: division by zero", "exc_text": "", "stack_info": ""},
		},
		{
			name: "exc_text wins",
			fields: form("msg", "boom", "exc_info", "(<class 'KeyError'>, KeyError('k'), <traceback object at 0x1>)",
				"exc_text", "Traceback (most recent call last):\nKeyError: 'k'"),
			message: "boom", level: 20, levelName: "INFO", time: now,
			attrs: map[string]string{"exc_info": "", "exc_text": "Traceback (most recent call last):\nKeyError: 'k'"},
		},
		{
			name: "module exception",
			fields: form("msg", "m", "exc_info",
				"(<class 'requests.exceptions.HTTPError'>, HTTPError('404 Client Error'), <traceback object at 0x1>)"),
			message: "m", level: 20, levelName: "INFO", time: now,
			attrs: map[string]string{"exc_info": "requests.exceptions.HTTPError: 404 Client Error"},
		},
		{
			name: "exception with keyword arguments",
			fields: form("msg", "m", "exc_info",
				"(<class '__main__.E'>, E(1, code=2), <traceback object at 0x1>)"),
			message: "m", level: 20, levelName: "INFO", time: now,
			attrs: map[string]string{"exc_info": "E: E(1, code=2)"},
		},
		{
			name:    "exc_info not an exception tuple",
			fields:  form("msg", "m", "exc_info", "True"),
			message: "m", level: 20, levelName: "INFO", time: now,
			attrs: map[string]string{"exc_info": "True"},
		},
		{
			name:    "taskName kept when set, stack_info kept",
			fields:  form("msg", "m", "taskName", "Task-1", "stack_info", "Stack (most recent call last):"),
			message: "m", level: 20, levelName: "INFO", time: now,
			attrs: map[string]string{"taskName": "Task-1", "stack_info": "Stack (most recent call last):"},
		},
		{
			name:    "numbers that do not parse stay strings",
			fields:  form("msg", "m", "lineno", "None", "relativeCreated", "nan", "thread", "99999999999999999999"),
			message: "m", level: 20, levelName: "INFO", time: now,
			attrs: map[string]string{"lineno": "None", "relativeCreated": "nan", "thread": "99999999999999999999"},
		},
		{
			name:    "first of repeated keys wins",
			fields:  form("msg", "first", "msg", "second", "user", "a", "user", "b"),
			message: "first", level: 20, levelName: "INFO", time: now,
			attrs: map[string]string{"user": "a", "msg": ""},
		},
		{
			name:    "only a name",
			fields:  form("name", "root"),
			message: "", level: 20, levelName: "INFO", time: now,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, err := FromForm(tc.fields, now)
			if err != nil {
				t.Fatal(err)
			}
			if rec.Message != tc.message {
				t.Errorf("Message = %q, want %q", rec.Message, tc.message)
			}
			if rec.LevelNo != tc.level || rec.LevelName != tc.levelName {
				t.Errorf("level = %d %q, want %d %q", rec.LevelNo, rec.LevelName, tc.level, tc.levelName)
			}
			if !rec.Time.Equal(tc.time) {
				t.Errorf("Time = %v, want %v", rec.Time, tc.time)
			}
			got := attrMap(rec)
			for k, want := range tc.attrs {
				v, ok := got[k]
				switch {
				case want == "" && ok:
					t.Errorf("attr %s = %q, want it absent", k, v)
				case want != "" && v != want:
					t.Errorf("attr %s = %q, want %q", k, v, want)
				}
			}
			if n := len(got); n != len(rec.Attrs) {
				t.Errorf("%d attrs but %d distinct keys", len(rec.Attrs), n)
			}
		})
	}
}

func TestFromFormManyFields(t *testing.T) {
	fields := form("msg", "m")
	for i := range 100 {
		fields = append(fields, Field{Key: "k" + strconv.Itoa(i%50), Value: strconv.Itoa(i)})
	}
	rec, err := FromForm(fields, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Attrs) != 50 || rec.Attrs[49].Key != "k49" || rec.Attrs[49].Value.Str != "49" {
		t.Errorf("got %d attrs, last %+v", len(rec.Attrs), rec.Attrs[len(rec.Attrs)-1])
	}
}

func TestFromFormRejects(t *testing.T) {
	for _, fields := range [][]Field{nil, form("foo", "bar"), form("levelname", "INFO", "args", "(1,)")} {
		if rec, err := FromForm(fields, time.Now()); err == nil {
			t.Errorf("FromForm(%v) = %+v, want an error", fields, rec)
		}
	}
}

// TestFromFormGET checks that a query string decodes like a body: the
// GET form of HTTPHandler sends the same urlencode() output.
func TestFromFormGET(t *testing.T) {
	u, err := url.Parse("http://localhost/log?" + typicalForm)
	if err != nil {
		t.Fatal(err)
	}
	fields, err := ParseForm(u.RawQuery, 100)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := FromForm(fields, time.Now())
	if err != nil || !strings.HasPrefix(rec.Message, "user alice") {
		t.Fatalf("FromForm = %q, %v", rec.Message, err)
	}
}

func BenchmarkFromForm(b *testing.B) {
	now := time.Now()
	b.ReportAllocs()
	b.SetBytes(int64(len(typicalForm)))
	for b.Loop() {
		fields, err := ParseForm(typicalForm, 100)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := FromForm(fields, now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFromFormOnly(b *testing.B) {
	fields, err := ParseForm(typicalForm, 100)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := FromForm(fields, now); err != nil {
			b.Fatal(err)
		}
	}
}

// TestRepeatedKeysManyFields checks the first-wins rule on both sides of
// the 64-key limit of keyIndex, with keys that share buckets (same
// length, first and last byte).
func TestRepeatedKeysManyFields(t *testing.T) {
	for _, n := range []int{10, 63, 64, 65, 200} {
		fields := []Field{{Key: "msg", Value: "m"}}
		for i := range n {
			k := fmt.Sprintf("k%03dz", i) // same length, first and last byte
			fields = append(fields, Field{Key: k, Value: "first"}, Field{Key: k, Value: "second"})
		}
		rec, err := FromForm(fields, time.Unix(0, 0))
		if err != nil {
			t.Fatal(err)
		}
		if len(rec.Attrs) != n {
			t.Fatalf("%d keys given twice: %d attrs, want %d", n, len(rec.Attrs), n)
		}
		for _, a := range rec.Attrs {
			if a.Value.Str != "first" {
				t.Fatalf("%d keys: %s = %q, want the first value", n, a.Key, a.Value.Str)
			}
		}
	}
}
