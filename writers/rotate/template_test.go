package rotate

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/caddy-applog/caddy-applog/module/status"
)

func TestTemplateResolve(t *testing.T) {
	for _, tc := range []struct {
		tmpl, entry, want, why string
	}{
		{"/l/{app}/{facility}.log", `{"level":"info","app":"shop","facility":"web.requests"}`, "/l/shop/web.requests.log", ""},
		{"/l/{app}/{facility:root}.log", `{"app":"shop","facility":""}`, "/l/shop/root.log", ""},
		{"/l/{app}/{facility}.log", `{"app":"shop","facility":""}`, "", "the entry has no field facility"},
		{"/l/{app}/{facility}.log", `{"app":"shop"}`, "", "the entry has no field facility"},
		{"/l/{request.host}.log", `{"logger":"http.log.access","request":{"remote_ip":"::1","host":"Shop.Example.COM","headers":{"Host":["x"]}},"status":200}`, "/l/shop.example.com.log", ""},
		{"/l/{request.host}.log", `{"request":{"headers":{"host":"inner"}}}`, "", "the entry has no field request.host"},
		{"/l/{request.host:nohost}.log", `{"request":"flat"}`, "/l/nohost.log", ""},
		{"/l/{app}-{level}.log", `{"level":"warn","app":"MyApp"}`, "/l/MyApp-warn.log", ""},
		{"/l/{host}/x.log", `{"host":"../../etc"}`, "/l/_._.__etc/x.log", ""},
		{"/l/{host}/x.log", `{"host":".."}`, "/l/_./x.log", ""},
		{"/l/{host}/x.log", `{"host":"fe80::1%eth0"}`, "/l/fe80__1_eth0/x.log", ""},
		{"/l/{request.host}.log", `{"request":{"host":"Shop.example.com:8443"}}`, "/l/shop.example.com.log", ""},
		{"/l/{request.host}.log", `{"request":{"host":"[::1]:8443"}}`, "/l/__1.log", ""},
		{"/l/{request.host}.log", `{"request":{"host":"[::1]"}}`, "/l/__1.log", ""},
		{"/l/{request.host}.log", `{"request":{"host":":8443"}}`, "", "the entry has no field request.host"},
		{"/l/{app}.log", `{"app":"a:b"}`, "/l/a_b.log", ""},
		{"/l/{status}.log", `{"status":404}`, "/l/404.log", ""},
		{"/l/{app}.log", `not json`, "", "the entry is not a JSON object (use `format json`, or a format that writes JSON)"},
		{"/l/{app}.log", `{"app":"x"`, "/l/x.log", ""}, // found before the end: no need to read on
		{"/l/{a}{b}{c}.log", `{"a":"` + strings.Repeat("a", 200) + `","b":"` + strings.Repeat("b", 100) + `","c":"` + strings.Repeat("c", 100) + `"}`, "", "a file name from the template is too long"},
		{"/l/{app}.log", `{"app":"` + strings.Repeat("x", 300) + `"}`, "/l/" + strings.Repeat("x", maxValueLen) + ".log", ""},
		{"/l/{app}.log", `{"ap\u0070":"escaped key","app":"a\u0062"}`, "/l/ab.log", ""},
	} {
		tp, err := parseTemplate("", tc.tmpl)
		if err != nil {
			t.Fatalf("%s: %v", tc.tmpl, err)
		}
		got, why := tp.resolve([]byte("keep:"), []byte(tc.entry))
		if !strings.HasPrefix(string(got), "keep:") {
			t.Fatalf("resolve lost dst: %q", got)
		}
		if string(got[5:]) != tc.want || why != tc.why {
			t.Errorf("%s with %s = %q, %q; want %q, %q", tc.tmpl, tc.entry, got[5:], why, tc.want, tc.why)
		}
	}
}

