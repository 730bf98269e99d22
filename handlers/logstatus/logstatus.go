// Package logstatus provides the log_status HTTP handler: a live status
// page for the applog app, with the same data as JSON and as a stream of
// Server-Sent Events.
package logstatus

import (
	"embed"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-applog/caddy-applog/module/intake"
	"github.com/caddy-applog/caddy-applog/module/status"
)

func init() {
	caddy.RegisterModule(new(LogStatus))
}

//go:embed assets
var assets embed.FS

// LogStatus serves a live status page of the applog app: the most recent
// records, coloured by level and filterable, updating as they arrive,
// and the counters per facility, door and writer. The same data is
// served as JSON (`?format=json`) and as Server-Sent Events
// (`?format=sse`) for programs. The page shows your logs: protect it
// like any admin page, for example with Caddy's `basic_auth`.
//
// The manual is docs/log_status.md.
type LogStatus struct {
	// A stylesheet of yours, loaded after the page's own and read on each
	// request. Default: none.
	CSS string `json:"css,omitempty"`

	shutdown     chan struct{}
	shutdownOnce sync.Once
}

// RecentKeeper is what the handler needs of the applog app, beyond the
// counters and records it reads from module/status: the app fills the
// page's ring of recent records only when a config has a log_status
// handler, which asks while provisioning.
type RecentKeeper interface {
	// KeepRecent makes the app keep its most recent records, from its
	// next start, in module/status's ring (status.Recent).
	KeepRecent()
}

// CaddyModule returns the Caddy module information.
func (*LogStatus) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.log_status",
		New: func() caddy.Module { return new(LogStatus) },
	}
}

// Provision asks the applog app to keep recent records, and arranges for
// open event streams to end when the server shuts down, so that they do
// not hold up a reload or a graceful stop.
func (h *LogStatus) Provision(ctx caddy.Context) error {
	app, err := ctx.App(intake.AppName)
	if err != nil {
		return fmt.Errorf("getting applog app: %w", err)
	}
	keeper, ok := app.(RecentKeeper)
	if !ok {
		return fmt.Errorf("applog app %T does not keep recent records", app)
	}
	keeper.KeepRecent()
	h.shutdown = make(chan struct{})
	if srv, ok := ctx.Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server); ok {
		srv.RegisterOnShutdown(func() { h.shutdownOnce.Do(func() { close(h.shutdown) }) })
	}
	return nil
}

// Validate checks that the CSS file can be read.
func (h *LogStatus) Validate() error {
	if h.CSS != "" {
		if _, err := os.Stat(h.CSS); err != nil {
			return fmt.Errorf("css: %w", err)
		}
	}
	return nil
}

// ServeHTTP serves the page, its assets, the JSON and the event stream.
func (h *LogStatus) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	// Every response, errors included, is taken as the type it says:
	// record text in JSON or an event stream is never sniffed as HTML.
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return caddyhttp.Error(http.StatusMethodNotAllowed, fmt.Errorf("method %s not allowed", r.Method))
	}
	q := r.URL.Query()
	if asset := q.Get("asset"); asset != "" {
		return h.serveAsset(w, asset)
	}
	f, err := parseFilter(q)
	if err != nil {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = fmt.Fprintln(w, err)
		return nil
	}
	switch {
	case q.Get("format") == "json":
		return serveJSON(w, f)
	case q.Get("format") == "sse" || strings.Contains(r.Header.Get("Accept"), "text/event-stream"):
		if id := r.Header.Get("Last-Event-ID"); id != "" {
			if n, err := strconv.ParseUint(id, 10, 64); err == nil {
				f.after = n
			}
		}
		return serveEvents(w, r, f, h.shutdown)
	}
	page, _ := assets.ReadFile("assets/status.html")
	html := string(page)
	if h.CSS != "" {
		html = strings.Replace(html, "<!--user-css-->", `<link rel="stylesheet" href="?asset=user.css">`, 1)
	}
	setPageHeaders(w, "text/html; charset=utf-8")
	_, _ = w.Write([]byte(html))
	return nil
}

// setPageHeaders sets the headers of the page and its assets. The
// policy allows only the page's own scripts and styles, and no framing
// (clickjacking).
func setPageHeaders(w http.ResponseWriter, contentType string) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
}

func (h *LogStatus) serveAsset(w http.ResponseWriter, name string) error {
	var (
		data []byte
		err  error
		ct   string
	)
	switch name {
	case "status.js":
		data, err = assets.ReadFile("assets/status.js")
		ct = "text/javascript; charset=utf-8"
	case "status.css":
		data, err = assets.ReadFile("assets/status.css")
		ct = "text/css; charset=utf-8"
	case "user.css":
		if h.CSS == "" {
			return caddyhttp.Error(http.StatusNotFound, fmt.Errorf("no css configured"))
		}
		// Read on each request, so edits show without a reload.
		data, err = os.ReadFile(h.CSS)
		ct = "text/css; charset=utf-8"
	default:
		return caddyhttp.Error(http.StatusNotFound, fmt.Errorf("no asset %q", name))
	}
	if err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, fmt.Errorf("reading asset %s: %w", name, err))
	}
	setPageHeaders(w, ct)
	_, _ = w.Write(data)
	return nil
}

