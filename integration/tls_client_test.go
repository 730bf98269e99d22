package integration

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// tlsRFC5424 returns an RFC 5424 message as the raw test clients send it.
func tlsRFC5424(pri int, app, msg string) string {
	return fmt.Sprintf("<%d>1 %s tls-test-host %s 4242 - - %s", pri, time.Now().UTC().Format(time.RFC3339Nano), app, msg)
}

// tlsSendFrames sends msgs over one TLS connection with octet-counting
// framing (RFC 5425: "LEN SP MSG") and reports whether the server kept
// the connection. A syslog server never answers, so anything it sends
// back within a moment after the messages (with TLS 1.3 the refusal of a
// client certificate arrives only then, as an alert) means refusal.
func tlsSendFrames(addr string, cfg *tls.Config, msgs []string) error {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return fmt.Errorf("handshake with %s: %w", addr, err)
	}
	defer c.Close()
	var b strings.Builder
	for _, m := range msgs {
		fmt.Fprintf(&b, "%d %s", len(m), m)
	}
	_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(b.String())); err != nil {
		return fmt.Errorf("writing to %s: %w", addr, err)
	}
	_ = c.SetReadDeadline(time.Now().Add(700 * time.Millisecond))
	var buf [512]byte
	n, err := c.Read(buf[:])
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return nil // still open: accepted
	case err == nil:
		return fmt.Errorf("%s sent %q", addr, buf[:n])
	default:
		return fmt.Errorf("%s closed the connection: %w", addr, err)
	}
}

// tlsWaitFor polls cond every 50ms until it holds or limit passes.
func tlsWaitFor(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tlsFileLines returns the non-empty lines of a file (none if missing).
func tlsFileLines(path string) []string {
	data, _ := os.ReadFile(path)
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

// tlsSeverities are the syslog severity names by number.
var tlsSeverities = []string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}