func TestParseTemplate(t *testing.T) {
	tp, err := parseTemplate("", "/var/log/{app}/x/{facility}-{app}.log")
	if err != nil {
		t.Fatal(err)
	}
	if tp.dir != "/var/log" || len(tp.tmpl.Fields()) != 2 {
		t.Errorf("dir %q, fields %v", tp.dir, tp.tmpl.Fields())
	}
	tp, err = parseTemplate("", "/srv/{http.request.host}.log")
	if err != nil || tp.tmpl.Fields()[0] != "request.host" || tp.dir != "/srv" {
		t.Errorf("site shorthand: %v %+v", err, tp)
	}
	// A relative template in a folder whose name has braces: they are
	// the folder's, not placeholders.
	tp, err = parseTemplate("/tmp/msg{a1}", "logs/{app}.log")
	if err != nil || len(tp.tmpl.Fields()) != 1 || tp.dir != "/tmp/msg{a1}/logs" || tp.raw != "/tmp/msg{a1}/logs/{app}.log" {
		t.Fatalf("relative: %v %+v", err, tp)
	}
	if got, why := tp.resolve(nil, []byte(`{"app":"x"}`)); string(got) != "/tmp/msg{a1}/logs/x.log" || why != "" {
		t.Errorf("relative resolved to %q %q", got, why)
	}
	for _, bad := range []string{"/l/{}.log", "/l/{a..b}.log", "/l/{app:}.log", "/l/{app:a/b}.log", "/l/{app:..}.log", "/l/{a}{b}{c}{d}{e}{f}{g}{h}{i}.log", "/l/{app.log"} {
		if _, err := parseTemplate("", bad); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func FuzzTemplateResolve(f *testing.F) {
	for _, s := range []string{`{"app":"a","facility":"b.c","request":{"host":"h"}}`, `{"app":"..","facility":"/"}`, `{"request":{"host":{"x":1}}}`, `{`} {
		f.Add([]byte(s))
	}
	tp, err := parseTemplate("", "/l/{app}/{facility:root}/{request.host}.log")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		got, why := tp.resolve(nil, p)
		if why != "" {
			if len(got) != 0 {
				t.Fatalf("unplaced entry gave %q", got)
			}
			return
		}
		parts := strings.Split(string(got), "/")
		if len(parts) != 5 || parts[0] != "" || parts[1] != "l" || !strings.HasSuffix(parts[4], ".log") {
			t.Fatalf("%q left the template's shape", got)
		}
		for _, c := range parts[2:] {
			if c == "" || c == "." || c == ".." || strings.HasPrefix(c, ".") || len(c) > 255 {
				t.Fatalf("%q: bad component %q", got, c)
			}
		}
	})
}

