package integration

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fwdShape is one kind of message fed to a forwarding daemon, and the
// app its forwarded copy must be filed under.
type fwdShape struct {
	name string
	// header is what comes before the text: a PRI, a timestamp (now, in
	// the local time zone), a hostname and a program.
	header func(now time.Time) string
	// rfc5424 marks input in RFC 5424 (fed to syslog-ng's syslog()
	// source rather than its network() source).
	rfc5424 bool
	app     string
}

const fwdFallbackApp = "syslog" // the syslog receiver's default fallback_app

// The stamps are written in sentReceivedTZ, the zone the daemons and
// Caddy run in: this process's time.Local was fixed by whichever test
// first used it, before TZ was set.
func bsdStamp(now time.Time) string { return now.In(sentReceivedLoc()).Format(time.Stamp) }
func isoStamp(now time.Time) string {
	return now.In(sentReceivedLoc()).Format("2006-01-02T15:04:05.000000-07:00")
}

func sentReceivedLoc() *time.Location {
	loc, err := time.LoadLocation(sentReceivedTZ)
	if err != nil {
		panic(err) // TestSyslogSentReceived checked the zone exists before sending
	}
	return loc
}
func fwdText(daemon, cell string, seq int) string {
	return fmt.Sprintf("via %s cell=%s seq=%06d ünïcode", daemon, cell, seq)
}

var (
	shape3164PID = fwdShape{name: "3164-pid", app: "webapp",
		header: func(now time.Time) string { return "<13>" + bsdStamp(now) + " vm webapp[123]: " }}
	shape3164 = fwdShape{name: "3164", app: "webapp",
		header: func(now time.Time) string { return "<13>" + bsdStamp(now) + " vm webapp: " }}
	// RFC 5424 without a PROCID: rsyslog forwards it in its BSD
	// templates with a TAG that has no colon, `vm webapp via rsyslog`.
	shape5424NoPROCID = fwdShape{name: "5424-no-procid", rfc5424: true, app: "webapp",
		header: func(now time.Time) string { return "<13>1 " + isoStamp(now) + " vm webapp - - - " }}
	shape5424 = fwdShape{name: "5424-procid-sd", rfc5424: true, app: "webapp",
		header: func(now time.Time) string {
			return "<13>1 " + isoStamp(now) + ` vm webapp 42 ID7 [x@32473 a="b"] `
		}}
	// RFC 5424 with a NILVALUE APP-NAME: no app, so the fallback one.
	shape5424NilApp = fwdShape{name: "5424-nil-app", rfc5424: true, app: fwdFallbackApp,
		header: func(now time.Time) string { return "<13>1 " + isoStamp(now) + " vm - - - - " }}
)

// fwdCell is one template or destination on one transport of a daemon.
type fwdCell struct {
	name   string
	shapes []fwdShape
	// action is the daemon's configuration of the forwarding to Caddy.
	action string
}

// fwdPerShape is how many of each shape a cell forwards.
const fwdPerShape = 20

// fwdFeed sends every cell's messages to a daemon's TCP input on port,
// interleaving cells and pacing them, as UDP forwarding must not burst
// more than the receiver's socket buffer holds (see loggenRateUDP).
// rfc5424Port, when not 0, takes the RFC 5424 shapes, octet-counted; the
// rest go as lines.
func fwdFeed(t *testing.T, daemon string, cells []fwdCell, port, rfc5424Port int) (want int) {
	t.Helper()
	dial := func(p int) net.Conn {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", p), 5*time.Second)
		if err != nil {
			t.Fatalf("feeding %s: %v", daemon, err)
		}
		return c
	}
	lines := dial(port)
	defer lines.Close()
	counted := lines
	if rfc5424Port != 0 {
		counted = dial(rfc5424Port)
		defer counted.Close()
	}
	maxSeq := 0
	for _, c := range cells {
		maxSeq = max(maxSeq, len(c.shapes)*fwdPerShape)
	}
	for seq := range maxSeq {
		for _, c := range cells {
			if seq >= len(c.shapes)*fwdPerShape {
				continue
			}
			sh := c.shapes[seq%len(c.shapes)]
			msg := sh.header(time.Now()) + fwdText(daemon, c.name, seq)
			conn, frame := lines, msg+"\n"
			if sh.rfc5424 && rfc5424Port != 0 {
				conn, frame = counted, fmt.Sprintf("%d %s", len(msg), msg)
			}
			_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := conn.Write([]byte(frame)); err != nil {
				t.Fatalf("feeding %s: %v", daemon, err)
			}
			want++
			// At most a thousand messages a second, a third or less of
			// them forwarded over UDP.
			time.Sleep(time.Millisecond)
		}
	}
	return want
}

