// Package ingest provides the log_ingest HTTP handler, through which
// applications post their log records to Caddy.
package ingest

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"
	"go.uber.org/zap"

	"github.com/caddy-applog/caddy-applog/module/decoders/jsonlog"
	"github.com/caddy-applog/caddy-applog/module/decoders/otlp"
	"github.com/caddy-applog/caddy-applog/module/decoders/pylog"
	"github.com/caddy-applog/caddy-applog/module/intake"
	"github.com/caddy-applog/caddy-applog/module/status"
)

func init() {
	caddy.RegisterModule(Ingest{})
}

// Ingest accepts log records that applications post over HTTP and hands
// them to the applog app, which emits them into Caddy's logging. It reads
// what applications already send: Python's logging.handlers.HTTPHandler
// (a form body or a query string), JSON, NDJSON and text/plain, and
// OpenTelemetry's OTLP/HTTP log exports (otlp.go). It answers each
// request itself, all or nothing: 200 with a summary of the records
// accepted, or an error status with a one-line reason and none of the
// request's records emitted.
//
// The manual, with every status and its reason, is docs/log_ingest.md.
type Ingest struct {
	// The app of every record posted here; a record or query naming
	// another app gets 403. Default: the record's `app`, else `?app=`.
	App string `json:"app,omitempty"`

	// The facility of records that name none. Default: the record's
	// logger name.
	Facility string `json:"facility,omitempty"`

	// The largest request body accepted, in bytes. Default: 10MiB.
	MaxBodySize int64 `json:"max_body_size,omitempty"`

	// The most records one request may carry. Default: 10000.
	MaxRecords int `json:"max_records,omitempty"`

	// How long the whole body may take to arrive (408 and the connection
	// closed past it); it cannot lengthen the server's timeouts. Default: 10s.
	ReadBodyTimeout caddy.Duration `json:"read_body_timeout,omitempty"`

	intake intake.Intake
	logger *zap.Logger
	limits jsonlog.Limits

	otlpLimits otlp.Limits
}

// warnedDeadline is set once a response writer could not set a read
// deadline, so that the warning is logged once per process.
var warnedDeadline atomic.Bool

// source names this door in counters.
const source = "log_ingest"

// DefaultMaxBodySize is the default max_body_size.
const DefaultMaxBodySize = 10 << 20

// DefaultReadBodyTimeout is the default read_body_timeout.
const DefaultReadBodyTimeout = 10 * time.Second

// maxFormFields bounds the fields of one Python record.
const maxFormFields = 1000

// CaddyModule returns the Caddy module information.
func (Ingest) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.log_ingest",
		New: func() caddy.Module { return new(Ingest) },
	}
}

// Provision sets up the handler.
func (h *Ingest) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	app, err := ctx.App(intake.AppName)
	if err != nil {
		return fmt.Errorf("getting applog app: %w", err)
	}
	h.intake = app.(intake.Intake)
	if h.App != "" {
		h.intake.DeclareApp(h.App)
	}
	if h.MaxBodySize == 0 {
		h.MaxBodySize = DefaultMaxBodySize
	}
	if h.ReadBodyTimeout == 0 {
		h.ReadBodyTimeout = caddy.Duration(DefaultReadBodyTimeout)
	}
	h.limits = jsonlog.Limits{MaxRecords: h.MaxRecords}
	h.otlpLimits = otlp.Limits{MaxRecords: h.MaxRecords}
	return nil
}

// Validate checks the handler's configuration.
func (h *Ingest) Validate() error {
	if err := intake.CheckApp(h.App); h.App != "" && err != nil {
		return fmt.Errorf("app %q: %w", h.App, err)
	}
	if h.Facility != intake.FacilityFromLogger(h.Facility) {
		return fmt.Errorf("facility %q: must be dot-separated names of letters, digits, '_' or '-'", h.Facility)
	}
	if h.MaxBodySize < 0 || h.MaxRecords < 0 || h.ReadBodyTimeout < 0 {
		return fmt.Errorf("max_body_size, max_records and read_body_timeout must not be negative")
	}
	return nil
}

