package applog

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/caddyserver/caddy/v2"
	_ "github.com/caddyserver/caddy/v2/modules/logging"

	"github.com/caddy-applog/caddy-applog/module/intake"
)

func init() {
	caddy.RegisterModule(memWriter{})
}

// memWriter is a log writer that keeps what it gets in memory, under
// its name, for tests that load a whole config.
type memWriter struct {
	Name string `json:"name,omitempty"`
}

var memOut = struct {
	sync.Mutex
	m map[string]*bytes.Buffer
}{m: map[string]*bytes.Buffer{}}

func (memWriter) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "caddy.logging.writers.applog_test_mem", New: func() caddy.Module { return new(memWriter) }}
}
func (w memWriter) String() string    { return "mem:" + w.Name }
func (w memWriter) WriterKey() string { return "applog_test_mem:" + w.Name }
func (w memWriter) OpenWriter() (io.WriteCloser, error) {
	return memSink(w.Name), nil
}

type memSink string

func (s memSink) Write(p []byte) (int, error) {
	memOut.Lock()
	defer memOut.Unlock()
	if s == "discard" {
		return len(p), nil
	}
	b := memOut.m[string(s)]
	if b == nil {
		b = new(bytes.Buffer)
		memOut.m[string(s)] = b
	}
	return b.Write(p)
}
func (memSink) Close() error { return nil }

func memLines(name string) []string {
	memOut.Lock()
	defer memOut.Unlock()
	var out []string
	if b := memOut.m[name]; b != nil {
		for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
			var e struct{ Msg string }
			if json.Unmarshal([]byte(l), &e) == nil && e.Msg != "" {
				out = append(out, e.Msg)
			}
		}
	}
	return out
}

// loadApp runs a whole Caddy config with the given log blocks (include
// list → mem writer name) and returns its applog app.
func loadApp(t testing.TB, facilities []string, logs map[string][2]string) *App {
	t.Helper()
	memOut.Lock()
	clear(memOut.m)
	memOut.Unlock()
	fac := map[string]any{}
	for _, f := range facilities {
		fac[f] = map[string]any{}
	}
	ls := map[string]any{}
	for name, l := range logs {
		ls[name] = map[string]any{
			"writer":  map[string]any{"output": "applog_test_mem", "name": l[1]},
			"encoder": map[string]any{"format": "json"},
			"level":   "DEBUG",
			"include": []string{l[0]},
		}
	}
	// The default log takes what no other block does, as the Caddyfile
	// adapter sets it up.
	var excl []string
	for _, l := range logs {
		excl = append(excl, l[0])
	}
	ls["default"] = map[string]any{
		"writer":  map[string]any{"output": "applog_test_mem", "name": "default"},
		"encoder": map[string]any{"format": "json"},
		"exclude": excl,
	}
	cfg, err := json.Marshal(map[string]any{
		"admin":   map[string]any{"disabled": true},
		"logging": map[string]any{"logs": ls},
		"apps":    map[string]any{"applog": map[string]any{"facilities": fac}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := caddy.Load(cfg, true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })
	app, err := caddy.ActiveContext().App("applog")
	if err != nil {
		t.Fatal(err)
	}
	return app.(*App)
}

// TestRoutesTakeOnlyTheirLogBlocks: each facility's records reach
// exactly the log blocks whose include list takes their logger name,
// with the longest include winning as in Caddy, and the default log gets
// what no block takes.
func TestRoutesTakeOnlyTheirLogBlocks(t *testing.T) {
	a := loadApp(t, []string{"shop", "shop:web", "blog"}, map[string][2]string{
		"web":      {"applog.shop.web", "web"},
		"webreq":   {"applog.shop.web.requests", "webreq"},
		"shop":     {"applog.shop", "shop"},
		"blog":     {"applog.blog", "blog"},
		"unrelate": {"applog.other", "other"},
	})
	for _, r := range []struct{ app, logger, msg string }{
		{"shop", "web", "a"}, {"shop", "web.requests", "b"}, {"shop", "web.static", "c"},
		{"shop", "", "d"}, {"shop", "cart", "e"}, {"blog", "x", "f"}, {"shop", "web", "g"},
	} {
		if _, err := a.Submit(context.Background(), &intake.Batch{Records: []intake.Record{rec(r.app, r.logger, 20, r.msg)}}); err != nil {
			t.Fatal(err)
		}
	}
	// Caddy's filter sends an entry to every block whose include list
	// takes its name: applog.shop.web.requests is under applog.shop.web
	// and applog.shop too.
	want := map[string]string{
		"web":    "a b c g",
		"webreq": "b",
		"shop":   "a b c d e g",
		"blog":   "f",
		"other":  "",
	}
	for name, w := range want {
		if got := strings.Join(memLines(name), " "); got != w {
			t.Errorf("log %s got %q, want %q", name, got, w)
		}
	}
	for _, m := range memLines("default") {
		if len(m) == 1 {
			t.Errorf("the default log got record %q, which a block takes", m)
		}
	}
}

// BenchmarkSubmitLogBlocks: one facility's records with one log block,
// and with 40 more blocks for other facilities. The two costs must be
// about the same: a record pays only for the blocks that take it.
func BenchmarkSubmitLogBlocks(b *testing.B) {
	for _, others := range []int{0, 40} {
		b.Run(fmt.Sprintf("unrelated=%d", others), func(b *testing.B) {
			facs := []string{"shop"}
			logs := map[string][2]string{"shop": {"applog.shop.web", "discard"}}
			for i := range others {
				app := fmt.Sprintf("app%02d", i)
				facs = append(facs, app)
				logs[app] = [2]string{"applog." + app + ".web", "discard"}
			}
			a := loadApp(b, facs, logs)
			batch := &intake.Batch{Records: make([]intake.Record, 1), Source: "bench"}
			r := rec("shop", "web", 20, "user alice logged in from 10.0.0.7 seq=7")
			b.ReportAllocs()
			for b.Loop() {
				batch.Records[0] = r
				if _, err := a.Submit(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
