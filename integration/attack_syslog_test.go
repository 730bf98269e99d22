package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// syslogAttacks are the attacks on the syslog receiver's framing and parsing.
var syslogAttacks = []attack{
	{
		Name:    "python_tcp_first_record_embeds_another_apps_message",
		Outcome: "Python's SysLogHandler over TCP (NUL framing) whose first record holds \"\\n<11>1 - - otherapp ...\": 2 sent, 2 received, both shop's, the text inside the first; no otherapp record",
		Run:     attackPythonInjectsApp,
	},
	{
		Name:    "python_tcp_first_record_has_a_line_starting_with_digits",
		Outcome: "Python's SysLogHandler over TCP whose first record holds \"\\n42 rows\": not split, not read as an octet count, the next record kept",
		Run:     attackPythonDigitsLine,
	},
	{
		Name:    "python_tcp_empty_ident_with_framing_nul",
		Outcome: "with `framing nul` (the SysLogHandler recipe), a default empty ident whose first record's text looks like a syslog header and holds a line break is still one record, under the receiver's app",
		Run:     attackPythonFramingNul,
	},
	{
		Name:    "python_udp_default_empty_ident",
		Outcome: "SysLogHandler's default empty ident names no app: the record is kept whole under fallback_app (`syslog`), not refused with advice about HTTP's app parameter",
		Run:     attackPythonEmptyIdent,
	},
	{
		Name:    "unparsable_header_kept_under_fallback_app",
		Outcome: "a message whose RFC 5424 header is malformed, or that has no PRI, is kept whole under the configured fallback_app with a syslog_error attribute, not dropped",
		Run:     attackUnparsableKept,
	},
	{
		Name:    "loggen_legacy_iso_timestamp_without_zone",
		Outcome: "loggen's legacy `<38>2026-12-04T20:22:39 localhost prg00000[1234]: seq: ...` over TCP and UDP: every message accepted as app prg00000, its time read as local time",
		Run:     attackLoggenLegacy,
	},
	{
		Name:    "loggen_rfc5424_octet_counted_datagram",
		Outcome: "loggen's RFC 5424 datagrams `200 <38>1 ...`: accepted when the count is the rest's length; a datagram whose count lies is refused with a log line naming the peer",
		Run:     attackOctetCountedDatagram,
	},
	{
		Name:    "loggen_proxy_v1_header_ending_in_lf",
		Outcome: "a PROXY v1 header ending in LF alone (as loggen -H sends it) from an allowed peer is used: the record's host is the proxied client",
		Run:     attackProxyV1LF,
	},
	{
		Name:    "rsyslog_forwarded_tag_without_colon",
		Outcome: "rsyslog's RSYSLOG_TraditionalForwardFormat and RSYSLOG_ForwardFormat of a message without PROCID (`vm webapp text`): accepted as app webapp, text after the tag",
		Run:     attackRsyslogTagWithoutColon,
	},
}

// syslogAttackCaddyfile is a syslog receiver on TCP and UDP with the
// options in BLOCK; every app is accepted, so that a record injected
// under another app's name would be written and seen.
var syslogAttackCaddyfile = appsCaddyfile(`
		syslog tcp/127.0.0.1:TCPPORT udp/127.0.0.1:UDPPORT {
			BLOCK
		}
		facility shop
		accept_unknown`, `
	handle /status {
		log_status
	}`)

func syslogAttackServer(t *testing.T, block string) (s *server, tcp, udp int) {
	t.Helper()
	tcp, udp = freePort(t), freeUDPPort(t)
	cfg := strings.NewReplacer("TCPPORT", fmt.Sprint(tcp), "UDPPORT", fmt.Sprint(udp), "BLOCK", block).Replace(syslogAttackCaddyfile)
	return startCaddy(t, cfg), tcp, udp
}