var fwdSeq = regexp.MustCompile(`cell=(\S+) seq=(\d{6})`)

// fwdCheck waits for every cell's messages and checks each cell in its
// own subtest: each message arrives once, whole, under its app.
func (sr *sentReceived) fwdCheck(t *testing.T, daemon string, cells []fwdCell, want int, started time.Time, udpDrops int) {
	recs := sr.out.wait(t, want, 30*time.Second)
	if n := udpRcvbufErrors() - udpDrops; n > 0 {
		t.Logf("the kernel dropped %d UDP datagrams for a full receive buffer meanwhile (/proc/net/snmp)", n)
	}
	byCell := map[string][]map[string]any{}
	for _, r := range recs {
		msg, _ := r["msg"].(string)
		m := fwdSeq.FindStringSubmatch(msg)
		if m == nil {
			t.Errorf("a record that names no cell: %v", r)
			continue
		}
		byCell[m[1]] = append(byCell[m[1]], r)
	}
	for _, c := range cells {
		t.Run(c.name, func(t *testing.T) {
			sent := len(c.shapes) * fwdPerShape
			seen := map[int]int{}
			bad := 0
			for _, r := range byCell[c.name] {
				msg, _ := r["msg"].(string)
				m := fwdSeq.FindStringSubmatch(msg)
				seq, _ := strconv.Atoi(m[2])
				seen[seq]++
				problem := ""
				sh := c.shapes[seq%len(c.shapes)]
				switch {
				case seq >= sent:
					problem = "sequence number out of range"
				case r["app"] != sh.app || !loggerOf(r, sh.app):
					problem = fmt.Sprintf("app %v, logger %v, want %s", r["app"], r["logger"], sh.app)
				case r["host"] != "127.0.0.1":
					problem = fmt.Sprintf("host %v", r["host"])
				case !strings.HasSuffix(msg, fwdText(daemon, c.name, seq)):
					problem = "message mangled"
				default:
					if skew := recordSkew(r, started); skew > 10*time.Minute || skew < -10*time.Minute {
						problem = fmt.Sprintf("time %v off the send time", skew)
					}
				}
				if problem != "" {
					if bad++; bad <= 3 {
						t.Errorf("%s (%s): %v", problem, sh.name, r)
					}
				}
			}
			missing := map[string]int{}
			for seq := range sent {
				if seen[seq] == 0 {
					missing[c.shapes[seq%len(c.shapes)].name]++
				}
			}
			dups := 0
			for _, n := range seen {
				dups += n - 1
			}
			logCell(t, daemon+" "+c.action, sent, len(seen), len(byCell[c.name]))
			if len(seen) != sent || dups != 0 || bad != 0 {
				t.Errorf("sent %d, received %d distinct (missing by shape: %v), %d duplicates, %d bad; the receiver's own lines:\n%s",
					sent, len(seen), missing, dups, bad, sr.out.diagnostics())
			}
		})
	}
}

