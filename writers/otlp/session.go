package otlp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"go.uber.org/zap"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"

	collogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"

	"github.com/caddy-applog/caddy-applog/internal/forward"
)

// transport is OTLP/HTTP (protobuf) to one endpoint: a
// forward.Transport. A request answered with a 2xx settles its records
// (its partial success counted as rejected); 429, 502, 503 and 504 end
// the session with the Retry-After the peer asked for; so do 401, 403,
// 407 and 404, answers about the writer (its credentials, its URL) that
// a config reload fixes, not about the records; another 4xx settles the
// batch as rejected, as the peer will never take it.
type transport struct {
	endpoint string
	client   *http.Client
	header   http.Header
	gzip     bool
	timeout  time.Duration
	mapper   *mapper
	log      *zap.Logger
}

const maxAnswer = 64 << 10 // how much of an answer's body is read

// Connect makes a session: HTTP connects per request (keeping its
// connections alive), so nothing is dialled here.
func (t *transport) Connect(ctx context.Context) (forward.Session, error) {
	sctx, cancel := context.WithCancel(context.Background())
	s := &session{t: t, ctx: sctx, cancel: cancel, broken: make(chan struct{}), watched: make(chan struct{})}
	// Once the sender is asked to stop, a request in flight gets
	// HandoverTimeout to be answered, so a peer that stopped answering
	// does not hold up the sender that takes over.
	s.stopWatch = context.AfterFunc(ctx, func() {
		defer close(s.watched)
		t := time.NewTimer(forward.HandoverTimeout)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-sctx.Done():
		}
	})
	return s, nil
}

// session is a run of requests on the transport's client.
type session struct {
	t         *transport
	ctx       context.Context
	cancel    context.CancelFunc
	stopWatch func() bool
	watched   chan struct{} // closed when the watch that stopWatch stops has run
	broken    chan struct{} // never closed: a failed request ends the session through Send

	build    builder // the export, made again for each request
	msg      []byte  // the export marshalled
	body     bytes.Buffer
	zw       *gzip.Writer
	settled  int64
	rejected int64
}

func (s *session) Broken() <-chan struct{} { return s.broken }

// Acked reports the records answered so far: Send waits for its answer.
func (s *session) Acked(wait time.Duration) (forward.Ack, error) {
	forward.Pause(wait, s.broken)
	return forward.Ack{Settled: s.settled, Rejected: s.rejected}, nil
}

// Close ends the session; a request in flight has already returned.
func (s *session) Close(graceful bool) error {
	stopped := s.stopWatch()
	s.cancel()
	if !stopped {
		<-s.watched // the watch started: cancel ends it
	}
	// After a failure a kept-alive connection may be dead, so the next
	// session dials afresh; a sender ends a session by choice only when
	// it stops (a handover to other settings, Caddy exiting), after
	// which nothing reuses the connections.
	s.t.client.CloseIdleConnections()
	return nil
}

// Send posts recs as one export and waits for the answer: settled
// counts grow by len(recs) when it returns nil.
func (s *session) Send(recs []forward.Record) error {
	return s.post(recs)
}

