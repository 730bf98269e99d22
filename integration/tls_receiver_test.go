package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tlsReceiverCaddyfile is a Caddy whose applog `syslog` receiver listens
// on tls/, writing every record of apps `shop` and `audit` to
// received.log. Its certificate settings are added by tlsStartReceiver.
const tlsReceiverCaddyfile = `{
	admin 127.0.0.1:{{.AdminPort}}
	applog {
		syslog tls/127.0.0.1:RPORT
		facility shop
		facility audit
	}
	log received {
		include applog.shop applog.audit
		output file {{.Dir}}/received.log
		level DEBUG
		format json
	}
}

http://127.0.0.1:{{.HTTPPort}} {
	bind 127.0.0.1
	respond "ok"
}
`

// tlsReceiverTLSBlock is the documented Caddyfile form of the receiver's
// certificate settings.
const tlsReceiverTLSBlock = `syslog tls/127.0.0.1:RPORT {
			tls {
				certificate SERVERCERT SERVERKEY
				client_ca CLIENTCA
			}
		}`

// tlsStartReceiver starts a Caddy with a `syslog tls/` receiver on port
// that requires client certificates signed by clientCA.
//
// The receiver's `tls { certificate ...; client_ca ... }` Caddyfile block
// does not parse (TestTLSReceiverCaddyfileSyntax), so the settings are
// put into the adapted JSON instead: Caddy starts without the receiver,
// then the config with it is loaded through the admin API.
func tlsStartReceiver(t *testing.T, p *tlsPKI, port int, clientCA string) *server {
	t.Helper()
	full := strings.ReplaceAll(tlsReceiverCaddyfile, "RPORT", fmt.Sprint(port))
	s := startCaddy(t, strings.Replace(full, "syslog tls/127.0.0.1:"+fmt.Sprint(port)+"\n", "", 1))
	cfg := tlsAdapt(t, s, full)
	apps := cfg["apps"].(map[string]any)
	applog := apps["applog"].(map[string]any)
	for _, r := range applog["receivers"].([]any) {
		r.(map[string]any)["tls"] = map[string]any{"certificate": p.ServerCert, "key": p.ServerKey, "client_ca": clientCA}
	}
	tlsLoadJSON(t, s, cfg)
	return s
}