// snapshot is the JSON document: counters and filtered records.
type snapshot struct {
	Stats   status.Snapshot `json:"stats"`
	Records []status.Entry  `json:"records"`
}

func serveJSON(w http.ResponseWriter, f filter) error {
	doc := snapshot{Stats: status.Take(time.Now()), Records: f.apply(status.Recent(f.after, 0))}
	if doc.Records == nil {
		doc.Records = []status.Entry{}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	return json.NewEncoder(w).Encode(doc)
}

// How often an event stream looks for new records, and sends counters.
const (
	pollEvery  = 250 * time.Millisecond
	statsEvery = 2 * time.Second
)

// serveEvents streams the records that match f and the counters, until
// the client goes away or done is closed. The status page and the admin
// API's stream (which `caddy applog tail` reads) both serve this.
func serveEvents(w http.ResponseWriter, r *http.Request, f filter, done <-chan struct{}) error {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	after := f.after
	send := func() error {
		recs := status.Recent(after, 0)
		if len(recs) > 0 {
			after = recs[len(recs)-1].Seq
		}
		for _, e := range f.apply(recs) {
			data, _ := json.Marshal(e)
			if _, err := fmt.Fprintf(w, "id: %d\nevent: record\ndata: %s\n\n", e.Seq, data); err != nil {
				return err
			}
		}
		return nil
	}
	sendStats := func() error {
		data, _ := json.Marshal(status.Take(time.Now()))
		_, err := fmt.Fprintf(w, "event: stats\ndata: %s\n\n", data)
		return err
	}
	// The records kept so far first, then the counters: the page takes
	// the first stats event as the end of the backlog.
	if err := send(); err != nil {
		return nil
	}
	if err := sendStats(); err != nil {
		return nil
	}
	poll := time.NewTicker(pollEvery)
	defer poll.Stop()
	stats := time.NewTicker(statsEvery)
	defer stats.Stop()
	for {
		if err := send(); err != nil {
			return nil // the client went away
		}
		if err := rc.Flush(); err != nil {
			return nil
		}
		select {
		case <-r.Context().Done():
			return nil
		case <-done:
			return nil
		case <-stats.C:
			if err := sendStats(); err != nil {
				return nil
			}
		case <-poll.C:
		}
	}
}

// filter selects records for the JSON and the event stream.
type filter struct {
	app, facility, host, q string
	minLevel               int
	hasLevel               bool
	after                  uint64
	limit                  int
}

func parseFilter(q map[string][]string) (filter, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return strings.TrimSpace(v[0])
		}
		return ""
	}
	f := filter{app: get("app"), facility: get("facility"), host: get("host"), q: strings.ToLower(get("q"))}
	if lvl := get("level"); lvl != "" {
		n, ok := intake.ParseLevel(lvl)
		if !ok {
			return f, fmt.Errorf("unknown level %q", lvl)
		}
		f.minLevel, f.hasLevel = n, true
	}
	if s := get("after"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return f, fmt.Errorf("after: want a sequence number, got %q", s)
		}
		f.after = n
	}
	if s := get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return f, fmt.Errorf("limit: want a non-negative number, got %q", s)
		}
		f.limit = n
	}
	return f, nil
}

func (f filter) match(e *status.Entry) bool {
	switch {
	case f.app != "" && e.App != f.app,
		f.host != "" && e.Host != f.host,
		f.hasLevel && e.LevelNo < f.minLevel,
		f.facility != "" && e.Facility != f.facility && !strings.HasPrefix(e.Facility, f.facility+"."):
		return false
	}
	if f.q != "" {
		return strings.Contains(strings.ToLower(e.Message), f.q) || strings.Contains(strings.ToLower(e.Logger), f.q)
	}
	return true
}

// apply keeps the matching entries, the newest `limit` of them.
func (f filter) apply(recs []status.Entry) []status.Entry {
	out := recs[:0]
	for i := range recs {
		if f.match(&recs[i]) {
			out = append(out, recs[i])
		}
	}
	if f.limit > 0 && len(out) > f.limit {
		out = out[len(out)-f.limit:]
	}
	return out
}

// Interface guards
var (
	_ caddy.Provisioner           = (*LogStatus)(nil)
	_ caddy.Validator             = (*LogStatus)(nil)
	_ caddyhttp.MiddlewareHandler = (*LogStatus)(nil)
	_ caddyfile.Unmarshaler       = (*LogStatus)(nil)
)
