package jsonlog

import (
	"strconv"
	"strings"
	"testing"
)

var fuzzSeeds = []string{
	`{"msg":"a","level":"warn","time":"2026-11-21T10:00:00Z","logger":"x","n":1,"f":1.5,"b":true,"z":null,"o":{"a":[1,{"b":2}]}}`,
	"{\"msg\":\"a\"}\n{\"msg\":\"b\"\n{\"msg\":\"c\"}\n",
	"[{\"msg\":\"a\"},{\"msg\":\"b\"}]\r\n\r\n{\"msg\":{\"x\":1},\"level\":\"loud\"}",
	"{\"msg\":\"\\ud83d\\ude00\\u00e9\",\"levelname\":\"TRACE5\",\"levelno\":5}",
	"{\"a\":1,}\n",
	"\n\n  \n",
}

// errLine returns the line an error names ("line N: ...").
func errLine(t *testing.T, err error) int {
	rest, ok := strings.CutPrefix(err.Error(), "line ")
	if !ok {
		return 0
	}
	n, err2 := strconv.Atoi(rest[:strings.IndexByte(rest, ':')])
	if err2 != nil {
		t.Fatalf("error %q: bad line number", err)
	}
	return n
}

// FuzzDecodeLines checks that NDJSON errors name the right line: every
// line before it decodes on its own, and the line named does not.
func FuzzDecodeLines(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		lim := Limits{MaxRecords: 100}
		recs, err := DecodeLines([]byte(body), lim, now)
		lines := strings.Split(body, "\n")
		if err == nil {
			// The same records as the stream decoder, which reads
			// NDJSON too.
			stream, serr := Decode([]byte(body), lim, now)
			if serr != nil || len(stream) != len(recs) {
				t.Fatalf("DecodeLines: %d records; Decode: %d, %v", len(recs), len(stream), serr)
			}
			return
		}
		if err.Error() == "no records in body" || strings.Contains(err.Error(), "records in one body") {
			return
		}
		n := errLine(t, err)
		if n < 1 || n > len(lines) {
			t.Fatalf("error %q names line %d of %d", err, n, len(lines))
		}
		for i, line := range lines[:n-1] {
			if strings.Trim(line, " \t\r") == "" {
				continue
			}
			if _, err := Decode([]byte(line), lim, now); err != nil && err.Error() != "no records in body" {
				t.Fatalf("error names line %d, but line %d fails alone: %v", n, i+1, err)
			}
		}
		if _, err := Decode([]byte(lines[n-1]), lim, now); err == nil {
			t.Fatalf("error %q, but line %d decodes alone", err, n)
		}
	})
}