// TestTemplateFiles: each entry lands in the file its fields name; each
// file rotates by size and schedule on its own; entries the template
// cannot place go to the fallback file and are counted; at most
// max_open_files stay open, and a closed file is reopened, not lost.
func TestTemplateFiles(t *testing.T) {
	dir := t.TempDir()
	h, clk := testWriter(t, dir, start, func(w *RotateWriter) {
		w.Filename = filepath.Join(dir, "{app}", "{facility:root}.log")
		w.Every, w.MaxSize, w.Compress, w.MaxOpenFiles = "hourly", 200, "none", 3
	})
	want := map[string][]string{}
	for i := range 30 {
		app, fac := fmt.Sprintf("app%d", i%4), []string{"web", "db.sql", ""}[i%3]
		e := fmt.Sprintf(`{"level":"info","app":%q,"facility":%q,"msg":"m%02d"}`, app, fac, i)
		mustWrite(t, h, e)
		if fac == "" {
			fac = "root"
		}
		want[filepath.Join(dir, app, fac+".log")] = append(want[filepath.Join(dir, app, fac+".log")], e)
	}
	mustWrite(t, h, `{"msg":"no app"}`, "plain text")
	s := h.sink.Load()
	s.mu.Lock()
	open := len(s.routed)
	s.mu.Unlock()
	if open > 3 {
		t.Errorf("%d files open, max_open_files is 3", open)
	}
	step(h, clk, time.Minute) // 11:00: every file rotates
	for path, es := range want {
		var got []string
		for _, f := range names(t, filepath.Dir(path)) {
			base := strings.TrimSuffix(filepath.Base(path), ".log")
			if strings.HasPrefix(f, base+"-") || f == filepath.Base(path) {
				got = append(got, lines(t, filepath.Join(filepath.Dir(path), f))...)
			}
		}
		sort.Strings(got)
		sort.Strings(es)
		if !equal(got, es) {
			t.Errorf("%s and its backups hold %q, want %q", path, got, es)
		}
	}
	if got := lines(t, filepath.Join(dir, "unplaced-2026-11-20T11-00-00.log")); !equal(got, []string{`{"msg":"no app"}`, "plain text"}) {
		t.Errorf("fallback holds %q (%q)", got, names(t, dir))
	}
	if n := s.meter.Unplaced.Load(); n != 2 {
		t.Errorf("unplaced = %d, want 2", n)
	}
	// Size: app0/web.log gets 3 entries of ~70 bytes, over 200.
	if n := len(names(t, filepath.Join(dir, "app0"))); n < 3 {
		t.Errorf("app0 has %q", names(t, filepath.Join(dir, "app0")))
	}
}

// TestTemplateHandsFilesToTheirOwner: while two writers with different
// templates are live (a reload changing the template), a file both name
// is written by one of them only, and no entry is lost.
func TestTemplateHandsFilesToTheirOwner(t *testing.T) {
	dir := t.TempDir()
	old, _ := testWriter(t, dir, start, func(w *RotateWriter) { w.Filename = filepath.Join(dir, "{app}.log") })
	mustWrite(t, old, `{"app":"a","msg":"1"}`)
	nw, _ := testWriter(t, dir, start, func(w *RotateWriter) { w.Filename = filepath.Join(dir, "{app:none}.log") })
	mustWrite(t, nw, `{"app":"a","msg":"2"}`)
	claims.Lock()
	o := claims.m[filepath.Join(dir, "a.log")]
	claims.Unlock()
	if o != old.sink.Load() {
		t.Fatalf("a.log owned by %p, want the old writer's sink %p", o, old.sink.Load())
	}
	old.Close()
	mustWrite(t, nw, `{"app":"a","msg":"3"}`)
	if got := lines(t, filepath.Join(dir, "a.log")); !equal(got, []string{`{"app":"a","msg":"1"}`, `{"app":"a","msg":"2"}`, `{"app":"a","msg":"3"}`}) {
		t.Errorf("a.log holds %q", got)
	}
}

// BenchmarkTemplateResolve: placing one entry, an applog record by app
// and facility and a Caddy access log entry by site.
func BenchmarkTemplateResolve(b *testing.B) {
	for _, bc := range []struct{ name, tmpl, entry string }{
		{"applog", "/var/log/applog/{app}/{facility:root}.log", `{"level":"info","ts":1763726400.000005,"logger":"applog.shop.web.views","msg":"user alice logged in from 10.0.0.7 seq=7","app":"shop","facility":"web.views","host":"10.0.0.7","logger_name":"shop.web.views","level_name":"INFO","level_no":20,"attrs":{"pathname":"/srv/shop/views.py","lineno":42}}`},
		{"access", "/var/log/sites/{request.host}.log", `{"level":"info","ts":1763726400.000005,"logger":"http.log.access.log0","msg":"handled request","request":{"remote_ip":"127.0.0.1","remote_port":"53422","client_ip":"127.0.0.1","proto":"HTTP/1.1","method":"GET","host":"shop.example.com","uri":"/cart?id=7","headers":{"User-Agent":["curl/8.5.0"],"Accept":["*/*"]}},"bytes_read":0,"user_id":"","duration":0.000031,"size":5,"status":200,"resp_headers":{"Server":["Caddy"],"Content-Type":["text/plain; charset=utf-8"]}}`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			tp, err := parseTemplate("", bc.tmpl)
			if err != nil {
				b.Fatal(err)
			}
			p := []byte(bc.entry)
			var buf [256]byte
			b.ReportAllocs()
			b.SetBytes(int64(len(p)))
			for b.Loop() {
				if _, why := tp.resolve(buf[:0], p); why != "" {
					b.Fatal(why)
				}
			}
		})
	}
}