// rsyslog forwards with omfwd in each of its standard templates, over
// UDP, TCP (LF framing, its default, and octet counting) and TLS (the
// gtls driver, checking the receiver's certificate).
func (sr *sentReceived) rsyslog(t *testing.T) {
	r := rsyslogTLS(t)
	transports := []struct{ name, params string }{
		{"udp", fmt.Sprintf(`protocol="udp" port="%d"`, sr.ports.udp)},
		{"tcp", fmt.Sprintf(`protocol="tcp" port="%d"`, sr.ports.tcp)},
		{"tcp-octet-counted", fmt.Sprintf(`protocol="tcp" port="%d" TCP_Framing="octet-counted"`, sr.ports.tcp)},
		{"tls", fmt.Sprintf(`protocol="tcp" port="%d" StreamDriver="gtls" StreamDriverMode="1" StreamDriverAuthMode="x509/name" StreamDriverPermittedPeers="localhost"`, sr.ports.tls)},
	}
	templates := []struct{ name, template string }{
		{"forward", "RSYSLOG_ForwardFormat"},
		{"traditional", "RSYSLOG_TraditionalForwardFormat"},
		{"protocol23", "RSYSLOG_SyslogProtocol23Format"},
	}
	var cells []fwdCell
	var rules strings.Builder
	for _, tr := range transports {
		for _, tm := range templates {
			c := fwdCell{
				name:   tr.name + "-" + tm.name,
				shapes: []fwdShape{shape3164PID, shape3164, shape5424NoPROCID, shape5424, shape5424NilApp},
				action: fmt.Sprintf(`action(type="omfwd" target="127.0.0.1" %s template=%q)`, tr.params, tm.template),
			}
			cells = append(cells, c)
			fmt.Fprintf(&rules, "\tif $msg contains \"cell=%s \" then {\n\t\t%s\n\t}\n", c.name, c.action)
		}
	}
	dir := t.TempDir()
	d := &syslogDaemon{name: "rsyslog", tcpPort: freePort(t)}
	// imtcp's input has a ruleset of its own: rsyslog's own messages go
	// to the default ruleset, which forwards nothing.
	conf := fmt.Sprintf(`global(workDirectory=%q maxMessageSize="64k" defaultNetstreamDriverCAFile=%q)
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="%d" ruleset="forward")
ruleset(name="forward") {
%s}
`, dir, sr.pki.CA, d.tcpPort, rules.String())
	keepDaemon(t)(r.Start(context.Background(), dir, conf, d.tcpPort))
	started, udpDrops := time.Now(), udpRcvbufErrors()
	want := fwdFeed(t, "rsyslog", cells, d.tcpPort, 0)
	sr.fwdCheck(t, "rsyslog", cells, want, started, udpDrops)
}

// syslogNG forwards with network() destinations (its BSD format, LF
// framed on streams) and syslog() destinations (RFC 5424, octet-counted
// on streams), over UDP, TCP and TLS, with default flags.
func (sr *sentReceived) syslogNG(t *testing.T) {
	tlsOpts := fmt.Sprintf(`tls(ca-file(%q) peer-verify(required-trusted))`, sr.pki.CA)
	// network()'s BSD format has no NILVALUE: a message without a
	// program goes as `HOST TEXT`, whose first word any reader (rsyslog,
	// syslog-ng too) takes for the TAG, so that shape is left to syslog().
	bsd := []fwdShape{shape3164PID, shape3164, shape5424NoPROCID, shape5424}
	all := append(bsd[:len(bsd):len(bsd)], shape5424NilApp)
	var cells []fwdCell
	for _, driver := range []string{"network", "syslog"} {
		for _, tr := range []struct {
			name, opts string
			port       int
		}{{"udp", "", sr.ports.udp}, {"tcp", "", sr.ports.tcp}, {"tls", " " + tlsOpts, sr.ports.tls}} {
			c := fwdCell{name: driver + "-" + tr.name, shapes: all}
			if driver == "network" {
				c.shapes = bsd
			}
			// persist-name: destinations to one address must be told apart.
			c.action = fmt.Sprintf(`%s("127.0.0.1" port(%d) transport(%q) persist-name(%q)%s)`, driver, tr.port, tr.name, c.name, tr.opts)
			cells = append(cells, c)
		}
	}
	dir := t.TempDir()
	d := &syslogDaemon{name: "syslog-ng", tcpPort: freePort(t), udpPort: freePort(t)} // udpPort: the RFC 5424 input, on TCP
	var conf strings.Builder
	fmt.Fprintf(&conf, `@version: 3.38
options { log-msg-size(65536); };
source s_bsd { network(ip("127.0.0.1") port(%d) transport("tcp")); };
source s_rfc5424 { syslog(ip("127.0.0.1") port(%d) transport("tcp")); };
`, d.tcpPort, d.udpPort)
	for i, c := range cells {
		fmt.Fprintf(&conf, "filter f_%d { message(\"cell=%s \" type(string) flags(substring)); };\n", i, c.name)
		fmt.Fprintf(&conf, "destination d_%d { %s; };\n", i, c.action)
		fmt.Fprintf(&conf, "log { source(s_bsd); source(s_rfc5424); filter(f_%d); destination(d_%d); };\n", i, i)
	}
	keepDaemon(t)(syslogNG(t).Start(context.Background(), dir, conf.String(), []int{d.tcpPort, d.udpPort}, "-e"))
	started, udpDrops := time.Now(), udpRcvbufErrors()
	want := fwdFeed(t, "syslog-ng", cells, d.tcpPort, d.udpPort)
	sr.fwdCheck(t, "syslog-ng", cells, want, started, udpDrops)
}