// request is what serving one request needs, pooled: the body, the
// batch, and the one record of a form post with what it is made of.
// Submit keeps no reference to the batch once it has returned, so all of
// it is reused by the next request.
type request struct {
	buf     bytes.Buffer
	batch   intake.Batch
	one     [1]intake.Record
	scratch pylog.Scratch
	limit   io.LimitedReader
}

var requestPool = sync.Pool{New: func() any { return new(request) }}

// ServeHTTP decodes, checks and submits the posted records.
func (h *Ingest) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	peer := peerOf(r)
	req := requestPool.Get().(*request)
	buf := &req.buf
	buf.Reset()
	defer func() {
		// Keep no record alive.
		req.batch, req.one[0] = intake.Batch{}, intake.Record{}
		req.scratch.Release()
		if buf.Cap() <= 4*DefaultMaxBodySize/10 { // don't pool huge buffers
			requestPool.Put(req)
		}
	}()

	if format, ok, err := otlpRequest(r); ok {
		h.serveOTLP(w, r, req, peer, format, err)
		return nil
	}
	batch, err := h.decode(w, r, req, peer)
	var res intake.Result
	if err == nil {
		res, err = h.intake.Submit(r.Context(), batch)
	} else {
		// The app counts what it refuses; a request that could not be
		// decoded never reaches it, and counts as one rejected record.
		status.Source(source).Rejected.Add(1)
	}
	if err != nil {
		status := intake.StatusOf(err)
		h.logger.Warn("rejected log records",
			zap.String("peer", peer),
			zap.Int("status", status),
			zap.String("reason", err.Error()))
		if status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", "GET, POST, PUT")
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, oneLine(err.Error())+"\n")
		return nil
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	// Appended by hand: fmt would cost as much as the rest of the reply.
	out := append(buf.AvailableBuffer()[:0], `{"accepted":`...)
	out = strconv.AppendInt(out, int64(res.Accepted), 10)
	out = append(out, `,"filtered":`...)
	out = strconv.AppendInt(out, int64(res.Filtered), 10)
	out = append(out, `,"truncated":`...)
	out = strconv.AppendInt(out, int64(res.Truncated), 10)
	_, _ = w.Write(append(out, "}\n"...))
	return nil
}

// decode turns the request into a batch ready to submit.
func (h *Ingest) decode(w http.ResponseWriter, r *http.Request, req *request, peer string) (*intake.Batch, error) {
	now := time.Now()
	var query url.Values // most posts have none: no map to make
	if r.URL.RawQuery != "" {
		query = r.URL.Query()
	}
	var (
		recs    []intake.Record
		payload []byte
		err     error
	)
	switch r.Method {
	case http.MethodGet:
		// Python's HTTPHandler with method="GET": the record is the
		// query string (after any the handler's URL already had).
		raw := r.URL.RawQuery
		if raw == "" {
			return nil, intake.Errorf(http.StatusBadRequest, "GET needs a log record in the query string")
		}
		payload = []byte(raw)
		recs, err = decodeForm(raw, "query string", now, req)
	case http.MethodPost, http.MethodPut:
		if err := h.readBody(w, r, req); err != nil {
			return nil, err
		}
		payload = req.buf.Bytes()
		if r.Header.Get(intake.SignatureHeader) != "" {
			if err := checkSignedQuery(query); err != nil {
				return nil, err
			}
		}
		recs, err = h.decodeBody(r.Header.Get("Content-Type"), payload, query, now, req)
	default:
		return nil, intake.Errorf(http.StatusMethodNotAllowed, "method %s not allowed; use POST (or GET for Python's HTTPHandler)", r.Method)
	}
	if err != nil {
		return nil, err
	}
	return h.batch(r, req, recs, query, payload, source, peer, now)
}

