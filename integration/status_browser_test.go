package integration

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// TestStatusPageInBrowser loads the status page in real headless
// Chromium, posts records while it is open, and checks they appear live
// (no reload), colour-coded, and filtered; it saves a screenshot to
// $APPLOG_ARTIFACTS (default: artifacts/ at the repository root).
func TestStatusPageInBrowser(t *testing.T) {
	ctx, s := openStatusPage(t)
	// A marker that a page reload would wipe out.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[int](`window.applogMarker = 42`)); err != nil {
		t.Fatal(err)
	}

	batch := `{"msg":"a debug line","level":"debug","logger":"cart"}
{"msg":"an info line","level":"info","logger":"cart"}
{"msg":"a warning line","level":"warning","logger":"cart.pay"}
{"msg":"an error line","level":"error","logger":"cart.pay"}
{"msg":"a critical line","level":"critical","logger":"db"}
`
	if code, body := post(t, s.URL("/_applog/shop"), "application/x-ndjson", []byte(batch), nil); code != 200 {
		t.Fatalf("post: %d %s", code, body)
	}

	rowCount := func(n int) {
		t.Helper()
		expr := fmt.Sprintf(`document.querySelectorAll('#records tbody tr').length === %d`, n)
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
			t.Fatalf("waiting for %d rows: %v", n, err)
		}
	}
	rowCount(5)

	type row struct {
		Class, Msg, Color, Bg string
	}
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[[]row](`[...document.querySelectorAll('#records tbody tr')].map(r => ({
		Class: r.className.replace(' new', ''),
		Msg: r.querySelector('td.msg').textContent,
		Color: getComputedStyle(r.querySelector('td.level')).color,
		Bg: getComputedStyle(r).backgroundColor}))`))
	if err != nil {
		t.Fatal(err)
	}
	if marker, err := chromedp.Run(ctx, chromedp.Evaluate[int](`window.applogMarker`)); err != nil || marker != 42 {
		t.Fatalf("the page was reloaded (marker %d, %v)", marker, err)
	}
	if h1, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`getComputedStyle(document.querySelector('h1')).color`)); h1 != "rgb(1, 2, 3)" {
		t.Errorf("user CSS not applied: h1 colour %q", h1)
	}
	// Newest first.
	want := []row{
		{"lvl-dpanic", "a critical line", "rgb(255, 255, 255)", "rgb(125, 10, 14)"},
		{"lvl-error", "an error line", "rgb(196, 22, 28)", "rgb(253, 236, 237)"},
		{"lvl-warn", "a warning line", "rgb(179, 92, 0)", "rgb(255, 246, 232)"},
		{"lvl-info", "an info line", "rgb(31, 95, 191)", "rgba(0, 0, 0, 0)"},
		{"lvl-debug", "a debug line", "rgb(122, 122, 128)", "rgba(0, 0, 0, 0)"},
	}
	if len(rows) != len(want) {
		t.Fatalf("rows %+v", rows)
	}
	for i := range want {
		if rows[i] != want[i] {
			t.Errorf("row %d = %+v, want %+v", i, rows[i], want[i])
		}
	}

	// Filters: the page reconnects with them and shows only what matches.
	filter := func(level, text string, rows int) {
		t.Helper()
		js := fmt.Sprintf(`(() => { const f = document.getElementById('filters');
			f.elements.level.value = %q; f.elements.q.value = %q;
			f.dispatchEvent(new Event('input')); return true })()`, level, text)
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js)); err != nil {
			t.Fatal(err)
		}
		rowCount(rows)
	}
	filter("error", "", 2)
	filter("error", "critical", 1)
	filter("", "", 5)

	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelector('#t-accepted').textContent === '5'`, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatalf("stats panel: %v", err)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100 means PNG
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	dir := os.Getenv("APPLOG_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "status-page.png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// openStatusPage starts Caddy with the status page (statusServer) and
// opens the page in headless Chromium, 1280x900, logged in; it returns
// once the page's event stream is live. The context ends with the test
// or after 90 seconds.
func openStatusPage(t *testing.T) (context.Context, *server) {
	t.Helper()
	chromium := requireTool(t, "chromium")
	s, _ := statusServer(t)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelCtx)
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancel)

	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:s3cret"))
	withAuth := chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if _, err := cdp.Call(ctx, t, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, t, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
			Headers: network.Headers{"Authorization": auth},
		})
		return err
	})
	if err := chromedp.Do(ctx,
		withAuth,
		chromedp.Navigate(s.URL("/status")),
		chromedp.WaitVisible(chromedp.CSS("#conn.up")),
	); err != nil {
		t.Fatalf("loading the page: %v\ncaddy:\n%s", err, s.Output())
	}
	return ctx, s
}
