package access

import (
	"math"
	"net"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// entry is what the formats read from one access log entry: the fields
// Caddy's access logger writes (modules/caddyhttp/server.go, logRequest,
// and marshalers.go), found among the recorded nodes. Nothing is
// copied: strings and headers are referenced.
type entry struct {
	hasRequest bool
	remoteIP   string
	remotePort string
	clientIP   string
	proto      string
	method     string
	host       string
	uri        string
	reqHeaders headerSet

	userID      string
	duration    time.Duration
	size        int64
	status      int64
	respHeaders headerSet

	// tops are the top-level field lists (the encoder's context, then
	// the entry's own fields), for %{name}n.
	tops [2]span
}

// span is a run of sibling nodes, nodes[lo:hi].
type span struct {
	nodes  []node
	lo, hi int
}

// read fills e from the top-level nodes of s. A field that appears
// twice keeps its last value, as a JSON reader of zap's output would.
// It returns false if s opened a namespace: everything after that
// belongs to the namespace, not to the top level where Caddy's fields
// live.
func (e *entry) read(s span) bool {
	for i := s.lo; i < s.hi; i = next(s.nodes, i) {
		n := &s.nodes[i]
		switch n.key {
		case "request":
			switch n.kind {
			case kMarshaler:
				if r, ok := n.v.(caddyhttp.LoggableHTTPRequest); ok {
					e.hasRequest = true
					e.readLoggableRequest(r)
				}
			case kObject:
				e.hasRequest = true
				e.readRequest(span{s.nodes, i + 1, int(n.end)})
			}
		case "user_id":
			e.userID = text(n)
		case "duration":
			e.duration = duration(n)
		case "size":
			e.size = integer(n)
		case "status":
			e.status = integer(n)
		case "resp_headers":
			e.respHeaders = headersOf(s.nodes, i)
		}
		if n.kind == kNamespace {
			return false
		}
	}
	return true
}

// readField reads one of Caddy's own entry fields straight from the
// zap field, and reports whether it did.
func (e *entry) readField(f *zapcore.Field) bool {
	switch f.Key {
	case "user_id":
		if f.Type == zapcore.StringType {
			e.userID = f.String
			return true
		}
	case "duration":
		if f.Type == zapcore.DurationType {
			e.duration = time.Duration(f.Integer)
			return true
		}
	case "size", "status", "bytes_read":
		if f.Type == zapcore.Int64Type {
			switch f.Key {
			case "size":
				e.size = f.Integer
			case "status":
				e.status = f.Integer
			}
			return true
		}
	case "resp_headers":
		if h, ok := f.Interface.(caddyhttp.LoggableHTTPHeader); ok && f.Type == zapcore.ObjectMarshalerType {
			e.respHeaders = headerSet{h: h.Header, redact: !h.ShouldLogCredentials, direct: true}
			return true
		}
	case "request":
		if r, ok := f.Interface.(caddyhttp.LoggableHTTPRequest); ok && f.Type == zapcore.ObjectMarshalerType {
			e.hasRequest = true
			e.readLoggableRequest(r)
			return true
		}
	}
	return false
}

// readLoggableRequest reads the values LoggableHTTPRequest.MarshalLogObject
// would write, straight from the request.
func (e *entry) readLoggableRequest(r caddyhttp.LoggableHTTPRequest) {
	ip, port, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		ip, port = r.RemoteAddr, ""
	}
	e.remoteIP, e.remotePort = ip, port
	e.clientIP, _ = caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	e.proto, e.method, e.host, e.uri = r.Proto, r.Method, r.Host, r.RequestURI
	e.reqHeaders = headerSet{h: r.Header, redact: !r.ShouldLogCredentials, direct: true}
}

// readRequest reads a request object that was recorded field by field
// (it came through a wrapper, such as the filter encoder's).
func (e *entry) readRequest(s span) {
	for i := s.lo; i < s.hi; i = next(s.nodes, i) {
		n := &s.nodes[i]
		switch n.key {
		case "remote_ip":
			e.remoteIP = text(n)
		case "remote_port":
			e.remotePort = text(n)
		case "client_ip":
			e.clientIP = text(n)
		case "proto":
			e.proto = text(n)
		case "method":
			e.method = text(n)
		case "host":
			e.host = text(n)
		case "uri":
			e.uri = text(n)
		case "headers":
			e.reqHeaders = headersOf(s.nodes, i)
		}
	}
}