// syslogRecords waits for n records of the syslog receiver (entries with
// a syslog_facility attribute; Caddy's own log lines are not counted),
// then a little longer, so that a record too many is seen too.
func syslogRecords(t *testing.T, s *server, n int) []map[string]any {
	t.Helper()
	path := filepath.Join(s.Dir, "apps.log")
	records := func() []map[string]any {
		var out []map[string]any
		for _, l := range readLines(t, path) {
			if attrs, _ := l["attrs"].(map[string]any); attrs != nil && attrs["syslog_facility"] != nil {
				out = append(out, l)
			}
		}
		return out
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(records()) < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	return records()
}

// sendPythonSysLog logs msgs through a stock SysLogHandler with ident
// (Python's default is "") over TCP or UDP, then closes it.
func sendPythonSysLog(t *testing.T, s *server, port int, transport, ident string, msgs ...string) {
	t.Helper()
	const script = `
import json, logging, logging.handlers, socket, sys
port, transport, ident, msgs = int(sys.argv[1]), sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
socktype = socket.SOCK_STREAM if transport == "tcp" else socket.SOCK_DGRAM
h = logging.handlers.SysLogHandler(("127.0.0.1", port), socktype=socktype)
if ident:
    h.ident = ident
log = logging.getLogger("attack")
log.propagate = False
log.setLevel(logging.DEBUG)
log.addHandler(h)
for m in msgs:
    log.warning("%s", m)
h.close()
`
	arg, err := json.Marshal(msgs)
	if err != nil {
		t.Fatal(err)
	}
	if _, stderr := runPython(t, s.Dir, script, fmt.Sprint(port), transport, ident, string(arg)); strings.TrimSpace(stderr) != "" {
		t.Fatalf("python: %s", stderr)
	}
}

// wantRecords checks records against want, in order: app, msg, and
// optionally host.
func wantRecords(t *testing.T, got []map[string]any, want ...[3]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d records received, %d sent: %v", len(got), len(want), got)
	}
	for i, w := range want {
		if got[i]["app"] != w[0] || got[i]["msg"] != w[1] || w[2] != "" && got[i]["host"] != w[2] {
			t.Errorf("record %d: app %v, msg %q, host %v; want app %s, msg %q %s", i+1, got[i]["app"], got[i]["msg"], got[i]["host"], w[0], w[1], w[2])
		}
	}
}

func attackPythonInjectsApp(t *testing.T) {
	s, tcp, _ := syslogAttackServer(t, "")
	first := "order 7 note: \n<11>1 - - otherapp - - - injected"
	sendPythonSysLog(t, s, tcp, "tcp", "shop: ", first, "order 8")
	wantRecords(t, syslogRecords(t, s, 2), [3]string{"shop", first}, [3]string{"shop", "order 8"})
}

func attackPythonDigitsLine(t *testing.T) {
	s, tcp, _ := syslogAttackServer(t, "")
	first := "import done\n42 rows, 3 skipped"
	sendPythonSysLog(t, s, tcp, "tcp", "shop: ", first, "next record")
	wantRecords(t, syslogRecords(t, s, 2), [3]string{"shop", first}, [3]string{"shop", "next record"})
}

func attackPythonFramingNul(t *testing.T) {
	s, tcp, _ := syslogAttackServer(t, "framing nul\n\t\t\tapp shop")
	// The text after the forged header is the message; the receiver's
	// app keeps it shop's.
	sendPythonSysLog(t, s, tcp, "tcp", "", "Dec  4 20:24:01 vm otherapp: forged\n<11>1 - - otherapp - - - injected", "second")
	wantRecords(t, syslogRecords(t, s, 2),
		[3]string{"shop", "forged\n<11>1 - - otherapp - - - injected"}, [3]string{"shop", "second"})
}

func attackPythonEmptyIdent(t *testing.T) {
	s, _, udp := syslogAttackServer(t, "")
	sendPythonSysLog(t, s, udp, "udp", "", "WARNING:root:no ident here", "plain text")
	got := syslogRecords(t, s, 2)
	wantRecords(t, got, [3]string{"syslog", "WARNING:root:no ident here"}, [3]string{"syslog", "plain text"})
	if strings.Contains(s.Output(), "query parameter") {
		t.Errorf("an error about HTTP's app query parameter:\n%s", s.Output())
	}
}

func attackUnparsableKept(t *testing.T) {
	s, tcp, udp := syslogAttackServer(t, "fallback_app unparsed")
	bad5424 := "<13>1 2026-13-45T99:00:00Z vm shop - - - bad timestamp"
	sendRaw(t, "udp", udp, bad5424, "no PRI at all")
	syslogRecords(t, s, 2) // in this order
	sendRaw(t, "tcp", tcp, "<13>1 - vm shop - - [unclosed sd\n")
	got := syslogRecords(t, s, 3)
	wantRecords(t, got,
		[3]string{"unparsed", strings.TrimPrefix(bad5424, "<13>")},
		[3]string{"unparsed", "no PRI at all"},
		[3]string{"unparsed", "1 - vm shop - - [unclosed sd"})
	for _, r := range got {
		if attrs, _ := r["attrs"].(map[string]any); attrs["syslog_error"] == nil {
			t.Errorf("no syslog_error attribute: %v", r)
		}
	}
	// Counted, as the fallback app's records, on the status page.
	var doc struct {
		Stats struct {
			Facilities []struct {
				Name     string
				Accepted int64
			}
		}
	}
	getJSON(t, s.URL("/status?format=json"), &doc)
	for _, f := range doc.Stats.Facilities {
		if f.Name == "unparsed" {
			if f.Accepted != 3 {
				t.Errorf("facility unparsed counted %d accepted records, want 3", f.Accepted)
			}
			return
		}
	}
	t.Errorf("no counters of the fallback app on the status page: %+v", doc.Stats.Facilities)
}

