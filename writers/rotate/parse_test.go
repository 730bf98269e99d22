package rotate

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-applog/caddy-applog/internal/entrytmpl"
)

// hostOf reads the "host" field the way per_host's template does.
func hostOf(p []byte) ([]byte, bool) {
	return entrytmpl.Lookup(p, "host")
}

func sanitizeHost(h []byte) string { return string(appendSanitized(nil, h, true)) }

const maxHostLen = maxValueLen

func TestHostOf(t *testing.T) {
	for in, want := range map[string]string{
		`{"host":"10.0.0.1"}`:                        "10.0.0.1",
		` { "level" : "info" , "host" : "a.b" } `:    "a.b",
		`{"msg":"x","host":"h","host":"second"}`:     "h",
		`{"a":{"host":"inner"},"b":[{"host":"x"}]}`:  "",
		`{"a":"}\"{","host":"after-string"}`:         "after-string",
		`{"n":-1.5e3,"t":true,"z":null,"host":"ok"}`: "ok",
		`{"host":"esc\u0061ped"}`:                    "escaped",
		`{"ho\u0073t":"escaped key"}`:                "",
		`{"host":null}`:                              "",
		`{}`:                                         "",
	} {
		got, ok := hostOf([]byte(in))
		if !ok || string(got) != want {
			t.Errorf("hostOf(%s) = %q, %v; want %q, true", in, got, ok, want)
		}
	}
	for _, in := range []string{``, `[]`, `"host"`, `INFO {"host":"x"}`, `{"host"`, `{"a":1 "host":"x"}`, `{"host":"unterminated`, `{"a":[1,2}`, `{"a":`} {
		if got, ok := hostOf([]byte(in)); ok && got != nil {
			t.Errorf("hostOf(%s) = %q, true; want no host", in, got)
		}
	}
}

