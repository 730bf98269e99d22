package integration

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const relBadCaddyfile = `{
	admin 127.0.0.1:{{.AdminPort}}
	servers {
		timeouts {
			read_header 2s
			read_body 2s
		}
	}
	applog {
		syslog tcp/127.0.0.1:STCP {
			fallback_app bad
			max_message_size 256KiB
			max_connections 8
			read_timeout 1s
		}
		syslog udp/127.0.0.1:SUDP {
			fallback_app bad
			max_message_size 8KiB
		}
		python_socket tcp/127.0.0.1:PTCP {
			app bad
			max_message_size 256KiB
			max_connections 8
			read_timeout 1s
		}
		python_socket udp/127.0.0.1:PUDP {
			app bad
			max_message_size 8KiB
		}
		facility bad
	}
	log bad {
		include applog.bad
		output file {{.Dir}}/bad.log
		level DEBUG
		format json
	}
}

http://127.0.0.1:{{.HTTPPort}} {
	bind 127.0.0.1
	handle /_applog/bad {
		log_ingest bad {
			max_body_size 1MiB
		}
	}
}
`

// The bad clients send from 127.0.0.2, the good ones from 127.0.0.1, so
// a log line naming the peer is known to be about the bad one.
const relBadPeer = "127.0.0.2"

// Minimal pickle (protocol 2) writing, for records Python would never
// send. A record is EMPTY_DICT MARK key value ... SETITEMS STOP.
func pkStr(s string) []byte {
	b := []byte{'X', 0, 0, 0, 0}
	binary.LittleEndian.PutUint32(b[1:], uint32(len(s)))
	return append(b, s...)
}

func pkInt(n int32) []byte {
	b := []byte{'J', 0, 0, 0, 0}
	binary.LittleEndian.PutUint32(b[1:], uint32(n))
	return b
}

// pkRecord pickles a dict of name, msg, levelno, levelname and the extra
// pairs (raw opcodes for keys and values).
func pkRecord(msg string, extra ...[]byte) []byte {
	b := []byte{0x80, 2, '}', '('}
	for _, kv := range [][]byte{pkStr("name"), pkStr("bad.pickle"), pkStr("msg"), pkStr(msg),
		pkStr("levelno"), pkInt(30), pkStr("levelname"), pkStr("WARNING")} {
		b = append(b, kv...)
	}
	for _, kv := range extra {
		b = append(b, kv...)
	}
	return append(b, 'u', '.')
}

// pkFrame puts SocketHandler's 4-byte big-endian length in front.
func pkFrame(pickle []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(pickle))), pickle...)
}

func relSyslog(app, msg string) string {
	return fmt.Sprintf("<12>1 2026-11-21T10:00:00Z badhost %s - - - %s", app, msg)
}

func octet(m string) []byte { return fmt.Appendf(nil, "%d %s", len(m), m) }

// relBadCase is one hostile input for one receiver. send does the
// damage; for HTTP it returns the response (or an error). Exactly one of
// these says what must follow: status (HTTP: this status and a one-line
// reason), log (a line of Caddy's log containing it and naming the bad
// peer), accept (the record whose msg contains this marker is written,
// as valid JSON).
type relBadCase struct {
	name   string
	door   string // http, syslog/tcp, syslog/udp, pysocket/tcp, pysocket/udp
	send   func(t *testing.T, addr string) (status int, body string)
	status int
	log    string
	accept string
	check  func(t *testing.T, entry map[string]any) // for accepted records
}