func attackLoggenLegacy(t *testing.T) {
	s, tcp, udp := syslogAttackServer(t, "")
	// What loggen 3.38 sends in its default mode, captured on loopback.
	msg := func(seq int) string {
		return fmt.Sprintf("<38>2026-12-04T20:22:39 localhost prg00000[1234]: seq: %010d, thread: 0000, runid: 1796416580, stamp: 2026-12-04T20:22:39 PADDPADDPADD\n", seq)
	}
	sendRaw(t, "tcp", tcp, msg(0)+msg(1))
	sendRaw(t, "udp", udp, msg(2))
	got := syslogRecords(t, s, 3)
	if len(got) != 3 {
		t.Fatalf("%d of 3 received: %v", len(got), got)
	}
	seen := map[string]bool{}
	for _, r := range got {
		m, _ := r["msg"].(string)
		seen[m] = true
		if r["app"] != "prg00000" || !strings.HasPrefix(m, "seq: ") {
			t.Errorf("record %v", r)
		}
		want := time.Date(2026, 12, 4, 20, 22, 39, 0, time.Local)
		if ts, _ := r["ts"].(json.Number).Float64(); ts != float64(want.Unix()) {
			t.Errorf("time %v, want %s (local time)", r["ts"], want)
		}
	}
	if len(seen) != 3 {
		t.Errorf("duplicates: %v", got)
	}
}

func attackOctetCountedDatagram(t *testing.T) {
	s, _, udp := syslogAttackServer(t, "")
	body := "<38>1 2026-12-04T20:36:20+00:00 localhost shop 1234 - - \xef\xbb\xbfseq: 0000000000 PADDPADD\n"
	sendRaw(t, "udp", udp, fmt.Sprintf("%d %s", len(body), body), fmt.Sprintf("%d %s", len(body)+5, body))
	wantRecords(t, syslogRecords(t, s, 1), [3]string{"shop", "seq: 0000000000 PADDPADD"})
	// The receiver's own log lines go to Caddy's log or, being under
	// applog, to apps.log.
	logs := func() string {
		b, _ := os.ReadFile(filepath.Join(s.Dir, "apps.log"))
		return s.Output() + string(b)
	}
	deadline := time.Now().Add(5 * time.Second)
	lie := fmt.Sprintf("octet count %d, but %d bytes follow it", len(body)+5, len(body))
	for !strings.Contains(logs(), lie) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	for _, line := range strings.Split(logs(), "\n") {
		if strings.Contains(line, lie) && strings.Contains(line, `"peer":"127.0.0.1"`) {
			return
		}
	}
	t.Errorf("no log line about the lying octet count naming the peer:\n%s", logs())
}

func attackProxyV1LF(t *testing.T) {
	s, tcp, _ := syslogAttackServer(t, "proxy_protocol {\n\t\t\t\tallow 127.0.0.1/32\n\t\t\t}")
	sendRaw(t, "tcp", tcp, "PROXY TCP4 192.168.1.64 192.168.1.3 7471 514\n"+
		"<38>1 2026-12-04T20:36:21+00:00 localhost shop 1234 - - \xef\xbb\xbfseq: 1\n")
	wantRecords(t, syslogRecords(t, s, 1), [3]string{"shop", "seq: 1", "192.168.1.64"})
}

func attackRsyslogTagWithoutColon(t *testing.T) {
	s, tcp, udp := syslogAttackServer(t, "")
	// RFC 5424 input without a PROCID, as rsyslog's omfwd forwards it.
	sendRaw(t, "tcp", tcp, "<13>Dec  4 20:24:01 vm webapp via rsyslog traditional\n"+
		"<13>2026-12-04T20:24:01.123456+00:00 vm webapp via rsyslog forward\n")
	sendRaw(t, "udp", udp, "<13>Dec  4 20:24:01 vm webapp via udp")
	got := syslogRecords(t, s, 3)
	if len(got) != 3 {
		t.Fatalf("%d of 3 received: %v", len(got), got)
	}
	want := map[string]bool{"via rsyslog traditional": true, "via rsyslog forward": true, "via udp": true}
	for _, r := range got {
		if r["app"] != "webapp" || !want[r["msg"].(string)] {
			t.Errorf("record %v", r)
		}
		delete(want, r["msg"].(string))
	}
}
