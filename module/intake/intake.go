package intake

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// AppName is the name of the applog app in Caddy's config (`apps.applog`).
const AppName = "applog"

// Intake is what the applog app offers to the doors records come in by.
// Handlers and receivers get it with ctx.App(intake.AppName).
type Intake interface {
	// Submit checks a batch against the facilities' rules (known app,
	// signature, level) and emits it into Caddy's logging. It is
	// all-or-nothing: on error, no record of the batch was emitted.
	// It keeps no reference to the batch, its records or their strings
	// once it has returned, and copies whatever it keeps (the status
	// page's recent records, cached names): a caller may decode records
	// with strings that point into a buffer it reuses after Submit.
	Submit(ctx context.Context, b *Batch) (Result, error)

	// KnowsApp reports whether records of app may be submitted.
	KnowsApp(app string) bool

	// DeclareApp makes records of app acceptable. A door whose config
	// names an app calls it while provisioning: the operator chose it.
	DeclareApp(app string)
}

// Receiver is a network door of the app (a syslog or Python socket
// listener), configured in the app and started and stopped with it.
type Receiver interface {
	Start(Intake) error
	Stop() error
}

// Batch is a set of records that arrived together, with what is needed to
// check their signature.
type Batch struct {
	Records []Record

	// Signature, when not nil, is the signature the sender attached.
	Signature *Signature

	// Source names the door the batch came in by ("log_ingest",
	// "syslog/udp"), for counters and error messages.
	Source string

	// Peer is the remote address of the sender, for error messages.
	Peer string

	// Received is when the batch arrived; zero means now. Receivers set
	// it from the read that brought the bytes, which saves a clock read
	// per message.
	Received time.Time
}

// SignatureHeader is the request header that carries a signature:
// `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, with v1
// repeated for batches spanning facilities with different secrets. For
// a GET request the body is the raw query string.
const SignatureHeader = "X-Applog-Signature"

// Signature is an HMAC-SHA256 signature over Payload, made at Timestamp.
type Signature struct {
	// Timestamp is the Unix time in seconds the sender signed at.
	Timestamp int64
	// MACs are the candidate signatures; each needed secret must produce
	// one of them. Several allow one batch to span facilities with
	// different secrets, and secrets to be rotated.
	MACs [][]byte
	// Payload is the signed bytes: the decimal timestamp, a dot, and the
	// request body (or the raw query string of a GET request).
	Payload []byte
}

// Result counts what happened to a submitted batch.
type Result struct {
	Accepted  int `json:"accepted"`
	Filtered  int `json:"filtered"`  // below the facility's level
	Truncated int `json:"truncated"` // records cut to max_message_size or max_record_size
}

// Error is a rejection with the HTTP status that describes it best and a
// one-line reason fit to send back to the client.
type Error struct {
	Status int
	Reason string
}

func (e *Error) Error() string { return e.Reason }

// Errorf returns an *Error with a formatted reason.
func Errorf(status int, format string, args ...any) *Error {
	return &Error{Status: status, Reason: fmt.Sprintf(format, args...)}
}

// StatusOf returns the HTTP status an error maps to: its own for *Error,
// 400 for anything else a decoder returns.
func StatusOf(err error) int {
	if e, ok := err.(*Error); ok {
		return e.Status
	}
	return http.StatusBadRequest
}

// Brief shortens text quoted in an error to at most 60 bytes and "...",
// cutting before a character rather than through it.
func Brief(s string) string {
	const limit = 60
	if len(s) <= limit {
		return s
	}
	return CutUTF8(s, limit) + "..."
}

// CutUTF8 returns the longest prefix of s of at most n bytes that does
// not end inside a UTF-8 sequence.
func CutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// The last character that starts before n, if it does not end by
	// n, goes; stray continuation bytes are cut as they come.
	for i := n - 1; i >= 0 && i >= n-utf8.UTFMax; i-- {
		if utf8.RuneStart(s[i]) {
			if _, size := utf8.DecodeRuneInString(s[i:]); i+size > n {
				return s[:i]
			}
			break
		}
	}
	return s[:max(n, 0)]
}

// MaxNameLen bounds app and facility names; longer ones are rejected.
const MaxNameLen = 200

// ValidApp reports whether s can be an app name (see CheckApp).
func ValidApp(s string) bool { return CheckApp(s) == nil }

func reserved(s string) bool {
	for _, r := range reservedApps {
		if strings.EqualFold(s, r) {
			return true
		}
	}
	return false
}

// ErrReservedApp is the error CheckApp wraps for a reserved app name.
var ErrReservedApp = errors.New("reserved app name")

// reservedApps are names the plugin's own loggers use under applog.: the
// receivers log their diagnostics as applog.receivers.<receiver>, so the
// records of an app named "receivers" could pass for them.
var reservedApps = [...]string{"receivers"}

// CheckApp returns why s cannot be an app name, or nil: an app name is 1
// to MaxNameLen letters, digits, '_' and '-', so that "applog.<app>" is a
// single logger-name segment, and none of the reserved names (compared
// without case).
func CheckApp(s string) error {
	if s == "" || len(s) > MaxNameLen {
		return fmt.Errorf("app name must be letters, digits, '_' or '-' (1 to %d of them)", MaxNameLen)
	}
	for i := 0; i < len(s); i++ {
		if !nameByte(s[i]) {
			return fmt.Errorf("app name must be letters, digits, '_' or '-'")
		}
	}
	if reserved(s) {
		return fmt.Errorf("%w %q: the plugin logs its own diagnostics as %s.%s", ErrReservedApp, s, AppName, strings.ToLower(s))
	}
	return nil
}

func nameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// FacilityFromLogger turns a source's logger name into a facility: dotted
// segments of letters, digits, '_' and '-', other bytes replaced by '_',
// empty segments dropped. Python's "root" logger is the app root ("").
func FacilityFromLogger(name string) string {
	if name == "" || name == "root" {
		return ""
	}
	if len(name) > MaxNameLen {
		name = name[:MaxNameLen]
	}
	clean := true
	for i := 0; i < len(name); i++ {
		if !nameByte(name[i]) && name[i] != '.' {
			clean = false
			break
		}
	}
	if clean && name[0] != '.' && name[len(name)-1] != '.' && !strings.Contains(name, "..") {
		return name
	}
	var b strings.Builder
	for _, seg := range strings.Split(name, ".") {
		if seg == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		for i := 0; i < len(seg); i++ {
			if nameByte(seg[i]) {
				b.WriteByte(seg[i])
			} else {
				b.WriteByte('_')
			}
		}
	}
	return b.String()
}
