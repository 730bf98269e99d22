// Command slogclient sends log/slog records to caddy-applog's log_ingest
// handler and reports every record Caddy refused or could not be sent:
//
//	go run ./examples/slogclient [URL]
//
// URL defaults to $APPLOG_URL, else http://127.0.0.1:8080/_applog/goapp,
// the route of examples/Caddyfile whose records land in logs/goapp.log.
//
// Handler is an slog.Handler that posts each record as JSON (slog's own
// JSONHandler renders it). slog.Logger discards the error a handler
// returns, so Handler passes each one to Options.ErrorHandler (by default,
// a line on stderr) and counts it (Handler.Failed): a 401 from a facility
// that needs a signature, a 403 for an unknown app or a refused
// connection reaches the person running the program, and this command
// exits 1 if any record failed. Errors are a *RefusedError when Caddy
// answered with anything but 200.
package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync/atomic"
	"time"
)

// Options configure a Handler. The zero value is usable.
type Options struct {
	// Level is the lowest level sent. Default: slog.LevelInfo.
	Level slog.Leveler
	// ErrorHandler is called with the error of each record that was not
	// accepted, from the goroutine that logged it. Default: print it on
	// stderr.
	ErrorHandler func(error)
	// Client sends the requests. Default: a client with a 5s timeout.
	Client *http.Client
}

// RefusedError is Caddy's answer to a record it did not accept: the
// status and the one-line reason log_ingest gives.
type RefusedError struct {
	Status int
	Reason string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("caddy-applog refused the record: %d %s: %s", e.Status, http.StatusText(e.Status), e.Reason)
}

// Handler posts each record to a log_ingest URL; see the package comment.
type Handler struct {
	json slog.Handler
	post *poster // shared by the handlers WithAttrs and WithGroup derive
}

// NewHandler returns a Handler that posts to url.
func NewHandler(url string, opts *Options) *Handler {
	if opts == nil {
		opts = &Options{}
	}
	p := &poster{url: url, client: opts.Client, onError: opts.ErrorHandler}
	if p.client == nil {
		p.client = &http.Client{Timeout: 5 * time.Second}
	}
	if p.onError == nil {
		p.onError = func(err error) { fmt.Fprintln(os.Stderr, "slogclient:", err) }
	}
	return &Handler{json: slog.NewJSONHandler(p, &slog.HandlerOptions{Level: opts.Level}), post: p}
}

func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool { return h.json.Enabled(ctx, l) }

// Handle sends r and reports a failure to the ErrorHandler as well as
// returning it, since slog.Logger drops what a handler returns.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	err := h.json.Handle(ctx, r)
	if err != nil {
		h.post.failed.Add(1)
		h.post.onError(err)
	}
	return err
}

func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &Handler{json: h.json.WithAttrs(attrs), post: h.post}
}

func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{json: h.json.WithGroup(name), post: h.post}
}

// Failed returns how many records were not accepted, by this handler and
// every handler derived from it.
func (h *Handler) Failed() int64 { return h.post.failed.Load() }

// poster posts each line slog's JSONHandler writes (one record per Write
// call, under the JSONHandler's lock).
type poster struct {
	url     string
	client  *http.Client
	onError func(error)
	failed  atomic.Int64
}

func (p *poster) Write(line []byte) (int, error) {
	resp, err := p.client.Post(p.url, "application/json", bytes.NewReader(line))
	if err != nil {
		return 0, fmt.Errorf("caddy-applog: %w", err)
	}
	defer resp.Body.Close()
	reason, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return 0, &RefusedError{Status: resp.StatusCode, Reason: string(bytes.TrimSpace(reason))}
	}
	return len(line), nil
}

func main() {
	url := os.Getenv("APPLOG_URL")
	if url == "" {
		url = "http://127.0.0.1:8080/_applog/goapp"
	}
	switch len(os.Args) {
	case 1:
	case 2:
		url = os.Args[1]
	default:
		fmt.Fprintln(os.Stderr, "usage: slogclient [log_ingest URL]")
		os.Exit(2)
	}
	h := NewHandler(url, &Options{Level: slog.LevelDebug})
	logger := slog.New(h).With("logger", "billing.worker")

	logger.Info("invoice sent", "invoice", 1042, "amount", 99.5, "customer", map[string]any{"id": "c-7", "tier": "gold"})
	logger.Warn("retrying payment", "attempt", 2)
	logger.Debug("cache miss", "key", "inv:1042")
	logger.Log(context.Background(), slog.LevelError+2, "ledger out of balance", "delta", -0.01)

	if n := h.Failed(); n > 0 {
		fmt.Fprintf(os.Stderr, "slogclient: %d of 4 records not accepted by %s\n", n, url)
		os.Exit(1)
	}
}