// TestTemplateWriteAfterClose: an entry written through a handle after
// its sink is gone (a logger of an unloaded config) still lands in the
// file it names, or the fallback; never in a file named after the
// template itself.
func TestTemplateWriteAfterClose(t *testing.T) {
	dir := t.TempDir()
	h, _ := testWriter(t, dir, start, func(w *RotateWriter) { w.Filename = filepath.Join(dir, "{app}", "x.log") })
	mustWrite(t, h, `{"app":"a","msg":"1"}`)
	h.Close()
	mustWrite(t, h, `{"app":"a","msg":"2"}`, `{"msg":"3"}`)
	if got := lines(t, filepath.Join(dir, "a", "x.log")); !equal(got, []string{`{"app":"a","msg":"1"}`, `{"app":"a","msg":"2"}`}) {
		t.Errorf("a/x.log holds %q", got)
	}
	if got := lines(t, filepath.Join(dir, "unplaced.log")); !equal(got, []string{`{"msg":"3"}`}) {
		t.Errorf("unplaced.log holds %q (%q)", got, names(t, dir))
	}
}

// BenchmarkTemplateVsWriters writes entries of 40 facilities, in turn,
// through one templated writer and through 40 writers (one per file, as
// 40 log blocks have), both with flush batch, from GOMAXPROCS goroutines.
//
//	go test -run '^$' -bench TemplateVsWriters ./writers/rotate
func BenchmarkTemplateVsWriters(b *testing.B) {
	const n = 40
	entries := make([][]byte, n)
	for i := range entries {
		entries[i] = fmt.Appendf(nil, `{"level":"info","ts":1795255200.1234567,"logger":"applog.app%d.f%d","msg":"GET /api/orders/42 200 in 7ms","app":"app%d","facility":"f%d","host":"10.0.0.7","logger_name":"f%d","level_name":"INFO","level_no":20}`+"\n", i/4, i%4, i/4, i%4, i%4)
	}
	run := func(b *testing.B, write func(i int, p []byte)) {
		b.SetParallelism(2)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				write(i%n, entries[i%n])
				i++
			}
		})
	}
	b.Run("template", func(b *testing.B) {
		dir := b.TempDir()
		rw := &RotateWriter{Filename: filepath.Join(dir, "{app}", "{facility}.log"), Compress: "none"}
		wc, err := rw.OpenWriter()
		if err != nil {
			b.Fatal(err)
		}
		defer wc.Close()
		run(b, func(_ int, p []byte) { wc.Write(p) })
	})
	b.Run("writers", func(b *testing.B) {
		dir := b.TempDir()
		ws := make([]io.WriteCloser, n)
		for i := range ws {
			rw := &RotateWriter{Filename: filepath.Join(dir, fmt.Sprintf("app%d", i/4), fmt.Sprintf("f%d.log", i%4)), Compress: "none"}
			wc, err := rw.OpenWriter()
			if err != nil {
				b.Fatal(err)
			}
			defer wc.Close()
			ws[i] = wc
		}
		run(b, func(i int, p []byte) { ws[i].Write(p) })
	})
}

