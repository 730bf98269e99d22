package logstatus

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-applog/caddy-applog/module/intake"
	"github.com/caddy-applog/caddy-applog/module/status"
)

func init() {
	caddy.RegisterModule(new(AdminAPI))
}

// AdminAPI adds the route GET /applog/records to Caddy's admin API: the
// records the applog app is receiving, with the status page's filters,
// as JSON or as a live stream of Server-Sent Events. `caddy applog tail`
// follows this stream, so a terminal needs no status page and no URL.
//
// It is part of every build with this plugin, like Caddy's own admin
// routes, and is reached and protected as the admin API is.
type AdminAPI struct {
	ctx caddy.Context
}

// CaddyModule returns the Caddy module information.
func (*AdminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.applog",
		New: func() caddy.Module { return new(AdminAPI) },
	}
}

// Provision keeps the context of the config the admin endpoint belongs
// to: streams end when that config stops, so that a reload does not
// leave them running against the old admin server.
func (a *AdminAPI) Provision(ctx caddy.Context) error {
	a.ctx = ctx
	return nil
}

// Routes returns the admin route.
func (a *AdminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{Pattern: "/applog/records", Handler: caddy.AdminHandlerFunc(a.handleRecords)}}
}

// runID names this process in the stream's RunHeader. A follower sends
// it back with the last sequence number it saw; sequence numbers start
// again when Caddy restarts, so a different run means "from the start".
var runID = strconv.FormatInt(time.Now().UnixNano(), 36)

// Response headers of the admin stream: the Caddy process (sent back as
// the `run` query parameter), and the sequence number the stream starts
// after (a follower's `after` until it has seen a record).
const (
	RunHeader   = "Applog-Run"
	AfterHeader = "Applog-After"
)

func (a *AdminAPI) handleRecords(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("method %s not allowed", r.Method)}
	}
	if _, err := caddy.ActiveContext().AppIfConfigured(intake.AppName); err != nil {
		if errors.Is(err, caddy.ErrNotConfigured) {
			err = errors.New("the applog app is not configured on this server")
		}
		return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: err}
	}
	return serveRecords(w, r, a.ctx.Done())
}

// serveRecords serves the records as JSON, or streams them until done.
func serveRecords(w http.ResponseWriter, r *http.Request, done <-chan struct{}) error {
	q := r.URL.Query()
	f, err := parseFilter(q)
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: err}
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if q.Get("format") != "sse" && !strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
		return serveJSON(w, f)
	}
	release := status.Follow()
	defer release()
	// Where the stream starts: after the sender's last record if it
	// is still talking to the same process, from the start of what
	// this process kept if Caddy restarted since, else from now.
	switch run := q.Get("run"); {
	case run != "" && run != runID:
		f.after = 0
	case q.Get("after") == "":
		f.after = status.Head()
	}
	w.Header().Set(RunHeader, runID)
	w.Header().Set(AfterHeader, strconv.FormatUint(f.after, 10))
	return serveEvents(w, r, f, done)
}

// Interface guards
var (
	_ caddy.Provisioner = (*AdminAPI)(nil)
	_ caddy.AdminRouter = (*AdminAPI)(nil)
)
