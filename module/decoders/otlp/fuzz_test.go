package otlp

import (
	"testing"

	"google.golang.org/protobuf/proto"
)

// FuzzDecode checks that no body makes the decoder panic or go past its
// limits, in either encoding, that levels stay on the documented scale,
// and that decoding is deterministic.
func FuzzDecode(f *testing.F) {
	pb, _ := proto.Marshal(sample())
	f.Add(pb, false)
	f.Add([]byte(sampleJSON), true)
	f.Add([]byte(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"00"}]}]}]}`), true)
	f.Add([]byte("\x0a\x05\x12\x03\x12\x01\x2a"), false)
	lim := Limits{MaxRecords: 50, MaxValues: 500, MaxDepth: 16}
	f.Fuzz(func(t *testing.T, body []byte, isJSON bool) {
		format := Protobuf
		if isJSON {
			format = JSON
		}
		recs, err := Decode(body, format, lim, now)
		if err != nil {
			if len(recs) != 0 {
				t.Fatalf("records with an error")
			}
			return
		}
		if len(recs) > lim.MaxRecords {
			t.Fatalf("%d records over the limit", len(recs))
		}
		for _, r := range recs {
			if r.LevelNo < 0 || r.LevelNo > 58 {
				t.Fatalf("level %d", r.LevelNo)
			}
			if format == Protobuf && r.Wire > len(body)+maxContextShare {
				t.Fatalf("wire %d of %d bytes", r.Wire, len(body))
			}
		}
		again, err := Decode(body, format, lim, now)
		if err != nil || len(again) != len(recs) {
			t.Fatalf("not deterministic: %v", err)
		}
		for i := range again {
			if attrsOf(again[i]) != attrsOf(recs[i]) || again[i].Message != recs[i].Message {
				t.Fatalf("record %d differs on a second decode", i)
			}
		}
	})
}
