// Command slogclient sends log/slog records to caddy-applog's log_ingest
// handler: a JSON handler whose writer posts each line. Usage:
//
//	go run ./examples/slogclient http://127.0.0.1:8080/_applog/myapp
package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
)

// applogWriter posts each line slog's JSONHandler writes (one record per
// Write call) to a log_ingest endpoint.
type applogWriter struct{ url string }

func (w applogWriter) Write(p []byte) (int, error) {
	resp, err := http.Post(w.url, "application/json", bytes.NewReader(p))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		reason, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return 0, fmt.Errorf("caddy-applog: %s: %s", resp.Status, bytes.TrimSpace(reason))
	}
	return len(p), nil
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: slogclient <log_ingest URL>")
		os.Exit(2)
	}
	logger := slog.New(slog.NewJSONHandler(applogWriter{os.Args[1]}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	logger = logger.With("logger", "billing.worker")

	logger.Info("invoice sent", "invoice", 1042, "amount", 99.5, "customer", map[string]any{"id": "c-7", "tier": "gold"})
	logger.Warn("retrying payment", "attempt", 2)
	logger.Debug("cache miss", "key", "inv:1042")
	logger.Log(context.Background(), slog.LevelError+2, "ledger out of balance", "delta", -0.01)
}