func relDial(t *testing.T, network, addr string) net.Conn {
	t.Helper()
	c, err := dialNetFrom(network, relBadPeer, addr)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// relSendStream writes b (then closes, unless hold) and waits up to 5s
// for the server to close the connection.
func relSendStream(t *testing.T, addr string, b []byte) {
	t.Helper()
	c := relDial(t, "tcp", addr)
	defer c.Close()
	_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(b); err != nil {
		t.Logf("write: %v (the server may have closed first)", err)
	}
	c.(*net.TCPConn).CloseWrite()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.Copy(io.Discard, c)
}

func relSendDatagram(t *testing.T, addr string, b []byte) {
	t.Helper()
	c := relDial(t, "udp", addr)
	defer c.Close()
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
}

// relSlowloris sends b one byte a second on a stream and returns how long
// the server took to close the connection (bounded at 10s).
func relSlowloris(t *testing.T, addr string, b []byte) time.Duration {
	t.Helper()
	c := relDial(t, "tcp", addr)
	defer c.Close()
	start := time.Now()
	closed := make(chan struct{})
	go func() {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, _ = io.Copy(io.Discard, c)
		close(closed)
	}()
	for _, ch := range b {
		select {
		case <-closed:
			return time.Since(start)
		case <-time.After(time.Second):
		}
		if _, err := c.Write([]byte{ch}); err != nil {
			break
		}
	}
	<-closed
	return time.Since(start)
}

// relFlood opens n connections from the bad peer, holds them a moment,
// and returns how many the server closed at once.
func relFlood(t *testing.T, addr string, n int) int {
	t.Helper()
	var conns []net.Conn
	for range n {
		conns = append(conns, relDial(t, "tcp", addr))
	}
	time.Sleep(300 * time.Millisecond)
	closed := 0
	for _, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); err == io.EOF {
			closed++
		}
		c.Close()
	}
	return closed
}

