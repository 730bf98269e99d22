package syslogmsg

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/caddy-applog/caddy-applog/module/intake"
)

func FuzzParse(f *testing.F) {
	for _, tc := range parseCases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b, testNow, berlin)
		if err != nil {
			// What Parse refuses the receiver keeps whole.
			sm, ok := Salvage(b, false)
			if ok != (len(bytes.TrimRight(b, "\x00\r\n")) > 0) || ok && (sm.Message == "" || !utf8.ValidString(sm.Message) ||
				sm.Facility > 23 || sm.Severity > 7 || sm.AppName != "") {
				t.Fatalf("Salvage(%q) = %+v, %v", b, sm, ok)
			}
			return
		}
		if m.Facility < 0 || m.Facility > 23 || m.Severity < 0 || m.Severity > 7 {
			t.Fatalf("PRI out of range: %+v", m)
		}
		for name, s := range map[string]string{"Hostname": m.Hostname, "AppName": m.AppName, "ProcID": m.ProcID,
			"MsgID": m.MsgID, "StructuredData": m.StructuredData, "Message": m.Message} {
			if !utf8.ValidString(s) {
				t.Fatalf("%s %q is not valid UTF-8", name, s)
			}
			if len(s) > 3*len(b) { // U+FFFD is 3 bytes
				t.Fatalf("%s %q is longer than the message", name, s)
			}
		}
		switch m.Format {
		case RFC5424, RFC3164, Bare:
		default:
			t.Fatalf("format %q", m.Format)
		}
		if m.Format == Bare && !m.Timestamp.IsZero() {
			t.Fatalf("bare message with a timestamp: %+v", m)
		}
		rec := ToRecord(m, testNow)
		if rec.App != "" && !intake.ValidApp(rec.App) {
			t.Fatalf("app %q is not valid", rec.App)
		}
		if rec.Facility != intake.FacilityFromLogger(rec.Facility) {
			t.Fatalf("facility %q is not clean", rec.Facility)
		}
		if rec.LevelNo < 10 || rec.LevelNo > 70 || rec.Time.IsZero() {
			t.Fatalf("record %+v", rec)
		}
	})
}

// FuzzSplit checks that framing does not depend on how the stream is cut
// into reads, keeps to its limit and to its framing's delimiter, in
// every framing.
func FuzzSplit(f *testing.F) {
	framings := [...]Framing{FramingAuto, FramingOctet, FramingLF, FramingNUL}
	for _, tc := range framingCases {
		for i := range framings {
			f.Add([]byte(tc.in), uint16(tc.max), uint8(i))
		}
	}
	f.Fuzz(func(t *testing.T, in []byte, max uint16, framing uint8) {
		fr := framings[int(framing)%len(framings)]
		limit := int(max%512) + 1
		type result struct {
			frames []string
			err    string
		}
		var results []result
		for _, name := range []string{"whole", "one byte", "half"} {
			frames, err := scanFramed(readers[name](bytes.NewReader(in)), fr, limit)
			res := result{frames: frames}
			if err != nil {
				res.err = err.Error()
			}
			for _, tok := range frames {
				if len(tok) == 0 || len(tok) > limit {
					t.Fatalf("%s: token of %d bytes, limit %d", name, len(tok), limit)
				}
				if fr == FramingLF && strings.Contains(tok, "\n") || fr == FramingNUL && strings.Contains(tok, "\x00") {
					t.Fatalf("%s, framing %s: token %q holds its delimiter", name, fr, tok)
				}
			}
			results = append(results, res)
		}
		for _, res := range results[1:] {
			if !reflect.DeepEqual(res, results[0]) {
				t.Fatalf("reads differ:\n %q %s\n %q %s", res.frames, res.err, results[0].frames, results[0].err)
			}
		}
	})
}