// TestTemplateDetachedWrites: a config's loggers can write after its
// writer was detached (Caddy stops a config without waiting for its
// requests). An entry of a template goes to the file it names, through
// the writer that has that file open if there is one, else appended
// there; one the template cannot place to the fallback file; never to a
// file named like the template.
func TestTemplateDetachedWrites(t *testing.T) {
	dir := t.TempDir()
	old, _ := testWriter(t, dir, start, func(w *RotateWriter) { w.Filename = filepath.Join(dir, "{app}", "{facility}.log") })
	mustWrite(t, old, `{"app":"a","facility":"web","msg":"1"}`)
	old.Close()
	// A new config's writer, whose template names a.log's files too.
	nw, _ := testWriter(t, dir, start, func(w *RotateWriter) {
		w.Filename = filepath.Join(dir, "{app}", "{facility:none}.log")
		w.Flush = "1h"
	})
	mustWrite(t, nw, `{"app":"a","facility":"web","msg":"2"}`)
	mustWrite(t, old,
		`{"app":"a","facility":"web","msg":"3"}`, // open in nw: written through it, after 2
		`{"app":"b","facility":"db","msg":"4"}`,  // open nowhere: appended
		`{"app":"b","msg":"5"}`)                  // no facility: the old template's fallback
	nw.Close()
	for path, want := range map[string][]string{
		filepath.Join(dir, "a", "web.log"): {`{"app":"a","facility":"web","msg":"1"}`, `{"app":"a","facility":"web","msg":"2"}`, `{"app":"a","facility":"web","msg":"3"}`},
		filepath.Join(dir, "b", "db.log"):  {`{"app":"b","facility":"db","msg":"4"}`},
		filepath.Join(dir, "unplaced.log"): {`{"app":"b","msg":"5"}`},
	} {
		if got := lines(t, path); !equal(got, want) {
			t.Errorf("%s holds %q, want %q", path, got, want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "{app}")); !os.IsNotExist(err) {
		t.Errorf("a folder named like the template: %v", err)
	}
	if n := status.WriterMeter("rotate", filepath.Join(dir, "{app}", "{facility}.log")).Unplaced.Load(); n != 1 {
		t.Errorf("unplaced = %d, want 1", n)
	}
}

// TestArchiversShareBackups: a file handed to another writer (a reload
// changing the template) can have a compression still queued at its old
// writer's archiver when the new writer's recovery looks at its backups.
// Neither may undo the other's work: no error, one complete archive.
func TestArchiversShareBackups(t *testing.T) {
	dir := t.TempDir()
	h, _ := testWriter(t, dir, start, nil)
	o, set := h.opts, h.sink.Load().main.set
	var data bytes.Buffer
	for i := 0; data.Len() < 4<<20; i++ {
		fmt.Fprintf(&data, `{"msg":"entry %d of a backup large enough to take a while to compress"}`+"\n", i)
	}
	for round := range 3 {
		plain := filepath.Join(dir, fmt.Sprintf("app-2026-11-20T10-00-0%d.log", round))
		if err := os.WriteFile(plain, data.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var errs []string
		logf := func(msg string, err error) {
			mu.Lock()
			errs = append(errs, fmt.Sprintf("%s: %v", msg, err))
			mu.Unlock()
		}
		old, nw := newArchiver(realClock{}, logf), newArchiver(realClock{}, logf)
		old.add(job{kind: jobCompress, plain: plain, comp: o.comp, set: set, ret: o.ret})
		nw.add(job{kind: jobRecover, comp: o.comp, set: set, ret: o.ret})
		old.close()
		nw.close()
		if len(errs) > 0 {
			t.Errorf("round %d: %q", round, errs)
		}
		if _, err := os.Stat(plain); !os.IsNotExist(err) {
			t.Errorf("round %d: the plain backup is still there: %v", round, err)
		}
		f, err := os.Open(plain + ".gz")
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(zr)
		f.Close()
		if err != nil || !bytes.Equal(got, data.Bytes()) {
			t.Errorf("round %d: the archive holds %d bytes (%v), want the backup's %d", round, len(got), err, data.Len())
		}
	}
	if n := len(backupLocks.m); n != 0 {
		t.Errorf("%d backup locks left", n)
	}
}
