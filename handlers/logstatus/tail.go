package logstatus

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-applog/caddy-applog/module/status"
)

// How the terminal view waits between attempts after losing the stream,
// and how long a silent stream may last (the server sends counters every
// statsEvery) before it is taken as lost.
const (
	retryFirst = 100 * time.Millisecond
	retryMax   = 5 * time.Second
	streamIdle = 5 * statsEvery
	maxEvent   = 1 << 20 // a record is at most a few tens of KB of JSON
)

// tailer follows the admin API's record stream and prints each record.
type tailer struct {
	addr   string     // the admin address, as given
	origin string     // scheme and host of the requests
	query  url.Values // the filters
	client *http.Client

	json, color bool
	out, errOut io.Writer

	proc  string // the Caddy process of the last stream (RunHeader)
	after uint64 // the last record printed
}

// newTailer prepares requests to the admin API at addr, in Caddy's
// network address form, as `caddy reload` and `caddy stop` reach it.
func newTailer(addr string, query url.Values) (*tailer, error) {
	na, err := caddy.ParseNetworkAddress(addr)
	if err != nil || na.PortRangeSize() > 1 {
		return nil, fmt.Errorf("invalid admin address %s: %v", addr, err)
	}
	origin := "http://" + na.JoinHostPort(0)
	if na.IsUnixNetwork() {
		// A unix socket's address may carry its permission bits.
		na.Host, _, _ = strings.Cut(na.Host, "|")
		origin = "http://127.0.0.1" // any host: the socket is the address
	}
	dialAddr := na.JoinHostPort(0)
	var d net.Dialer
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, na.Network, dialAddr)
		},
		ResponseHeaderTimeout: 10 * time.Second,
	}}
	return &tailer{addr: addr, origin: origin, query: query, client: client}, nil
}

// run follows the stream until ctx ends. Failing to reach Caddy the
// first time is an error; once it has followed, it reconnects, with a
// growing pause, and says on errOut when it lost and found the stream.
func (t *tailer) run(ctx context.Context) error {
	followed, lost := false, false
	wait := retryFirst
	for {
		err := t.follow(ctx, func() {
			if lost {
				fmt.Fprintf(t.errOut, "caddy applog tail: following again at %s\n", t.addr)
			}
			followed, lost, wait = true, false, retryFirst
		})
		if ctx.Err() != nil {
			return nil
		}
		if !followed {
			return err
		}
		if !lost {
			fmt.Fprintf(t.errOut, "caddy applog tail: %v; reconnecting\n", err)
			lost = true
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, retryMax)
	}
}

// follow reads one stream until it ends, calling connected once Caddy
// has answered.
func (t *tailer) follow(ctx context.Context, connected func()) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	q := url.Values{}
	for k, v := range t.query {
		q[k] = v
	}
	if t.proc != "" {
		q.Set("run", t.proc)
		q.Set("after", strconv.FormatUint(t.after, 10))
	}
	req, err := http.NewRequestWithContext(sctx, http.MethodGet, t.origin+"/applog/records?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Origin", t.origin)
	resp, err := t.client.Do(req)
	if err != nil {
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("cannot reach Caddy's admin API at %s: %w", t.addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("admin API at %s: %s", t.addr, apiError(resp))
	}
	if run := resp.Header.Get(RunHeader); run != t.proc {
		// A new process (or the first stream): start where it does.
		after, err := strconv.ParseUint(resp.Header.Get(AfterHeader), 10, 64)
		if run == "" || err != nil {
			return fmt.Errorf("admin API at %s: not a record stream (no %s and %s headers)", t.addr, RunHeader, AfterHeader)
		}
		t.proc, t.after = run, after
	}
	connected()

	// A stream that stays silent longer than the server's counters
	// take to come is dead (a peer gone without closing): cancel it.
	idle := time.AfterFunc(streamIdle, cancel)
	defer idle.Stop()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), maxEvent)
	var ev sseEvent
	for sc.Scan() {
		idle.Reset(streamIdle)
		if !ev.add(sc.Bytes()) {
			continue
		}
		if ev.name == "record" {
			if err := t.print(&ev); err != nil {
				return err
			}
		}
		ev = sseEvent{}
	}
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case sctx.Err() != nil:
		return fmt.Errorf("the stream from %s went silent for %s", t.addr, streamIdle)
	case sc.Err() != nil:
		return fmt.Errorf("reading the stream from %s: %w", t.addr, sc.Err())
	}
	//lint:ignore ST1005 Caddy is a name; docs/tail.md quotes this message
	return fmt.Errorf("Caddy at %s ended the stream", t.addr)
}