func relHTTPBad(t *testing.T, url, contentType string, body []byte) (int, string) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(relBadPeer)}}
	c := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
	resp, err := c.Post(url, contentType, bytes.NewReader(body))
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func relBadCases(httpURL string) []relBadCase {
	deepJSON := `{"msg":"deep","x":` + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + "}\n"
	digits400 := strings.Repeat("9", 400)
	var fields10k bytes.Buffer
	fields10k.WriteString(`{"msg":"wide"`)
	for i := range 10000 {
		fmt.Fprintf(&fields10k, `,"f%d":%d`, i, i)
	}
	fields10k.WriteString("}\n")
	var form10k strings.Builder
	form10k.WriteString("name=bad.form&msg=wide&levelno=30&levelname=WARNING")
	for i := range 10000 {
		fmt.Fprintf(&form10k, "&f%d=%d", i, i)
	}
	deepPickle := func(n int) []byte {
		return pkRecord("deep", pkStr("x"), bytes.Repeat([]byte{'('}, n), bytes.Repeat([]byte{'l'}, n))
	}
	widePickle := func(msg string, n int) []byte {
		var kv []byte
		for i := range n {
			kv = append(append(kv, pkStr(fmt.Sprintf("f%d", i))...), pkInt(int32(i))...)
		}
		return pkRecord(msg, kv)
	}
	sd := func(n int) string {
		var b strings.Builder
		b.WriteString("[x@1")
		for i := range n {
			fmt.Fprintf(&b, ` p%d="v"`, i)
		}
		b.WriteString("]")
		return b.String()
	}
	httpCase := func(name, ct string, body []byte, status int) relBadCase {
		return relBadCase{name: name, door: "http", status: status, send: func(t *testing.T, _ string) (int, string) {
			return relHTTPBad(t, httpURL, ct, body)
		}}
	}
	stream := func(name, door string, b []byte, log string) relBadCase {
		return relBadCase{name: name, door: door, log: log, send: func(t *testing.T, addr string) (int, string) {
			relSendStream(t, addr, b)
			return 0, ""
		}}
	}
	datagram := func(name, door string, b []byte, log string) relBadCase {
		return relBadCase{name: name, door: door, log: log, send: func(t *testing.T, addr string) (int, string) {
			relSendDatagram(t, addr, b)
			return 0, ""
		}}
	}
	accepted := func(c relBadCase, marker string, check func(t *testing.T, e map[string]any)) relBadCase {
		c.log, c.accept, c.check = "", marker, check
		return c
	}
	hasReplacement := func(t *testing.T, e map[string]any) {
		if m, _ := e["msg"].(string); !strings.Contains(m, "\uFFFD") {
			t.Errorf("invalid UTF-8 should become U+FFFD in the entry: %q", m)
		}
	}
	// Numbers beyond float64 are kept exactly as sent (valid JSON, read
	// with json.Decoder.UseNumber), never turned into Inf or rounded.
	keptExact := func(kv ...string) func(t *testing.T, e map[string]any) {
		return func(t *testing.T, e map[string]any) {
			attrs, _ := e["attrs"].(map[string]any)
			for i := 0; i < len(kv); i += 2 {
				if got := fmt.Sprint(attrs[kv[i]]); got != kv[i+1] {
					t.Errorf("attrs.%s = %.60s, want %.60s... exactly", kv[i], got, kv[i+1])
				}
			}
		}
	}
	slow := func(name, door string, b []byte) relBadCase {
		return relBadCase{name: name, door: door, log: "closing connection", send: func(t *testing.T, addr string) (int, string) {
			took := relSlowloris(t, addr, b)
			if took > 5*time.Second {
				t.Errorf("a client sending a byte a second held the connection %v; read_timeout is 1s", took)
			}
			return 0, ""
		}}
	}
	flood := func(name, door string) relBadCase {
		return relBadCase{name: name, door: door, log: "too many connections", send: func(t *testing.T, addr string) (int, string) {
			// The good client holds one of the 8; 12 more leave 5 over.
			if closed := relFlood(t, addr, 12); closed < 5 {
				t.Errorf("max_connections 8: %d of 12 new connections closed at once, want at least 5", closed)
			}
			return 0, ""
		}}
	}

	return []relBadCase{
		// log_ingest over HTTP.
		httpCase("truncated", "application/x-ndjson", []byte(`{"msg":"trunc","level":"info"`), 400),
		{name: "truncated_body", door: "http", log: "rejected log records", send: func(t *testing.T, addr string) (int, string) {
			c := relDial(t, "tcp", addr)
			defer c.Close()
			fmt.Fprintf(c, "POST /_applog/bad HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-ndjson\r\nContent-Length: 1000\r\n\r\n{\"msg\":", addr)
			c.(*net.TCPConn).CloseWrite()
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, _ = io.Copy(io.Discard, c)
			return 0, ""
		}},
		httpCase("oversize", "application/x-ndjson", bytes.Repeat([]byte(`{"msg":"big"}`+"\n"), 2<<20/14), 413),
		accepted(httpCase("invalid_utf8", "application/x-ndjson", []byte("{\"msg\":\"utf8 \xff\xfe MARK-H1\"}\n"), 200), "MARK-H1", hasReplacement),
		httpCase("deep_nesting", "application/x-ndjson", []byte(deepJSON), 400),
		accepted(httpCase("huge_numbers", "application/x-ndjson", []byte(`{"msg":"MARK-H2","n":1e400,"m":`+digits400+`,"created":1e400}`+"\n"), 200), "MARK-H2", keptExact("n", "1e400", "m", digits400)),
		httpCase("many_fields", "application/x-ndjson", fields10k.Bytes(), 400),
		httpCase("many_fields_form", "application/x-www-form-urlencoded", []byte(form10k.String()), 400),
		{name: "slowloris", door: "http", status: 408, send: func(t *testing.T, addr string) (int, string) {
			c := relDial(t, "tcp", addr)
			defer c.Close()
			fmt.Fprintf(c, "POST /_applog/bad HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-ndjson\r\nContent-Length: 100\r\n\r\n", addr)
			start := time.Now()
			got := make(chan []byte, 1)
			go func() {
				_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
				b, _ := io.ReadAll(c)
				got <- b
			}()
			for i := 0; ; i++ {
				select {
				case b := <-got:
					if took := time.Since(start); took > 5*time.Second {
						t.Errorf("a body sent a byte a second held the request %v; read_body is 2s", took)
					}
					resp := string(b)
					status := 0
					fmt.Sscanf(resp, "HTTP/1.1 %d", &status)
					_, body, _ := strings.Cut(resp, "\r\n\r\n")
					return status, body
				case <-time.After(time.Second):
					_, _ = c.Write([]byte("{"[:1]))
				}
			}
		}},
		{name: "flood", door: "http", send: func(t *testing.T, addr string) (int, string) {
			// No limit on HTTP connections: idle ones must be closed
			// after read_header (2s), and meanwhile others are served.
			var conns []net.Conn
			for range 200 {
				conns = append(conns, relDial(t, "tcp", addr))
			}
			start := time.Now()
			open := 0
			for _, c := range conns {
				_ = c.SetReadDeadline(start.Add(6 * time.Second))
				if _, err := c.Read(make([]byte, 1)); err != io.EOF {
					open++
				}
				c.Close()
			}
			if open > 0 || time.Since(start) > 6*time.Second {
				t.Errorf("%d of 200 idle connections still open after %v; read_header is 2s", open, time.Since(start))
			}
			return 0, ""
		}},

		// syslog over TCP.
		stream("truncated", "syslog/tcp", []byte("200 <12>1 2026-11-21T10:00:00Z h bad.x - - - cut"), "closing connection"),
		stream("oversize", "syslog/tcp", []byte("300000 <12>1 "), "closing connection"),
		stream("oversize_delimited", "syslog/tcp", append([]byte("<12>1 "), bytes.Repeat([]byte("x"), 300000)...), "closing connection"),
		accepted(stream("invalid_utf8", "syslog/tcp", octet(relSyslog("bad.x", "utf8 \xff\xfe MARK-S1")), ""), "MARK-S1", hasReplacement),
		accepted(stream("deep_nesting", "syslog/tcp", octet(relSyslog("bad.x", "MARK-S2 "+strings.Repeat("[", 100000))), ""), "MARK-S2", nil),
		// A message that does not parse is kept whole under fallback_app.
		accepted(stream("huge_numbers", "syslog/tcp", []byte("<"+digits400+">1 2026-11-21T10:00:00Z h bad.x - - - huge MARK-S4\n"), ""), "MARK-S4", nil),
		stream("huge_octet_count", "syslog/tcp", []byte(digits400+" <12>1 2026-11-21T10:00:00Z h bad.x - - - huge\n"), "closing connection"),
		accepted(stream("many_fields", "syslog/tcp", octet("<12>1 2026-11-21T10:00:00Z h bad.x - - "+sd(10000)+" MARK-S3"), ""), "MARK-S3", nil),
		slow("slowloris", "syslog/tcp", octet(relSyslog("bad.x", "slow"))),
		flood("flood", "syslog/tcp"),

		// syslog over UDP: no connections, so no slowloris or flood.
		accepted(datagram("truncated", "syslog/udp", []byte("<1 MARK-U4"), ""), "MARK-U4", nil),
		datagram("oversize", "syslog/udp", append([]byte("<12>1 "), bytes.Repeat([]byte("x"), 9000)...), "dropping datagram"),
		accepted(datagram("invalid_utf8", "syslog/udp", []byte(relSyslog("bad.x", "utf8 \xff\xfe MARK-U1")), ""), "MARK-U1", hasReplacement),
		accepted(datagram("deep_nesting", "syslog/udp", []byte(relSyslog("bad.x", "MARK-U2 "+strings.Repeat("[", 8000))), ""), "MARK-U2", nil),
		accepted(datagram("huge_numbers", "syslog/udp", []byte("<"+digits400+">1 2026-11-21T10:00:00Z h bad.x - - - huge MARK-U5"), ""), "MARK-U5", nil),
		accepted(datagram("many_fields", "syslog/udp", []byte("<12>1 2026-11-21T10:00:00Z h bad.x - - "+sd(800)+" MARK-U3"), ""), "MARK-U3", nil),

		// python_socket over TCP.
		stream("truncated", "pysocket/tcp", pkFrame(pkRecord("cut"))[:20], "closing connection"),
		stream("oversize", "pysocket/tcp", binary.BigEndian.AppendUint32(nil, 300000), "closing connection"),
		accepted(stream("invalid_utf8", "pysocket/tcp", pkFrame(pkRecord("utf8 \xff\xfe MARK-P1")), ""), "MARK-P1", hasReplacement),
		stream("deep_nesting", "pysocket/tcp", pkFrame(deepPickle(100000)), "rejected message"),
		accepted(stream("huge_numbers", "pysocket/tcp", pkFrame(pkRecord("MARK-P2", pkStr("n"), []byte("L"+digits400+"L\n"))), ""), "MARK-P2", keptExact("n", digits400)),
		stream("huge_float", "pysocket/tcp", pkFrame(pkRecord("huge", pkStr("created"), []byte("F1e400\n"))), "rejected message"),
		stream("many_fields", "pysocket/tcp", pkFrame(widePickle("wide", 10000)), "rejected message"),
		slow("slowloris", "pysocket/tcp", pkFrame(pkRecord("slow"))),
		flood("flood", "pysocket/tcp"),

		// python_socket over UDP (DatagramHandler).
		datagram("truncated", "pysocket/udp", pkFrame(pkRecord("cut"))[:20], "dropping datagram"),
		datagram("oversize", "pysocket/udp", pkFrame(pkRecord(strings.Repeat("x", 9000))), "dropping datagram"),
		accepted(datagram("invalid_utf8", "pysocket/udp", pkFrame(pkRecord("utf8 \xff\xfe MARK-Q1")), ""), "MARK-Q1", hasReplacement),
		datagram("deep_nesting", "pysocket/udp", pkFrame(deepPickle(3000)), "rejected message"),
		accepted(datagram("huge_numbers", "pysocket/udp", pkFrame(pkRecord("MARK-Q2", pkStr("n"), []byte("L"+digits400+"L\n"))), ""), "MARK-Q2", keptExact("n", digits400)),
		accepted(datagram("many_fields", "pysocket/udp", pkFrame(widePickle("MARK-Q3", 400)), ""), "MARK-Q3", nil),
	}
}