// headersOf returns the header set of the node at nodes[i]: a Caddy
// LoggableHTTPHeader kept as is, or an object recorded field by field.
func headersOf(nodes []node, i int) headerSet {
	n := &nodes[i]
	switch n.kind {
	case kMarshaler:
		if h, ok := n.v.(caddyhttp.LoggableHTTPHeader); ok {
			return headerSet{h: h.Header, redact: !h.ShouldLogCredentials, direct: true}
		}
	case kObject:
		return headerSet{nodes: span{nodes, i + 1, int(n.end)}}
	}
	return headerSet{}
}

// client is the address the formats log as the client's (%h, %a,
// gunicorn's h): Caddy's client_ip, which already went through
// trusted_proxies, client_ip_headers and the PROXY protocol. Without it
// (a filter deleted it), the connection's peer.
func (e *entry) client() string {
	if e.clientIP != "" {
		return e.clientIP
	}
	return e.remoteIP
}

// headerSet is a request's or response's headers: an http.Header read
// directly (what Caddy's LoggableHTTPHeader holds), or header arrays
// recorded field by field (when a filter encoder passed them on).
type headerSet struct {
	direct bool
	h      http.Header
	redact bool // Caddy logs credentials as "REDACTED" (no log_credentials)
	nodes  span
}

// valueList holds the values of one header.
type valueList struct {
	strs  []string
	nodes []node // flat: each node is one value
}

func (v valueList) len() int {
	if v.strs != nil {
		return len(v.strs)
	}
	return len(v.nodes)
}

func (v valueList) at(i int) string {
	if v.strs != nil {
		return v.strs[i]
	}
	return text(&v.nodes[i])
}

func (v valueList) last() string { return v.at(v.len() - 1) }

var redacted = []string{"REDACTED"}

// get returns the values of header name (canonical, as Go stores
// names). ok is false when the header is absent or was deleted by a
// filter.
func (hs headerSet) get(name string) (vals valueList, ok bool) {
	if hs.direct {
		v := hs.h[name]
		if len(v) == 0 {
			return valueList{}, false
		}
		if hs.redact && isCredential(name) {
			// What Caddy's LoggableHTTPHeader logs (see #5669).
			v = redacted
		}
		return valueList{strs: v}, true
	}
	nodes := hs.nodes.nodes
	for i := hs.nodes.lo; i < hs.nodes.hi; i = next(nodes, i) {
		n := &nodes[i]
		if len(n.key) != len(name) || (n.key != name && !strings.EqualFold(n.key, name)) {
			continue
		}
		if n.kind == kArray {
			// Header arrays hold strings: their nodes are flat.
			vals = valueList{nodes: nodes[i+1 : n.end]}
		} else {
			// A filter replaced the array with a single value.
			vals = valueList{nodes: nodes[i : i+1]}
		}
		return vals, vals.len() > 0
	}
	return valueList{}, false
}

// isCredential reports whether Caddy redacts header name (canonical)
// unless the server has log_credentials.
func isCredential(name string) bool {
	switch name {
	case "Cookie", "Set-Cookie", "Authorization", "Proxy-Authorization":
		return true
	}
	return false
}

// text returns a node's value as a string, "" if it is not a string.
func text(n *node) string {
	switch n.kind {
	case kString, kByteString, kBinary:
		return n.str
	}
	return ""
}

func integer(n *node) int64 {
	switch n.kind {
	case kInt, kUint, kDuration:
		return int64(n.num)
	case kFloat64, kFloat32:
		return int64(math.Float64frombits(n.num))
	}
	return 0
}

// duration reads Caddy's duration field: a time.Duration, or seconds if
// a filter turned it into a number.
func duration(n *node) time.Duration {
	switch n.kind {
	case kDuration:
		return time.Duration(n.num)
	case kFloat64, kFloat32:
		return time.Duration(math.Float64frombits(n.num) * float64(time.Second))
	case kInt, kUint:
		return time.Duration(n.num) * time.Second
	}
	return 0
}