// batch routes decoded records and makes them req's batch, with the
// signature the request carries over payload.
func (h *Ingest) batch(r *http.Request, req *request, recs []intake.Record, query url.Values, payload []byte, src, peer string, now time.Time) (*intake.Batch, error) {
	if err := h.route(recs, query.Get("app"), query.Get("facility"), peer); err != nil {
		return nil, err
	}
	sig, err := parseSignature(r.Header.Get(intake.SignatureHeader), payload)
	if err != nil {
		return nil, err
	}
	req.batch = intake.Batch{Records: recs, Signature: sig, Source: src, Peer: peer, Received: now}
	return &req.batch, nil
}

func (h *Ingest) decodeBody(contentType string, body []byte, query map[string][]string, now time.Time, req *request) ([]intake.Record, error) {
	if contentType == "" {
		return nil, intake.Errorf(http.StatusUnsupportedMediaType, "missing Content-Type")
	}
	// Python's HTTPHandler sends exactly this; anything else is parsed.
	mediaType := "application/x-www-form-urlencoded"
	var err error
	if contentType != mediaType {
		if mediaType, _, err = mime.ParseMediaType(contentType); err != nil {
			return nil, intake.Errorf(http.StatusUnsupportedMediaType, "invalid Content-Type %q", contentType)
		}
	}
	var recs []intake.Record
	switch mediaType {
	case "application/x-www-form-urlencoded":
		if c := jsonlog.Opening(body); c != 0 {
			// curl -d's default type on a JSON body. No form HTTPHandler
			// sends starts so: urlencode escapes both.
			return nil, intake.Errorf(http.StatusUnsupportedMediaType,
				"the body looks like JSON (it starts with %q) but was sent as %s (curl -d's default): send it with Content-Type: application/json, or application/x-ndjson for one record per line", c, mediaType)
		}
		// In place: body is req's pooled buffer, reused only after
		// ServeHTTP has submitted the record, and Submit copies what it
		// keeps; a copy of every post cost as much memory as the rest of
		// the handler together. Its errors already name the body, so
		// they are not wrapped below.
		return decodeForm(unsafe.String(unsafe.SliceData(body), len(body)), mediaType+" body", now, req)
	case "application/json":
		recs, err = jsonlog.Decode(body, h.limits, now)
	case "application/x-ndjson", "application/ndjson",
		"application/jsonl", "application/x-jsonlines", "application/jsonlines":
		recs, err = jsonlog.DecodeLines(body, h.limits, now)
	case "text/plain":
		recs, err = jsonlog.DecodeText(body, h.limits, now)
		if err == nil {
			err = applyTextLevel(recs, query)
		}
	default:
		return nil, intake.Errorf(http.StatusUnsupportedMediaType,
			"unsupported Content-Type %q: use application/x-www-form-urlencoded (Python HTTPHandler), application/json, application/x-ndjson, text/plain or application/x-protobuf (OTLP)", mediaType)
	}
	if err != nil {
		return nil, intake.Errorf(http.StatusBadRequest, "malformed %s body: %v", mediaType, err)
	}
	return recs, nil
}

// decodeForm decodes one Python LogRecord into req's storage, taking the
// routing keys out; what names raw in errors.
func decodeForm(raw, what string, now time.Time, req *request) ([]intake.Record, error) {
	fields, err := req.scratch.ParseForm(raw, maxFormFields)
	if err != nil {
		return nil, intake.Errorf(http.StatusBadRequest, "malformed %s: %v", what, err)
	}
	var app, facility, levelName string
	hasLevelName, hasLevelNo := false, false
	kept := fields[:0]
	for _, f := range fields {
		switch {
		case f.Key == "app" && app == "":
			app = f.Value
		case f.Key == "facility" && facility == "":
			facility = intake.FacilityFromLogger(f.Value)
		default:
			switch {
			case f.Key == "levelname" && !hasLevelName:
				levelName, hasLevelName = f.Value, true
			case f.Key == "levelno":
				hasLevelNo = true
			}
			kept = append(kept, f)
		}
	}
	if levelName != "" && !hasLevelNo {
		// HTTPHandler always sends levelno, which decides; a hand-made
		// form with a level name we do not know is a mistake, not INFO.
		if _, ok := intake.ParseLevel(levelName); !ok {
			return nil, intake.Errorf(http.StatusBadRequest, "unknown levelname %q and no levelno: %s", intake.Brief(levelName), jsonlog.LevelHint)
		}
	}
	// msg % args may ask for any width, any number of times: the
	// formatter stops at what the app's bound would keep of a record
	// this size (MaxAmplification per byte received), and the app cuts
	// what is over its bound and marks the entry truncated.
	req.scratch.MaxMessage = intake.MaxAmplification * len(raw)
	rec, err := req.scratch.FromForm(kept, now)
	if err != nil {
		// "not a Python log record: no msg, message or name field"
		return nil, intake.Errorf(http.StatusBadRequest, "%v", err)
	}
	rec.App, rec.Facility, rec.Wire = app, facility, len(raw)
	req.one[0] = rec
	return req.one[:], nil
}

