// Package otlp provides the log writer caddy.logging.writers.otlp: log
// entries (JSON-encoded) mapped onto OpenTelemetry log records and
// exported over OTLP/HTTP (protobuf, gzip) to an OpenTelemetry
// Collector or any backend that takes OTLP, through an optional disk
// spool so that nothing is lost while it is unreachable. The spool, the
// hub shared across reloads and the sender are internal/forward's; this
// package is the module, its transport (session.go) and the mapping
// (mapping.go).
package otlp

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-applog/caddy-applog/internal/forward"
	"github.com/caddy-applog/caddy-applog/internal/tlsconfig"
)

func init() {
	caddy.RegisterModule(Writer{})
}

// Writer exports log entries as OTLP/HTTP log records. Use it with
// `format json` (the default encoder of a file-less log is console): a
// JSON entry's ts, level, level_no, level_name, msg, app, host and
// logger become the record's time, severity, body, resource and scope,
// its other fields the record's attributes; an entry that is not JSON
// becomes a record whose body is the line. With a `spool`, each entry
// is on disk before the write returns and leaves it only once the
// endpoint answered its export, in order, at least once, across
// reloads, restarts and crashes.
type Writer struct {
	// The OTLP/HTTP logs endpoint, http:// or https://. A URL without
	// a path gets /v1/logs. Required.
	Endpoint string `json:"endpoint,omitempty"`

	// Headers sent with each export, e.g. an API key; values may use
	// placeholders known at provisioning ({env.X}).
	Headers map[string]string `json:"headers,omitempty"`

	// Resource attributes added to service.name and host.name.
	ResourceAttributes map[string]string `json:"resource_attributes,omitempty"`

	// gzip or none. Default: gzip.
	Compression string `json:"compression,omitempty"`

	// How the server is verified and which client certificate is
	// presented (https only): ca, client_certificate and client_key,
	// client_certificate_automate, server_name.
	tlsconfig.Client

	// About how many bytes of entries one export carries. Default:
	// 256KiB.
	BatchSize int `json:"batch_size,omitempty"`

	// The most entries one export carries. Default: 8192.
	BatchRecords int `json:"batch_records,omitempty"`

	// How long an export that is not full (batch_records entries or
	// batch_size bytes) waits for more entries, from when its first
	// entry was logged. A negative value: it goes at once. Default:
	// 200ms.
	BatchTimeout caddy.Duration `json:"batch_timeout,omitempty"`

	// How long an export may take, from connecting to its answer.
	// Default: 10s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// Where entries wait until delivered (spool, buffer) and the waits
	// between failed exports (backoff_min, backoff_max).
	forward.Options

	hub *forward.Hub
	cfg *forward.Config
}

// CaddyModule returns the Caddy module information.
func (Writer) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "caddy.logging.writers.otlp",
		New: func() caddy.Module { return new(Writer) },
	}
}

// Defaults. The batch is the OpenTelemetry Collector's batch
// processor's (send_batch_size, timeout); 8192 records are also under
// log_ingest's max_records (10000).
const (
	defaultTimeout      = 10 * time.Second
	defaultBatchRecords = 8192
	defaultBatchTimeout = 200 * time.Millisecond
)