// tlsAdapt adapts a Caddyfile (a template like startCaddy's) to JSON
// through the admin API's /adapt.
func tlsAdapt(t *testing.T, s *server, caddyfile string) map[string]any {
	t.Helper()
	resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/adapt", s.AdminPort), "text/caddyfile", bytes.NewReader(s.render(caddyfile)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("adapt: %s: %s", resp.Status, body)
	}
	var out struct {
		Result map[string]any `json:"result"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("adapt: %v: %s", err, body)
	}
	return out.Result
}

// tlsLoadJSON loads a JSON config through the admin API's /load and
// waits until every listener of it is up.
func tlsLoadJSON(t *testing.T, s *server, cfg map[string]any) {
	t.Helper()
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/load", s.AdminPort), "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("load: %s: %s", resp.Status, body)
	}
	s.waitListeners(t)
}

// TestTLSReceiverCaddyfileSyntax adapts the receiver's `tls` block as the
// README documents it.
func TestTLSReceiverCaddyfileSyntax(t *testing.T) {
	s := startCaddy(t, "{\n\tadmin 127.0.0.1:{{.AdminPort}}\n}\nhttp://127.0.0.1:{{.HTTPPort}} {\n\tbind 127.0.0.1\n\trespond ok\n}\n")
	full := strings.Replace(tlsReceiverCaddyfile, "syslog tls/127.0.0.1:RPORT", tlsReceiverTLSBlock, 1)
	full = strings.NewReplacer("RPORT", "6514", "SERVERCERT", "/etc/applog/server.pem", "SERVERKEY", "/etc/applog/server-key.pem",
		"CLIENTCA", "/etc/applog/ca.pem").Replace(full)
	resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/adapt", s.AdminPort), "text/caddyfile", bytes.NewReader(s.render(full)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	want := `"tls":{"certificate":"/etc/applog/server.pem","client_ca":"/etc/applog/ca.pem","key":"/etc/applog/server-key.pem"}`
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(want)) {
		t.Fatalf("adapting the documented receiver tls block: %s:\n%s\nwant it to contain %s", resp.Status, body, want)
	}
}

// tlsSyslogSenderCaddyfile relays app `shop` as syslog over TLS: the
// `tls` writer with `format syslog` and a client certificate.
const tlsSyslogSenderCaddyfile = `{
	admin 127.0.0.1:{{.AdminPort}}
	applog {
		facility shop
	}
	log relay {
		include applog.shop
		level DEBUG
		output tls 127.0.0.1:RPORT {
			ca CAFILE
			client_cert CLIENTCERT CLIENTKEY
			server_name localhost
		}
		format syslog {
			facility local3
		}
	}
}

http://127.0.0.1:{{.HTTPPort}} {
	bind 127.0.0.1
	log_ingest /_applog shop
}
`

// TestTLSReceiverFromSyslogOverTLS relays records from one Caddy's tls
// writer with format syslog (RFC 5425, mutual TLS) to another Caddy's
// `syslog tls/` receiver and checks each record exactly: message, app,
// syslog facility and severity, level.
func TestTLSReceiverFromSyslogOverTLS(t *testing.T) {
	p := tlsNewPKI(t)
	rport := freePort(t)
	r := tlsStartReceiver(t, p, rport, p.CA)
	cfg := strings.NewReplacer("RPORT", fmt.Sprint(rport), "CAFILE", p.CA,
		"CLIENTCERT", p.ClientCert, "CLIENTKEY", p.ClientKey).Replace(tlsSyslogSenderCaddyfile)
	s := startCaddy(t, cfg)

	// levels posted, with the syslog severity and the receiver's zap
	// level each must come back as.
	levels := []struct{ level, severity, zap string }{
		{"debug", "debug", "debug"}, {"info", "info", "info"}, {"notice", "notice", "info"},
		{"warning", "warning", "warn"}, {"error", "err", "error"}, {"critical", "crit", "dpanic"},
		{"alert", "alert", "panic"}, {"emerg", "emerg", "fatal"},
	}
	const perLevel = 3
	want := map[string]string{} // message -> level
	var body strings.Builder
	for i := range perLevel {
		for _, l := range levels {
			msg := fmt.Sprintf("%s tls relay %d: \"quoted\", ünïcode, tab\there", l.level, i)
			want[msg] = l.level
			b, _ := json.Marshal(map[string]string{"msg": msg, "level": l.level, "logger": "cart"})
			body.Write(b)
			body.WriteByte('\n')
		}
	}
	if code, resp := post(t, s.URL("/_applog"), "application/x-ndjson", []byte(body.String()), nil); code != 200 {
		t.Fatalf("post: %d %s", code, resp)
	}
	lines := waitLines(t, filepath.Join(r.Dir, "received.log"), len(want))
	if len(lines) != len(want) {
		t.Fatalf("receiver got %d records, want %d:\n%v\nsender:\n%s", len(lines), len(want), lines, s.Output())
	}
	for _, l := range lines {
		// The receiver's message is the sender's whole JSON entry (the
		// syslog encoder's default inner encoder).
		var inner map[string]any
		if err := json.Unmarshal([]byte(l["msg"].(string)), &inner); err != nil {
			t.Errorf("message is not the sender's JSON entry: %v: %v", err, l)
			continue
		}
		msg, _ := inner["msg"].(string)
		level, ok := want[msg]
		if !ok {
			t.Errorf("unexpected or repeated message %q", msg)
			continue
		}
		delete(want, msg)
		var lv struct{ severity, zap string }
		for _, x := range levels {
			if x.level == level {
				lv.severity, lv.zap = x.severity, x.zap
			}
		}
		attrs, _ := l["attrs"].(map[string]any)
		if l["app"] != "shop" || l["logger"] != "applog.shop" || l["host"] != "127.0.0.1" ||
			attrs["syslog_facility"] != "local3" || l["level_name"] != lv.severity || l["level"] != lv.zap ||
			inner["app"] != "shop" || inner["facility"] != "cart" {
			t.Errorf("%q: got app %v logger %v host %v facility %v level_name %v level %v (want %s/%s); inner %v",
				msg, l["app"], l["logger"], l["host"], attrs["syslog_facility"], l["level_name"], l["level"], lv.severity, lv.zap, inner)
		}
	}
	if len(want) > 0 {
		t.Errorf("missing: %v", want)
	}
}

// TestTLSReceiverClientCertificates checks that the receiver takes
// octet-counted RFC 5424 from a plain crypto/tls client with a good
// certificate, refuses clients without one or with one from another CA
// (logging the peer), and goes on serving good clients afterwards.
func TestTLSReceiverClientCertificates(t *testing.T) {
	p := tlsNewPKI(t)
	rport := freePort(t)
	r := tlsStartReceiver(t, p, rport, p.CA)
	addr := fmt.Sprintf("127.0.0.1:%d", rport)
	out := filepath.Join(r.Dir, "received.log")

	send := func(label, cert, key string) error {
		var msgs []string
		for i := range 3 {
			// local4.notice; the second message spans lines, which only
			// octet counting can carry.
			msgs = append(msgs, tlsRFC5424(20*8+5, "audit", fmt.Sprintf("%s message %d\nsecond line", label, i)))
		}
		return tlsSendFrames(addr, p.ClientConfig(t, cert, key), msgs)
	}
	countOf := func(label string) int {
		n := 0
		for _, l := range readLines(t, out) {
			if strings.HasPrefix(l["msg"].(string), label+" message ") {
				n++
			}
		}
		return n
	}

	if err := send("good-1", p.ClientCert, p.ClientKey); err != nil {
		t.Fatalf("good client refused: %v\n%s", err, r.Output())
	}
	if !tlsWaitFor(10*time.Second, func() bool { return countOf("good-1") == 3 }) {
		t.Fatalf("good client: %d of 3 records arrived", countOf("good-1"))
	}
	for _, l := range readLines(t, out) {
		attrs, _ := l["attrs"].(map[string]any)
		if l["app"] != "audit" || l["level_name"] != "notice" || attrs["syslog_facility"] != "local4" ||
			!strings.HasSuffix(l["msg"].(string), "\nsecond line") {
			t.Errorf("record: %v", l)
		}
	}

	for _, c := range []struct {
		label, cert, key, logged string
	}{
		{"no-cert", "", "", "client didn't provide a certificate"},
		{"rogue", p.RogueCert, p.RogueKey, "certificate signed by unknown authority"},
	} {
		err := send(c.label, c.cert, c.key)
		if err == nil {
			t.Errorf("%s client was accepted", c.label)
		} else {
			t.Logf("%s client: %v", c.label, err)
		}
		// The refusal is logged with the peer's address.
		ok := tlsWaitFor(5*time.Second, func() bool {
			for _, line := range strings.Split(r.Output(), "\n") {
				if strings.Contains(line, `"peer":"127.0.0.1"`) && strings.Contains(line, c.logged) {
					return true
				}
			}
			return false
		})
		if !ok {
			t.Errorf("%s: no log line naming the peer and %q:\n%s", c.label, c.logged, r.Output())
		}
	}

	// A good client still gets through, and nothing of the refused ones
	// was taken.
	if err := send("good-2", p.ClientCert, p.ClientKey); err != nil {
		t.Fatalf("good client refused after bad ones: %v", err)
	}
	if !tlsWaitFor(10*time.Second, func() bool { return countOf("good-2") == 3 }) {
		t.Fatalf("good client after refusals: %d of 3 records arrived", countOf("good-2"))
	}
	if n, m := countOf("no-cert"), countOf("rogue"); n+m != 0 {
		t.Errorf("records of refused clients were taken: no-cert %d, rogue %d", n, m)
	}
}