func applyTextLevel(recs []intake.Record, query map[string][]string) error {
	name := ""
	if v := query["level"]; len(v) > 0 {
		name = v[0]
	}
	if name == "" {
		return nil
	}
	n, ok := intake.ParseLevel(name)
	if !ok {
		return fmt.Errorf("unknown level %q: %s", intake.Brief(name), jsonlog.LevelHint)
	}
	for i := range recs {
		recs[i].LevelNo, recs[i].LevelName = n, name
	}
	return nil
}

// routingParams are the query parameters that decide where a record
// goes: its app, its facility, and (text/plain) its level, which the
// facility's level filters on.
var routingParams = [...]string{"app", "facility", "level"}

// checkSignedQuery refuses a signed body whose query string routes it:
// the signature covers the body only, so whoever relays the request
// could change the query and file a signed record elsewhere.
func checkSignedQuery(query url.Values) error {
	for _, k := range routingParams {
		if _, ok := query[k]; ok {
			return intake.Errorf(http.StatusBadRequest,
				"the %s query parameter is not covered by the %s signature, which signs the body only: put %s in the signed body (a form field or JSON key) instead",
				k, intake.SignatureHeader, k)
		}
	}
	return nil
}

// route sets each record's app, facility and host. An app the route
// fixes cannot be changed by the query any more than by the body.
func (h *Ingest) route(recs []intake.Record, qApp, qFacility, peer string) error {
	if h.App != "" && qApp != "" && qApp != h.App {
		return intake.Errorf(http.StatusForbidden, "the app query parameter names app %q, but this endpoint accepts only app %q", qApp, h.App)
	}
	qFacility = intake.FacilityFromLogger(qFacility)
	for i := range recs {
		rec := &recs[i]
		switch {
		case h.App != "":
			if rec.App != "" && rec.App != h.App {
				return intake.Errorf(http.StatusForbidden, "record %d names app %q, but this endpoint accepts only app %q", i+1, rec.App, h.App)
			}
			rec.App = h.App
		case rec.App == "":
			rec.App = qApp
		}
		if rec.Facility == "" {
			rec.Facility = qFacility
		}
		if rec.Facility == "" {
			rec.Facility = h.Facility
		}
		rec.Host = peer
	}
	return nil
}

// initialGrow bounds the room made for a body before any of it has
// arrived: the buffer grows from there as bytes come in, never to what
// the client merely announced.
const initialGrow = 16 << 10