// post sends recs as one export. An endpoint that finds the export too
// large (413) gets it again in halves, down to single records: only a
// record too large on its own is refused for good.
func (s *session) post(recs []forward.Record) error {
	if err := s.encode(recs); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.t.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.t.endpoint, bytes.NewReader(s.body.Bytes()))
	if err != nil {
		return err
	}
	for k, v := range s.t.header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	if s.t.gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := s.t.client.Do(req)
	if err != nil {
		return fmt.Errorf("posting: %w", err)
	}
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	resp.Body.Close()
	if err != nil && resp.StatusCode/100 != 2 {
		return fmt.Errorf("reading the answer (%s): %w", resp.Status, err)
	}
	n := int64(len(recs))
	switch code := resp.StatusCode; {
	case code/100 == 2:
		s.settled += n
		if r, text := partialSuccess(resp, answer); r > 0 || text != "" {
			r = min(max(r, 0), n)
			s.rejected += r
			s.t.log.Warn("the OTLP endpoint refused some records",
				zap.Int64("rejected", r), zap.Int64("sent", n), zap.String("reason", text))
		}
		return nil
	case code == http.StatusTooManyRequests, code == http.StatusBadGateway,
		code == http.StatusServiceUnavailable, code == http.StatusGatewayTimeout:
		err := fmt.Errorf("the OTLP endpoint answered %s: %s", resp.Status, reason(resp, answer))
		if d := retryAfter(resp.Header.Get("Retry-After"), time.Now()); d > 0 {
			return forward.RetryAfter(d, err)
		}
		return err
	case code == http.StatusRequestTimeout, code/100 != 4:
		return fmt.Errorf("the OTLP endpoint answered %s: %s", resp.Status, reason(resp, answer))
	case code == http.StatusUnauthorized, code == http.StatusForbidden, code == http.StatusProxyAuthRequired:
		// A wrong or rotated API key: dropping would throw away the
		// whole spool, batch by batch. The entries wait (as for an
		// endpoint that is down) for a config with the right key.
		return fmt.Errorf("the OTLP endpoint answered %s: %s: %w", resp.Status, reason(resp, answer), errCredentials)
	case code == http.StatusNotFound:
		return fmt.Errorf("the OTLP endpoint answered %s: %s: %w", resp.Status, reason(resp, answer), errNoReceiver)
	case code == http.StatusMisdirectedRequest:
		// The server will not answer for this host on this connection
		// (HTTP allows a retry on a new one): a server's or the
		// writer's setting, not the entries'. The session ends, so
		// the next export dials again.
		return fmt.Errorf("the OTLP endpoint answered %s: %s: %w", resp.Status, reason(resp, answer), errMisdirected)
	case code == http.StatusRequestEntityTooLarge && len(recs) > 1:
		half := len(recs) / 2
		s.t.log.Warn("the OTLP endpoint found an export too large; sending it in halves",
			zap.Int("records", len(recs)), zap.Int("bytes", len(s.body.Bytes())))
		if err := s.post(recs[:half]); err != nil {
			return err
		}
		return s.post(recs[half:])
	default:
		// Sending the same batch again would get the same answer:
		// the records are dropped (and counted) rather than retried
		// forever.
		s.settled += n
		s.rejected += n
		s.t.log.Error("the OTLP endpoint refused a batch for good; its records are dropped",
			zap.Int("status", code), zap.Int64("records", n), zap.String("reason", reason(resp, answer)))
		return nil
	}
}

// encode maps recs onto one export and leaves its request body in
// s.body. The export, its encoding and the gzip writer are the
// session's, kept from one request to the next.
func (s *session) encode(recs []forward.Record) error {
	var err error
	s.msg, err = proto.MarshalOptions{}.MarshalAppend(s.msg[:0], s.build.export(s.t.mapper, recs))
	if err != nil {
		return fmt.Errorf("encoding the export: %w", err)
	}
	s.body.Reset()
	if !s.t.gzip {
		s.body.Write(s.msg)
		return nil
	}
	if s.zw == nil {
		s.zw = gzip.NewWriter(&s.body)
	} else {
		s.zw.Reset(&s.body)
	}
	if _, err := s.zw.Write(s.msg); err != nil {
		return err
	}
	return s.zw.Close()
}

// partialSuccess reads a 2xx answer's ExportLogsServiceResponse.
func partialSuccess(resp *http.Response, answer []byte) (int64, string) {
	if len(answer) == 0 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/x-protobuf") {
		return 0, ""
	}
	var r collogs.ExportLogsServiceResponse
	if proto.Unmarshal(answer, &r) != nil || r.PartialSuccess == nil {
		return 0, ""
	}
	return r.PartialSuccess.RejectedLogRecords, r.PartialSuccess.ErrorMessage
}

// reason is an error answer's message: a google.rpc.Status in protobuf,
// else its text, one line, bounded.
func reason(resp *http.Response, answer []byte) string {
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/x-protobuf") {
		var st status.Status
		if proto.Unmarshal(answer, &st) == nil && st.Message != "" {
			return st.Message
		}
	}
	text := strings.Join(strings.Fields(string(answer)), " ")
	if len(text) > 512 {
		text = text[:512] + "..."
	}
	if text == "" {
		return "no reason given"
	}
	return text
}

// retryAfter reads a Retry-After header: seconds or an HTTP date. 0
// when absent or unreadable (the sender's backoff then applies).
func retryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return 0
	}
	if secs, err := strconv.Atoi(strings.TrimSpace(h)); err == nil {
		return time.Duration(max(secs, 0)) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}

var errNotProvisioned = errors.New("otlp writer: not provisioned")

// Answers about the writer rather than its records: the entries are
// kept and sent again with the backoff until a config that fixes the
// writer is loaded, bounded by the spool's max_size and on_full (or the
// buffer).
var (
	errCredentials = errors.New("the endpoint refuses the writer's credentials (its headers, its client certificate); the entries are kept until a config with the right ones is loaded")
	errMisdirected = errors.New("the endpoint does not serve this host name on this connection (check server_name and the server's TLS and Host settings); the entries are kept and sent again on a new connection")
	errNoReceiver  = errors.New("the endpoint has no OTLP logs receiver at this URL; the entries are kept until a config with the right endpoint is loaded")
)
