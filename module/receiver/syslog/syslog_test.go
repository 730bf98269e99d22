package syslog

import (
	"bufio"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-applog/caddy-applog/module/decoders/syslogmsg"
	"github.com/caddy-applog/caddy-applog/module/intake"
)

var now = time.Date(2026, 12, 4, 20, 30, 0, 0, time.UTC)

func attr(rec intake.Record, key string) string {
	for _, a := range rec.Attrs {
		if a.Key == key {
			return a.Value.String()
		}
	}
	return ""
}

// TestDecode checks the app each message is kept under, with the exact
// bytes real senders write.
func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		name          string
		app, in       string
		wantApp, fac  string
		wantMsg       string
		wantSyslogErr bool
	}{
		{name: "loggen legacy", in: "<38>2026-12-04T20:22:39 localhost prg00000[1234]: seq: 0000000000, thread: 0000, runid: 1796416580, stamp: 2026-12-04T20:22:39 PADDPADD\n",
			wantApp: "prg00000", wantMsg: "seq: 0000000000, thread: 0000, runid: 1796416580, stamp: 2026-12-04T20:22:39 PADDPADD"},
		{name: "rsyslog traditional forward, tag without colon", in: "<13>Dec  4 20:24:01 vm webapp via rsyslog ...",
			wantApp: "webapp", wantMsg: "via rsyslog ..."},
		{name: "Python SysLogHandler, empty ident", in: "<12>WARNING:root:no ident\x00",
			wantApp: "syslog", wantMsg: "WARNING:root:no ident"},
		{name: "Python SysLogHandler, empty ident, receiver app", app: "shop", in: "<12>plain text\x00",
			wantApp: "shop", wantMsg: "plain text"},
		{name: "Python SysLogHandler, dotted ident", in: "<12>shop.web: x\x00",
			wantApp: "shop", fac: "web", wantMsg: "x"},
		{name: "program starting with a dot", in: "<13>1 - vm .hidden - - - x",
			wantApp: "syslog", fac: "hidden", wantMsg: "x"},
		{name: "malformed RFC 5424", in: "<13>1 2026-13-45T99:00:00Z vm shop - - - x",
			wantApp: "syslog", wantMsg: "1 2026-13-45T99:00:00Z vm shop - - - x", wantSyslogErr: true},
		{name: "no PRI", in: "hello",
			wantApp: "syslog", wantMsg: "hello", wantSyslogErr: true},
		{name: "no PRI, receiver app", app: "shop", in: "hello",
			wantApp: "shop", wantMsg: "hello", wantSyslogErr: true},
	} {
		pr := protocol{app: tc.app, fallback: DefaultFallbackApp}
		rec, err := pr.Decode([]byte(tc.in), now, nil)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if rec.App != tc.wantApp || rec.Facility != tc.fac || rec.Message != tc.wantMsg || (attr(rec, "syslog_error") != "") != tc.wantSyslogErr {
			t.Errorf("%s: app %q facility %q msg %q syslog_error %q", tc.name, rec.App, rec.Facility, rec.Message, attr(rec, "syslog_error"))
		}
	}
	if _, err := (protocol{fallback: DefaultFallbackApp}).Decode([]byte("\x00\n"), now, nil); err == nil {
		t.Error("an empty message was accepted")
	}
}

func TestDatagram(t *testing.T) {
	// loggen -D -P: the count covers the rest, its LF included.
	body := "<38>1 2026-12-04T20:36:20+00:00 localhost prg00000 1234 - - \xef\xbb\xbfseq: 0000000000, thread: 0000, runid: 1796416580, stamp: 2026-12-04T20:36:20 PADDPAD\n"
	for _, tc := range []struct {
		in, want, wantErr string
	}{
		{in: strconv.Itoa(len(body)) + " " + body, want: strings.TrimSuffix(body, "\n")},
		{in: strconv.Itoa(len(body)-1) + " " + body, want: strings.TrimSuffix(body, "\n")},
		{in: strconv.Itoa(len(body)+1) + " " + body, wantErr: "octet count"},
		{in: "<13>x\x00", want: "<13>x"},
		{in: "<13>x\r\n", want: "<13>x"},
		{in: "0 <13>x", want: "0 <13>x"}, // not a count: Parse refuses it, Salvage keeps it
	} {
		got, err := (protocol{}).Datagram([]byte(tc.in), 1<<16)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Datagram(%q) = %q, %v; want error %q", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || string(got) != tc.want {
			t.Errorf("Datagram(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// TestSplitUsesFraming checks that the receiver's framing reaches its
// splitter: SysLogHandler's empty-ident message that looks like a
// header is one frame with `framing nul`, two in auto.
func TestSplitUsesFraming(t *testing.T) {
	in := "<12>Dec  4 20:24:01 vm otherapp: x\n<11>1 - - otherapp - - - y\x00"
	for framing, want := range map[syslogmsg.Framing]int{syslogmsg.FramingNUL: 1, syslogmsg.FramingAuto: 2} {
		sc := bufio.NewScanner(strings.NewReader(in))
		sc.Split(protocol{framing: framing}.Split(1 << 16))
		n := 0
		for sc.Scan() {
			n++
		}
		if n != want || sc.Err() != nil {
			t.Errorf("framing %s: %d frames, %v; want %d", framing, n, sc.Err(), want)
		}
	}
}

func TestUnmarshalCaddyfile(t *testing.T) {
	var s Syslog
	d := caddyfile.NewTestDispenser(`syslog tcp/127.0.0.1:5514 {
		framing lf
		fallback_app unparsed
		app shop
	}`)
	if err := s.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	if s.Framing != "lf" || s.FallbackApp != "unparsed" || s.App != "shop" {
		t.Errorf("%+v", s)
	}
	for _, bad := range []string{
		"syslog tcp/127.0.0.1:5514 {\n framing\n}",
		"syslog tcp/127.0.0.1:5514 {\n framing cr\n}",
		"syslog tcp/127.0.0.1:5514 {\n framing lf nul\n}",
		"syslog tcp/127.0.0.1:5514 {\n fallback_app\n}",
	} {
		var s Syslog
		if err := s.UnmarshalCaddyfile(caddyfile.NewTestDispenser(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