// Provision checks the settings, loads the certificates, and opens (or
// joins) the writer's queue and sender for the config being loaded.
func (w *Writer) Provision(ctx caddy.Context) error {
	if w.Timeout == 0 {
		w.Timeout = caddy.Duration(defaultTimeout)
	}
	if w.Compression == "" {
		w.Compression = "gzip"
	}
	if w.BatchRecords == 0 {
		w.BatchRecords = defaultBatchRecords
	}
	if w.BatchTimeout == 0 {
		w.BatchTimeout = caddy.Duration(defaultBatchTimeout)
	}
	if err := w.Options.Provision(); err != nil {
		return fmt.Errorf("otlp writer: %w", err)
	}
	if err := w.Validate(); err != nil {
		return err
	}
	endpoint, err := endpointURL(w.Endpoint)
	if err != nil {
		return err
	}
	tlsCfg, err := w.Client.Config(endpoint.Hostname())
	if err != nil {
		return fmt.Errorf("otlp writer: %w", err)
	}
	// Headers and resource attributes may name secrets from the
	// environment: replaced now, so they are not in the JSON config.
	repl := caddy.NewReplacer()
	header := http.Header{}
	for k, v := range w.Headers {
		header.Set(k, repl.ReplaceKnown(v, ""))
	}
	m := &mapper{now: time.Now}
	m.hostname, _ = os.Hostname()
	for _, k := range sortedKeys(w.ResourceAttributes) {
		m.extra = append(m.extra, strKV(k, repl.ReplaceKnown(w.ResourceAttributes[k], "")))
	}
	log := ctx.Logger().With(zap.String("endpoint", endpoint.String()))
	ht := http.DefaultTransport.(*http.Transport).Clone()
	ht.TLSClientConfig = tlsCfg
	ht.Proxy = nil // an exporter reaches its endpoint directly, as the tls writer does
	// The key holds the replaced headers, hashed (they may be
	// secrets): a changed API key in the environment is a new
	// connection setting.
	headerJSON, _ := json.Marshal(header)
	headerSum := sha256.Sum256(headerJSON)
	connKey, _ := json.Marshal([]any{endpoint.String(), headerSum[:], m.extra, w.Compression, w.CA, w.ClientCertificate, w.ClientKey, w.ClientCertificateAutomate, w.ServerName, w.BatchSize, w.BatchRecords, w.BatchTimeout, w.Timeout, w.BackoffMin, w.BackoffMax})
	w.cfg = &forward.Config{
		Key: string(connKey),
		Transport: &transport{
			endpoint: endpoint.String(),
			client:   &http.Client{Transport: ht},
			header:   header,
			gzip:     w.Compression == "gzip",
			timeout:  time.Duration(w.Timeout),
			mapper:   m,
			log:      log,
		},
		Name:         endpoint.String(),
		BatchBytes:   w.BatchSize,
		BatchRecords: w.BatchRecords,
		Linger:       max(time.Duration(w.BatchTimeout), 0),
		Log:          log,
	}
	key := w.Options.Apply(w.cfg)
	// The lease ends with the config's context (ctx.Context: a
	// caddy.Context value cannot be compared, the context inside can).
	w.hub, err = forward.Acquire(ctx.Context, "otlp", key, w.cfg)
	return err
}

// endpointURL checks the endpoint and gives a bare one OTLP's logs path.
func endpointURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("otlp writer: endpoint %q: %w", s, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("otlp writer: endpoint %q: want an http:// or https:// URL", s)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/logs"
	}
	return u, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Validate checks the writer's settings.
func (w *Writer) Validate() error {
	if w.Endpoint == "" {
		return errors.New("otlp writer: endpoint is required (an http:// or https:// URL)")
	}
	u, err := endpointURL(w.Endpoint)
	if err != nil {
		return err
	}
	if u.Scheme == "http" && w.Client != (tlsconfig.Client{}) {
		return fmt.Errorf("otlp writer: endpoint %q is http://: TLS options need https://", w.Endpoint)
	}
	switch w.Compression {
	case "", "gzip", "none":
	default:
		return fmt.Errorf("otlp writer: compression %q: want gzip or none", w.Compression)
	}
	for k := range w.ResourceAttributes {
		if k == "service.name" || k == "host.name" {
			return fmt.Errorf("otlp writer: resource attribute %s is the entry's (app, host); it cannot be set", k)
		}
	}
	if err := w.Client.Validate(); err != nil {
		return fmt.Errorf("otlp writer: %w", err)
	}
	if w.BatchSize < 0 {
		return fmt.Errorf("otlp writer: batch_size %d: want a positive size", w.BatchSize)
	}
	if w.BatchRecords < 0 {
		return fmt.Errorf("otlp writer: batch_records %d: want a positive number of entries", w.BatchRecords)
	}
	if w.Timeout < 0 {
		return errors.New("otlp writer: timeout must not be negative")
	}
	if err := w.Options.Validate(); err != nil {
		return fmt.Errorf("otlp writer: %w", err)
	}
	return nil
}

func (w *Writer) String() string { return "otlp " + w.Endpoint }

// WriterKey identifies the writer for Caddy's pool. It holds every
// option, so a reload with new options gets a new writer; both write
// into the same queue (see internal/forward's hub.go).
func (w *Writer) WriterKey() string {
	opts, _ := json.Marshal(w)
	return "applog-otlp:" + string(opts)
}

// OpenWriter returns the writer's end of its queue.
func (w *Writer) OpenWriter() (io.WriteCloser, error) {
	if w.hub == nil {
		return nil, errNotProvisioned
	}
	return w.hub.Writer(w.cfg), nil
}

// Interface guards
var (
	_ caddy.WriterOpener = (*Writer)(nil)
	_ caddy.Provisioner  = (*Writer)(nil)
	_ caddy.Validator    = (*Writer)(nil)
)
