package syslogmsg

import (
	"bytes"
	"reflect"
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
// into reads, and keeps to its limit.
func FuzzSplit(f *testing.F) {
	for _, tc := range framingCases {
		f.Add([]byte(tc.in), uint16(tc.max))
	}
	f.Fuzz(func(t *testing.T, in []byte, max uint16) {
		limit := int(max%512) + 1
		type result struct {
			frames []string
			err    string
		}
		var results []result
		for _, name := range []string{"whole", "one byte", "half"} {
			frames, err := scanFrames(readers[name](bytes.NewReader(in)), limit)
			res := result{frames: frames}
			if err != nil {
				res.err = err.Error()
			}
			for _, tok := range frames {
				if len(tok) == 0 || len(tok) > limit {
					t.Fatalf("%s: token of %d bytes, limit %d", name, len(tok), limit)
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