// readBody reads the request body into buf, up to max bytes, within the
// handler's read_body_timeout.
func (h *Ingest) readBody(w http.ResponseWriter, r *http.Request, req *request) error {
	buf, max := &req.buf, h.MaxBodySize
	tooLarge := func() error {
		return intake.Errorf(http.StatusRequestEntityTooLarge, "body larger than max_body_size (%s)", humanize.IBytes(uint64(max)))
	}
	if r.ContentLength > max {
		return tooLarge()
	}
	if r.ContentLength > 0 {
		// Room for a small body at once; a large one grows by doubling
		// from what has actually been read, so a client that announces
		// 10 MiB and trickles costs what it has sent.
		buf.Grow(int(min(r.ContentLength, initialGrow)))
	}
	start := time.Now()
	var rc *http.ResponseController
	if h.ReadBodyTimeout > 0 {
		rc = http.NewResponseController(w)
		if err := rc.SetReadDeadline(start.Add(time.Duration(h.ReadBodyTimeout))); err != nil {
			rc = nil
			if !warnedDeadline.Swap(true) {
				h.logger.Warn("read_body_timeout cannot be enforced: the response writer cannot set read deadlines", zap.Error(err))
			}
		}
	}
	// One byte more than max tells a body that is too large; the reader
	// lives in req, so reading costs no allocation.
	req.limit = io.LimitedReader{R: r.Body, N: max + 1}
	_, err := buf.ReadFrom(&req.limit)
	req.limit.R = nil
	if rc != nil && err == nil {
		// Lift it once the body is in: the server reads on in the
		// background, and a deadline passing then would cancel the
		// request while it is being submitted. After an error it stays,
		// so that the server cannot wait on the rest of a slow body.
		_ = rc.SetReadDeadline(time.Time{})
	}
	if err != nil {
		var mbe *http.MaxBytesError // Caddy's request_body max_size
		switch {
		case errors.As(err, &mbe):
			return tooLarge()
		case errors.Is(err, os.ErrDeadlineExceeded):
			// A slow body holds a connection and its buffer: cut it, and
			// close the connection rather than read the rest.
			w.Header().Set("Connection", "close")
			if took := time.Since(start); took < time.Duration(h.ReadBodyTimeout) {
				// The server's own timeouts (read_body) came first: a
				// handler can shorten them, never lengthen them.
				return intake.Errorf(http.StatusRequestTimeout, "request body arrived too slowly (cut after %s by the server's timeouts)", took.Round(100*time.Millisecond))
			}
			return intake.Errorf(http.StatusRequestTimeout, "request body arrived too slowly (read_body_timeout %s)", time.Duration(h.ReadBodyTimeout))
		}
		return intake.Errorf(http.StatusBadRequest, "reading body: %v", err)
	}
	if int64(buf.Len()) > max {
		return tooLarge()
	}
	return nil
}

// parseSignature parses the signature header; no header is no signature.
func parseSignature(header string, body []byte) (*intake.Signature, error) {
	if header == "" {
		return nil, nil
	}
	malformed := func(why string) error {
		return intake.Errorf(http.StatusUnauthorized, "malformed %s header: %s (want t=<unix seconds>,v1=<hex hmac-sha256>)", intake.SignatureHeader, why)
	}
	sig := new(intake.Signature)
	var ts string
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, malformed("no '=' in " + strconv.Quote(part))
		}
		switch k {
		case "t":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				return nil, malformed("bad timestamp")
			}
			sig.Timestamp, ts = n, v
		case "v1":
			mac, err := hex.DecodeString(v)
			if err != nil || len(mac) != 32 {
				return nil, malformed("v1 must be 64 hex digits")
			}
			if len(sig.MACs) >= 16 {
				return nil, malformed("too many signatures")
			}
			sig.MACs = append(sig.MACs, mac)
		}
	}
	if ts == "" || len(sig.MACs) == 0 {
		return nil, malformed("needs both t and v1")
	}
	sig.Payload = make([]byte, 0, len(ts)+1+len(body))
	sig.Payload = append(append(append(sig.Payload, ts...), '.'), body...)
	return sig, nil
}

// peerOf returns the client address Caddy resolved (honouring
// trusted_proxies), or the connection's peer.
func peerOf(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		return ip
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// oneLine keeps an error reason on a single line of the response.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Ingest)(nil)
	_ caddy.Validator             = (*Ingest)(nil)
	_ caddyhttp.MiddlewareHandler = (*Ingest)(nil)
	_ caddyfile.Unmarshaler       = (*Ingest)(nil)
)