// relGood is a well-behaved client of one door, sending a record every
// 20ms until stopped; every record it sent without error must arrive.
type relGood struct {
	sent []string
	errs []string
}

func relRunGood(t *testing.T, door, addr, httpURL string, pickleTmpl []byte, seq *int, stop <-chan struct{}) *relGood {
	g := &relGood{}
	var conn net.Conn
	defer func() {
		if conn != nil {
			if tc, ok := conn.(*net.TCPConn); ok {
				tc.CloseWrite()
				_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
				_, _ = io.Copy(io.Discard, conn)
			}
			conn.Close()
		}
	}()
	client := relHTTPClient()
	for {
		*seq++
		msg := fmt.Sprintf("rel c3 %08d", *seq) // the pickle template's form
		var err error
		switch door {
		case "http":
			var st int
			var body string
			func() {
				resp, e := client.Post(httpURL, "application/x-ndjson", strings.NewReader(fmt.Sprintf(`{"msg":%q,"level":"info"}`+"\n", msg)))
				if e != nil {
					err = e
					return
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				st, body = resp.StatusCode, string(b)
			}()
			if err == nil && st != 200 {
				err = fmt.Errorf("%d %s", st, body)
			}
		default:
			if conn == nil {
				network := "tcp"
				if strings.HasSuffix(door, "udp") {
					network = "udp"
				}
				conn, err = net.Dial(network, addr)
				if err != nil {
					break
				}
			}
			var frame []byte
			switch door {
			case "syslog/tcp":
				frame = octet(relSyslog("bad.good", msg))
			case "syslog/udp":
				frame = []byte(relSyslog("bad.good", msg))
			default:
				frame = relFill(pickleTmpl, *seq)
			}
			_ = conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
			_, err = conn.Write(frame)
		}
		if err != nil {
			g.errs = append(g.errs, err.Error())
		} else {
			g.sent = append(g.sent, msg)
		}
		select {
		case <-stop:
			return g
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestReliabilityBadInput runs every hostile input of relBadCases against
// its receiver, while a good client of the same receiver keeps sending.
func TestReliabilityBadInput(t *testing.T) {
	ports := map[string]int{"syslog/tcp": freePort(t), "syslog/udp": freeUDPPort(t), "pysocket/tcp": freePort(t), "pysocket/udp": freeUDPPort(t)}
	cfg := strings.NewReplacer("STCP", fmt.Sprint(ports["syslog/tcp"]), "SUDP", fmt.Sprint(ports["syslog/udp"]),
		"PTCP", fmt.Sprint(ports["pysocket/tcp"]), "PUDP", fmt.Sprint(ports["pysocket/udp"])).Replace(relBadCaddyfile)
	s := startCaddy(t, cfg)
	_, pickleTmpl := relMakeTemplates(t, s.Dir)
	httpURL := s.URL("/_applog/bad")
	logPath := filepath.Join(s.Dir, "bad.log")
	seq := 0
	badSeen := map[string]bool{} // reported by the case that wrote it
	lastUDP := map[string]time.Time{}
	for _, tc := range relBadCases(httpURL) {
		t.Run(strings.ReplaceAll(tc.door, "/", "_")+"/"+tc.name, func(t *testing.T) {
			addr := fmt.Sprintf("127.0.0.1:%d", ports[tc.door])
			if tc.door == "http" {
				addr = fmt.Sprintf("127.0.0.1:%d", s.HTTPPort)
			}
			// A receiver logs bad input at most once a second per
			// connection, and a UDP listener is one "connection".
			if strings.HasSuffix(tc.door, "udp") {
				time.Sleep(time.Until(lastUDP[tc.door].Add(1100 * time.Millisecond)))
				defer func() { lastUDP[tc.door] = time.Now() }()
			}
			began := time.Now()
			logFrom := len(s.Output())
			stop := make(chan struct{})
			goodDone := make(chan *relGood, 1)
			go func() { goodDone <- relRunGood(t, tc.door, addr, httpURL, pickleTmpl, &seq, stop) }()
			time.Sleep(100 * time.Millisecond) // the good client connects first

			status, body := tc.send(t, addr)
			if tc.status != 0 {
				if status != tc.status {
					t.Errorf("status %d, want %d: %.300s", status, tc.status, body)
				}
				if reason := strings.TrimSuffix(body, "\n"); reason == "" || strings.Contains(reason, "\n") {
					t.Errorf("want a one-line reason, got %q", body)
				} else {
					t.Logf("%d %.200s", status, reason)
				}
			}
			if tc.log != "" {
				var line string
				for deadline := time.Now().Add(5 * time.Second); line == "" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
					for _, l := range strings.Split(s.Output()[logFrom:], "\n") {
						if strings.Contains(l, tc.log) && strings.Contains(l, `"peer":"`+relBadPeer) {
							line = l
							break
						}
					}
				}
				if line == "" {
					t.Errorf("no log line with %q naming peer %s:\n%s", tc.log, relBadPeer, s.Output()[logFrom:])
				} else {
					t.Logf("logged: %.300s", line)
				}
			}
			time.Sleep(200 * time.Millisecond)
			close(stop)
			good := <-goodDone

			select {
			case <-s.d.Done():
				t.Fatalf("caddy exited:\n%s", s.Output())
			default:
			}
			if len(good.errs) > 0 {
				t.Errorf("the good client failed %d times, first: %s", len(good.errs), good.errs[0])
			}
			// Everything the good client sent arrives, and the accepted
			// hostile record with it.
			var entries []map[string]any
			var bad []string
			missing := good.sent
			var accepted map[string]any
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
				entries, bad = relReadEntries(t, logPath, badSeen)
				have := map[string]bool{}
				accepted = nil
				for _, e := range entries {
					m, _ := e["msg"].(string)
					have[m] = true
					if tc.accept != "" && strings.Contains(m, tc.accept) {
						accepted = e
					}
				}
				missing = missing[:0:0]
				for _, m := range good.sent {
					if !have[m] {
						missing = append(missing, m)
					}
				}
				if (len(missing) == 0 && (tc.accept == "" || accepted != nil)) || time.Now().After(deadline) {
					break
				}
			}
			for _, b := range bad {
				t.Errorf("Caddy wrote a line that is not JSON (for Go's encoding/json): %.400s", b)
				badSeen[b] = true
			}
			if len(missing) > 0 {
				t.Errorf("%d of %d records of the good client missing, first %s", len(missing), len(good.sent), missing[0])
			}
			if tc.accept != "" {
				if accepted == nil {
					t.Errorf("the record marked %s was not written", tc.accept)
				} else if tc.check != nil {
					tc.check(t, accepted)
				}
			}
			t.Logf("good client: %d records through; case took %v", len(good.sent), time.Since(began).Round(time.Millisecond))
		})
	}
}

// relReadEntries reads the JSON lines of path, and returns apart the
// lines that are not JSON and not in seen (an entry Caddy writes must
// be valid JSON).
func relReadEntries(t *testing.T, path string, seen map[string]bool) (entries []map[string]any, bad []string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		t.Fatal(err)
	}
	for _, line := range bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			if b := fmt.Sprintf("%v: %s", err, line); !seen[b] {
				bad = append(bad, b)
			}
			continue
		}
		entries = append(entries, m)
	}
	return entries, bad
}