// apiError reads the admin API's error message: {"error": "..."}.
func apiError(resp *http.Response) string {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var doc struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &doc) == nil && doc.Error != "" {
		return fmt.Sprintf("HTTP %d: %s", resp.StatusCode, doc.Error)
	}
	return fmt.Sprintf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(body))
}

// sseEvent is one Server-Sent Event being read.
type sseEvent struct {
	id, name string
	data     []byte
}

// add takes one line of the stream and reports whether it ended an event.
func (e *sseEvent) add(line []byte) bool {
	if len(line) == 0 {
		return e.name != "" || e.data != nil
	}
	field, value, _ := bytes.Cut(line, []byte(":"))
	value = bytes.TrimPrefix(value, []byte(" "))
	switch string(field) {
	case "id":
		e.id = string(value)
	case "event":
		e.name = string(value)
	case "data":
		if e.data != nil {
			e.data = append(e.data, '\n')
		}
		e.data = append(e.data, value...)
	}
	return false
}

// print writes one record event: the JSON as sent, or a line.
func (t *tailer) print(ev *sseEvent) error {
	var e status.Entry
	if err := json.Unmarshal(ev.data, &e); err != nil {
		return fmt.Errorf("a record the stream sent is not JSON: %w", err)
	}
	if e.Seq != 0 {
		t.after = e.Seq
	}
	var line []byte
	if t.json {
		line = append(ev.data, '\n')
	} else {
		line = appendLine(nil, &e, t.color)
	}
	_, err := t.out.Write(line)
	return err
}

// Colours of the level names, as zap's console encoder has them (Caddy's
// own console logs).
var levelColors = map[string]string{
	"debug":  "\x1b[35m", // magenta
	"info":   "\x1b[34m", // blue
	"warn":   "\x1b[33m", // yellow
	"error":  "\x1b[31m", // red
	"dpanic": "\x1b[1;31m",
	"panic":  "\x1b[1;31m",
	"fatal":  "\x1b[1;31m",
}

// appendLine appends a record as one line: time, level, app:facility,
// host, message, and the logger and door when the line would not show
// them otherwise. Every field is printed with its control characters
// escaped: senders choose them, and a terminal must not take them as
// commands (or a record as two).
func appendLine(b []byte, e *status.Entry, color bool) []byte {
	b = e.Time.Local().AppendFormat(b, "2006-01-02 15:04:05.000")
	b = append(b, ' ')
	level := e.LevelName
	if level == "" {
		level = e.Level
	}
	level = strings.ToUpper(level)
	c := levelColors[e.Level]
	if color && c != "" {
		b = append(b, c...)
	}
	b = appendClean(b, level)
	if color && c != "" {
		b = append(b, "\x1b[0m"...)
	}
	for n := utf8.RuneCountInString(level); n < 8; n++ {
		b = append(b, ' ')
	}
	b = append(b, ' ')
	b = appendClean(b, e.App)
	if e.Facility != "" {
		b = append(b, ':')
		b = appendClean(b, e.Facility)
	}
	b = append(b, ' ')
	if e.Host == "" {
		b = append(b, '-')
	} else {
		b = appendClean(b, e.Host)
	}
	b = append(b, ' ')
	b = appendClean(b, e.Message)
	if e.Logger != "" && e.Logger != e.Facility {
		b = append(b, "  logger="...)
		b = appendClean(b, e.Logger)
	}
	if e.Source != "" && e.Source != "log_ingest" {
		b = append(b, "  via="...)
		b = appendClean(b, e.Source)
	}
	return append(b, '\n')
}

// appendClean appends s with control characters (C0, DEL, C1) escaped as
// Go writes them: \n, \t, \x1b, \u009b.
func appendClean(b []byte, s string) []byte {
	for _, r := range s {
		switch {
		case r == '\n':
			b = append(b, `\n`...)
		case r == '\r':
			b = append(b, `\r`...)
		case r == '\t':
			b = append(b, `\t`...)
		case r < 0x20 || r == 0x7f:
			b = fmt.Appendf(b, `\x%02x`, r)
		case r >= 0x80 && r < 0xa0:
			b = fmt.Appendf(b, `\u%04x`, r)
		default:
			b = utf8.AppendRune(b, r)
		}
	}
	return b
}