// FuzzNoInjection checks the rule of issue 15: whatever two messages
// say, a stream of them, framed as their sender frames it, is cut into
// exactly those two messages in auto, as in their framing set
// explicitly. The senders are Python's SysLogHandler (an ident, NUL
// after each message, line breaks kept), a daemon (an RFC 5424 or RFC
// 3164 header, LF after each message, no LF or NUL inside) and an
// octet-counting one (anything inside).
func FuzzNoInjection(f *testing.F) {
	f.Add("first\n<11>1 - - otherapp - - - injected", "second", uint8(0))
	f.Add("loaded\n42 rows", "next", uint8(0))
	f.Add("a\n<11>x", "12 <11>y", uint8(1))
	f.Add("a\n\x00b", "c", uint8(2))
	f.Add("x\r", "\ry", uint8(3))
	f.Fuzz(func(t *testing.T, t1, t2 string, sender uint8) {
		var heads []string
		var framing Framing
		var in string
		switch sender % 4 {
		case 0: // Python's SysLogHandler over TCP
			heads, framing = []string{"<14>shop: ", "<11>shop: "}, FramingNUL
			t1, t2 = strings.ReplaceAll(t1, "\x00", ""), strings.ReplaceAll(t2, "\x00", "")
			in = heads[0] + t1 + "\x00" + heads[1] + t2 + "\x00"
		case 1, 2: // rsyslog, syslog-ng: non-transparent framing
			heads, framing = []string{h5424, h3164}, FramingLF
			if sender%4 == 2 {
				heads = []string{hISO, h3164}
			}
			clean := strings.NewReplacer("\n", "", "\x00", "")
			t1, t2 = clean.Replace(t1), clean.Replace(t2)
			in = heads[0] + t1 + "\n" + heads[1] + t2 + "\n"
		default: // octet counting
			heads, framing = []string{h5424, "<11>"}, FramingOctet
			in = octet(heads[0]+t1) + octet(heads[1]+t2)
		}
		want := []string{heads[0] + t1, heads[1] + t2}
		if framing != FramingOctet {
			for i := range want {
				want[i] = strings.TrimSuffix(want[i], "\r") // CRLF
			}
		}
		for _, fr := range []Framing{FramingAuto, framing} {
			got, err := scanFramed(strings.NewReader(in), fr, 0)
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("framing %s: %q cut into %q, %v; want %q", fr, in, got, err, want)
			}
		}
	})
}

// FuzzDatagram checks the octet count of a datagram.
func FuzzDatagram(f *testing.F) {
	f.Add([]byte("200 <38>1 2026-12-04T20:36:20+00:00 localhost prg00000 1234 - - x\n"))
	f.Add([]byte("<13>x\x00"))
	f.Add([]byte("5 <13>x\n"))
	f.Fuzz(func(t *testing.T, p []byte) {
		msg, err := DatagramMessage(p)
		if err != nil {
			return
		}
		if len(msg) > len(p) || !bytes.Contains(p, msg) {
			t.Fatalf("DatagramMessage(%q) = %q", p, msg)
		}
		// Any message that does not start with a digit comes back
		// whole from its octet-counted form, with or without a line
		// break after it.
		if trimmed := bytes.TrimRight(p, "\x00\r\n"); len(trimmed) > 0 && !isDigit(p[0]) {
			for _, counted := range [][]byte{octetBytes(p), append(octetBytes(trimmed), '\n')} {
				got, err := DatagramMessage(counted)
				if err != nil || !bytes.Equal(got, trimmed) {
					t.Fatalf("DatagramMessage(%q) = %q, %v; want %q", counted, got, err, trimmed)
				}
			}
		}
	})
}

func octetBytes(b []byte) []byte { return []byte(octet(string(b))) }

// FuzzTag checks the RFC 3164 TAG reader: whatever follows a hostname,
// the program is a run of tag bytes, the pid has no space, and the text
// is what follows them, unchanged.
func FuzzTag(f *testing.F) {
	for _, s := range []string{"webapp via rsyslog", "sshd[12]: x", "postfix/smtpd[42] connect", "a:b", "x[", "[1]: y", "t: ", "w\tx"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		const head = "<13>Dec  4 20:24:01 vm "
		in := head + s
		m, err := Parse([]byte(in), testNow, berlin)
		if err != nil {
			t.Fatalf("Parse(%q): %v", in, err)
		}
		if m.Format != RFC3164 || m.Hostname != "vm" {
			t.Fatalf("Parse(%q) = %+v", in, m)
		}
		if len(m.AppName) > maxTag || strings.ContainsFunc(m.AppName, func(r rune) bool { return r > 0x7f || !isTagByte(byte(r)) }) {
			t.Fatalf("Parse(%q): program %q", in, m.AppName)
		}
		if strings.ContainsAny(m.ProcID, " [") {
			t.Fatalf("Parse(%q): pid %q", in, m.ProcID)
		}
		if utf8.ValidString(in) && !strings.HasSuffix(strings.TrimRight(in, "\x00\r\n"), m.Message) {
			t.Fatalf("Parse(%q): message %q is not the end of the input", in, m.Message)
		}
		if m.AppName == "" && utf8.ValidString(in) && m.Message != strings.TrimRight(s, "\x00\r\n") {
			t.Fatalf("Parse(%q): no program, yet message %q is not the whole text", in, m.Message)
		}
	})
}