func FuzzHostOf(f *testing.F) {
	for _, s := range []string{`{"host":"x"}`, `{"a":[{"b":"}"}],"host":"\u0041"}`, `{"host":1}`, `{`, `{"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		host, ok := hostOf(p)
		if host != nil && !ok {
			t.Fatalf("a host without an object")
		}
		// A valid object with a string host must agree with encoding/json.
		var m map[string]any
		if utf8.Valid(p) && json.Unmarshal(p, &m) == nil && ok {
			if h, isStr := m["host"].(string); isStr && !strings.Contains(string(p), `\`) && string(host) != h {
				// encoding/json keeps the last duplicate key; hostOf the first
				if strings.Count(string(p), `"host"`) == 1 {
					t.Fatalf("hostOf = %q, encoding/json %q", host, h)
				}
			}
		}
		s := sanitizeHost(host)
		if strings.ContainsAny(s, "/\\:") || strings.HasPrefix(s, ".") || strings.Contains(s, "..") || len(s) > maxHostLen {
			t.Fatalf("sanitizeHost(%q) = %q", host, s)
		}
	})
}

func TestSanitizeHost(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.7":               "10.0.0.7",
		"Example.COM":            "example.com",
		"::1":                    "__1",
		"[2001:db8::1]":          "_2001_db8__1_",
		"fe80::1%eth0":           "fe80__1_eth0",
		"..":                     "_.",
		".hidden":                "_hidden",
		"a/../../b":              "a_.__.__b",
		"C:\\x":                  "c__x",
		"":                       "",
		strings.Repeat("a", 300): strings.Repeat("a", maxHostLen),
	} {
		if got := sanitizeHost([]byte(in)); got != want {
			t.Errorf("sanitizeHost(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNameFormat(t *testing.T) {
	at := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
	main := fileSet{dir: "/l", name: "app", base: "app", ext: ".log"}
	host := fileSet{dir: "/l", name: "h.example-app", base: "app", host: "h.example", ext: ".log"}
	for _, tc := range []struct {
		format string
		set    fileSet
		n      int
		want   string
	}{
		{"", main, 0, "app-2026-11-21T00-00-00.log"},
		{"", main, 2, "app-2026-11-21T00-00-00_002.log"},
		{"", host, 0, "h.example-app-2026-11-21T00-00-00.log"},
		{"{base}{ext}.{time}{n}", main, 1, "app.log.2026-11-21T00-00-00_001"},
		{"{host}_{base}-{time}{n}{ext}", host, 0, "h.example_app-2026-11-21T00-00-00.log"},
		// what the Caddyfile makes of {host} in a site block
		{"{http.request.host}_{base}-{time}{n}{ext}", host, 0, "h.example_app-2026-11-21T00-00-00.log"},
	} {
		f, err := parseNameFormat(tc.format, tc.set.host != "")
		if err != nil {
			t.Fatal(err)
		}
		got := f.backupName(tc.set, at, tc.n)
		if got != tc.want {
			t.Errorf("%q: %q, want %q", tc.format, got, tc.want)
		}
		// The matcher recognises every name it makes, and not the live file.
		re := f.matcher(tc.set, false)
		for _, suffix := range []string{"", ".gz", ".zst", ".gz.tmp"} {
			if !re.MatchString(got + suffix) {
				t.Errorf("%q does not match its own backup %q", re, got+suffix)
			}
		}
		if re.MatchString(tc.set.liveName()) || re.MatchString(got+".tmp") {
			t.Errorf("%q matches what is not a backup", re)
		}
		if !f.matcher(main, true).MatchString(f.backupName(host, at, 0)) && strings.Contains(tc.format, "{name}") {
			t.Errorf("the recovery matcher of %q misses host backups", tc.format)
		}
	}
	for format, want := range map[string]string{
		"{name}-{time}{ext}":       "needs {time} and {n}",
		"{name}{n}{ext}":           "needs {time} and {n}",
		"{time}{n}{ext}":           "needs {name} or {base}",
		"logs/{name}-{time}{n}":    "path separator",
		"{name}-{date}{n}":         "unknown token {date}",
		"{name-{time}{n}":          "unknown token",
		"{name}-{time}{n":          "unclosed",
		"{base}-{time}{n}{ext}#ph": "",
	} {
		_, err := parseNameFormat(format, false)
		if want == "" {
			if err != nil {
				t.Errorf("%q: %v", format, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want an error containing %q", format, err, want)
		}
	}
	if _, err := parseNameFormat("{base}-{time}{n}{ext}", true); err == nil || !strings.Contains(err.Error(), "per_host") {
		t.Errorf("per_host with a name_format without the host: %v", err)
	}
}

func TestUnmarshalCaddyfile(t *testing.T) {
	d := caddyfile.NewTestDispenser(`rotate /var/log/app.log {
		every "*/15 * * * *"
		max_size 10MiB
		keep 5
		max_age 30d
		compress zstd 19
		local_time
		mode 0640
		per_host
		flush 500ms
		name_format {name}.{time}{n}{ext}
	}`)
	var w RotateWriter
	if err := w.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(w)
	want := `{"filename":"/var/log/app.log","every":"*/15 * * * *","max_size":10485760,"keep":5,"max_age":2592000000000000,"compress":"zstd","compress_level":19,"local_time":true,"mode":"0640","per_host":true,"flush":"500ms","name_format":"{name}.{time}{n}{ext}"}`
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}

	d = caddyfile.NewTestDispenser(`rotate app.log {
		every 0 3 * * MON-FRI
		keep all
		utc
		flush always
	}`)
	w = RotateWriter{}
	if err := w.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	if w.Every != "0 3 * * MON-FRI" || w.Keep != -1 || w.LocalTime || w.Flush != "always" {
		t.Fatalf("got %+v", w)
	}

	// The last flush line wins, whichever kind each is.
	d = caddyfile.NewTestDispenser("rotate app.log {\nflush 1s\nflush batch\n}")
	w = RotateWriter{}
	if err := w.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	if got, _ := json.Marshal(w); string(got) != `{"filename":"app.log","flush":"batch"}` {
		t.Fatalf("flush batch: got %s", got)
	}
	if err := (&RotateWriter{Filename: "a.log", Flush: "sometimes"}).Validate(); err == nil || !strings.Contains(err.Error(), "want batch, always or an interval") {
		t.Fatalf("flush sometimes: got %v", err)
	}
	// Batch is the default.
	if b, iv, err := parseFlush(""); !b || iv != 0 || err != nil {
		t.Fatalf("default flush: %v %v %v", b, iv, err)
	}

	for in, want := range map[string]string{
		`rotate`:                                                         "wrong argument count",
		`rotate a.log b.log`:                                             "wrong argument count",
		"rotate a.log {\nevery fortnightly\n}":                           "5 cron fields",
		"rotate a.log {\nevery 0 0 * *\n}":                               "every: want",
		"rotate a.log {\nevery \"0 0 30 2 *\"\n}":                        "never fires",
		"rotate a.log {\nmax_size lots\n}":                               "max_size",
		"rotate a.log {\nkeep 0\n}":                                      "keep",
		"rotate a.log {\nmax_age -1h\n}":                                 "max_age",
		"rotate a.log {\ncompress bzip2\n}":                              "gzip, zstd or none",
		"rotate a.log {\ncompress gzip 12\n}":                            "want 1-9",
		"rotate a.log {\ncompress none 3\n}":                             "no level",
		"rotate a.log {\nmode 999\n}":                                    "octal",
		"rotate a.log {\nmode 0440\n}":                                   "owner must be able to write",
		"rotate a.log {\nflush sometimes\n}":                             "flush",
		"rotate a.log {\nper_host yes\n}":                                "wrong argument count",
		"rotate a.log {\ncolour blue\n}":                                 "unrecognized subdirective 'colour'",
		"rotate a.log {\nname_format {name}{n}\n}":                       "needs {time} and {n}",
		"rotate a.log {\nper_host\nname_format {base}-{time}{n}{ext}\n}": "per_host",
	} {
		w := RotateWriter{}
		err := w.UnmarshalCaddyfile(caddyfile.NewTestDispenser(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want an error containing %q", in, err, want)
		}
	}
}

func TestSetupDefaults(t *testing.T) {
	w := &RotateWriter{Filename: filepath.Join(t.TempDir(), "app.log")}
	if err := w.setup(); err != nil {
		t.Fatal(err)
	}
	o := w.opts
	if o.maxSize != DefaultMaxSize || o.sched != nil || o.ret.keep != DefaultKeep || o.comp.algo != "gzip" || o.comp.mode != 0o600 || o.loc != time.UTC || o.flush != 0 {
		t.Fatalf("defaults: %+v", o)
	}
	w = &RotateWriter{Filename: "rel/app.log", Every: "daily", MaxAge: 1}
	if err := w.setup(); err != nil {
		t.Fatal(err)
	}
	if w.opts.maxSize != 0 || w.opts.ret.keep != 0 || !filepath.IsAbs(w.path) {
		t.Fatalf("with every and max_age: %+v, path %s", w.opts, w.path)
	}
}
