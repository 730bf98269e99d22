package ingest

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	collogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	"go.uber.org/zap"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/caddy-applog/caddy-applog/module/decoders/otlp"
	"github.com/caddy-applog/caddy-applog/module/intake"
	"github.com/caddy-applog/caddy-applog/module/status"
)

// otlpSource names OTLP exports in counters and the status page, beside
// the handler's other posts.
const otlpSource = source + "/otlp"

// otlpPath ends the path of OTLP/HTTP log exports; an exporter given a
// base URL appends it.
const otlpPath = "/v1/logs"

// otlpRequest reports whether r is an OTLP/HTTP log export, and in which
// encoding: any request to a path ending in /v1/logs, and any body sent
// as application/x-protobuf (no other log format is protobuf). JSON sent
// elsewhere is the plugin's own JSON. A request to /v1/logs in another
// type is an OTLP export that gets 415, in OTLP's error form.
func otlpRequest(r *http.Request) (otlp.Format, bool, error) {
	ct := r.Header.Get("Content-Type")
	mediaType, _, _ := mime.ParseMediaType(ct)
	isPath := strings.HasSuffix(r.URL.Path, otlpPath)
	switch {
	case isPath && r.Method != http.MethodPost:
		return otlp.Protobuf, true, intake.Errorf(http.StatusMethodNotAllowed, "method %s not allowed for an OTLP export; use POST", r.Method)
	case mediaType == "application/x-protobuf":
		return otlp.Protobuf, true, nil
	case !isPath:
		return 0, false, nil
	case mediaType == "application/json":
		return otlp.JSON, true, nil
	}
	return otlp.Protobuf, true, intake.Errorf(http.StatusUnsupportedMediaType,
		"unsupported Content-Type %q for an OTLP export: use application/x-protobuf or application/json", ct)
}

// serveOTLP answers an OTLP/HTTP log export as the OTLP specification
// says: 200 with an ExportLogsServiceResponse in the request's encoding
// (a partial_success counting the records below their facility's level),
// or an error status with a google.rpc.Status.
func (h *Ingest) serveOTLP(w http.ResponseWriter, r *http.Request, req *request, peer string, format otlp.Format, err error) {
	var batch *intake.Batch
	if err == nil {
		batch, err = h.decodeOTLP(w, r, req, peer, format)
	}
	var res intake.Result
	switch {
	case err != nil:
		status.Source(otlpSource).Rejected.Add(1)
	case len(batch.Records) > 0:
		res, err = h.intake.Submit(r.Context(), batch)
	}
	if err != nil {
		code := intake.StatusOf(err)
		h.logger.Warn("rejected OTLP log records",
			zap.String("peer", peer),
			zap.Int("status", code),
			zap.String("reason", err.Error()))
		if code == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", "POST")
		}
		writeOTLP(w, format, code, &rpcstatus.Status{Code: rpcCode(code), Message: oneLine(err.Error())})
		return
	}
	resp := new(collogs.ExportLogsServiceResponse)
	if res.Filtered > 0 {
		resp.PartialSuccess = &collogs.ExportLogsPartialSuccess{
			RejectedLogRecords: int64(res.Filtered),
			// Exporters add the count ("(2 logs rejected)").
			ErrorMessage: "dropped: below their facility's level",
		}
	}
	writeOTLP(w, format, http.StatusOK, resp)
}

// decodeOTLP turns an OTLP export into a batch ready to submit.
func (h *Ingest) decodeOTLP(w http.ResponseWriter, r *http.Request, req *request, peer string, format otlp.Format) (*intake.Batch, error) {
	now := time.Now()
	switch enc := r.Header.Get("Content-Encoding"); strings.ToLower(enc) {
	case "", "identity":
	case "gzip":
		// Decompressed as it is read: max_body_size bounds the
		// decompressed bytes, and nothing is reserved for bytes that
		// have not arrived.
		r.Body = &gunzip{r: r.Body}
	default:
		return nil, intake.Errorf(http.StatusUnsupportedMediaType, "unsupported Content-Encoding %q: use gzip or none", enc)
	}
	if err := h.readBody(w, r, req); err != nil {
		return nil, err
	}
	body := req.buf.Bytes()
	var query url.Values // most exports have none: no map to make
	if r.URL.RawQuery != "" {
		query = r.URL.Query()
	}
	if r.Header.Get(intake.SignatureHeader) != "" {
		if err := checkSignedQuery(query); err != nil {
			return nil, err
		}
	}
	recs, err := otlp.Decode(body, format, h.otlpLimits, now)
	if err != nil {
		if errors.Is(err, otlp.ErrLimit) {
			return nil, intake.Errorf(http.StatusRequestEntityTooLarge, "%v", err)
		}
		return nil, intake.Errorf(http.StatusBadRequest, "malformed OTLP %s body: %v", formatName(format), err)
	}
	return h.batch(r, req, recs, query, body, otlpSource, peer, now)
}

func formatName(f otlp.Format) string {
	if f == otlp.JSON {
		return "JSON"
	}
	return "protobuf"
}

// writeOTLP writes m with status in the request's encoding.
func writeOTLP(w http.ResponseWriter, format otlp.Format, code int, m proto.Message) {
	var (
		body []byte
		err  error
	)
	if format == otlp.JSON {
		w.Header().Set("Content-Type", "application/json")
		body, err = protojson.Marshal(m)
	} else {
		w.Header().Set("Content-Type", "application/x-protobuf")
		body, err = proto.Marshal(m)
	}
	if err != nil {
		// Both messages are plain: this cannot fail but for a bug.
		body = nil
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

// rpcCode is the gRPC code of an HTTP status, for google.rpc.Status.
func rpcCode(httpStatus int) int32 {
	switch httpStatus {
	case http.StatusBadRequest, http.StatusUnsupportedMediaType:
		return 3 // INVALID_ARGUMENT
	case http.StatusRequestTimeout:
		return 4 // DEADLINE_EXCEEDED
	case http.StatusForbidden:
		return 7 // PERMISSION_DENIED
	case http.StatusRequestEntityTooLarge:
		return 8 // RESOURCE_EXHAUSTED
	case http.StatusMethodNotAllowed:
		return 12 // UNIMPLEMENTED
	case http.StatusUnauthorized:
		return 16 // UNAUTHENTICATED
	}
	return 13 // INTERNAL
}

// gunzip decompresses a request body as it is read, opening the gzip
// stream on the first read so that its header is read under the
// handler's read_body_timeout like the rest of the body.
type gunzip struct {
	r   io.ReadCloser
	z   *gzip.Reader
	err error
}

func (g *gunzip) Read(p []byte) (int, error) {
	if g.z == nil {
		if g.err != nil {
			return 0, g.err
		}
		if g.z, g.err = gzip.NewReader(g.r); g.err != nil {
			g.z = nil
			return 0, fmt.Errorf("gzip: %w", g.err)
		}
	}
	n, err := g.z.Read(p)
	if err != nil && err != io.EOF {
		// Wrapped, the transport's errors (a deadline, Caddy's
		// request_body limit) stay classifiable.
		err = fmt.Errorf("gzip: %w", err)
	}
	return n, err
}

func (g *gunzip) Close() error { return g.r.Close() }
