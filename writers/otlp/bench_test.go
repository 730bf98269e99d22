package otlp

import (
	"bytes"
	stdgzip "compress/gzip"
	"fmt"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/caddy-applog/caddy-applog/internal/forward"
)

// benchRecords is one full export of realistic entries, in turn: an app
// record from the syslog receiver (the suite's forwarding load), one
// from a Python app with attributes, and a Caddy access log entry.
func benchRecords(n int) []forward.Record {
	recs := make([]forward.Record, n)
	ts := 1796423121.0722294
	for i := range recs {
		var e string
		switch i % 3 {
		case 0:
			e = fmt.Sprintf(`{"level":"info","ts":%.7f,"logger":"applog.bench","msg":"seq=%08d host=loadgen-%d the rest of a 200 byte syslog line, padded out with words that repeat from one message to the next","app":"bench","host":"127.0.0.1","level_name":"info","level_no":20,"attrs":{"syslog_facility":"local0","syslog_severity":6,"program":"bench","hostname":"loadgen","procid":"%d","msgid":"seq"}}`,
				ts, i, i%4, 4000+i%4)
		case 1:
			e = fmt.Sprintf(`{"level":"warn","ts":%.7f,"logger":"applog.myapp.shop.views","msg":"%d items at 12.50%% off for order \"%d\"","app":"myapp","facility":"shop.views","host":"10.0.3.%d","logger_name":"shop.views","level_name":"WARNING","level_no":30,"attrs":{"pathname":"/srv/shop/views.py","lineno":%d,"funcName":"checkout","process":4242,"ratio":0.125,"trace_id":"0102030405060708090a0b0c0d0e%04x","span_id":"01020304050607%02x","trace_flags":1}}`,
				ts, i%17, 100000+i, i%8, 40+i%60, i, i%256)
		default:
			e = fmt.Sprintf(`{"level":"info","ts":%.7f,"logger":"http.log.access.log0","msg":"handled request","request":{"remote_ip":"10.0.0.%d","remote_port":"%d","client_ip":"203.0.113.%d","proto":"HTTP/2.0","method":"GET","host":"shop.example.com","uri":"/cart?id=%d","headers":{"User-Agent":["Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"],"Accept":["text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"],"Accept-Encoding":["gzip, deflate, br, zstd"],"Accept-Language":["en-US,en;q=0.5"],"Cookie":["REDACTED"]},"tls":{"resumed":false,"version":772,"cipher_suite":4865,"proto":"h2","server_name":"shop.example.com"}},"bytes_read":0,"user_id":"","duration":0.%09d,"size":%d,"status":200,"resp_headers":{"Server":["Caddy"],"Content-Type":["text/html; charset=utf-8"],"Alt-Svc":["h3=\":443\"; ma=2592000"]}}`,
				ts, i%250, 40000+i, i%250, i, 500000+i*37, 5000+i)
		}
		recs[i] = forward.Record{Data: []byte(e), Time: int64(ts * 1e9)}
		ts += 0.0000125
	}
	return recs
}

// BenchmarkExport is one Send's work before the request: map an export
// of 600 records (about the suite's 256KiB batches), marshal it, gzip
// it. ns/record and allocs/record are per entry. The reference cases do
// the same with the tests' reference mapping (encoding/json into a map,
// new structs, compress/gzip), the yardstick of docs/otlp.md's Cost.
func BenchmarkExport(b *testing.B) {
	recs := benchRecords(600)
	for _, tc := range []struct {
		name      string
		gzip, ref bool
	}{{"gzip", true, false}, {"none", false, false}, {"reference-gzip", true, true}, {"reference-none", false, true}} {
		b.Run(tc.name, func(b *testing.B) {
			m := &mapper{hostname: "bench-host", now: time.Now}
			s := &session{t: &transport{gzip: tc.gzip, mapper: m, log: zap.NewNop()}}
			encode := s.encode
			if tc.ref {
				encode = func(recs []forward.Record) error { return refEncode(&s.body, m, recs, tc.gzip) }
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			iters := 0
			for b.Loop() {
				iters++
				if err := encode(recs); err != nil {
					b.Fatal(err)
				}
			}
			runtime.ReadMemStats(&after)
			n := float64(iters * len(recs))
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/record")
			b.ReportMetric(float64(after.Mallocs-before.Mallocs)/n, "allocs/record")
			b.ReportMetric(float64(s.body.Len())/float64(len(recs)), "body-B/record")
		})
	}
}

// refEncode is encode with the reference mapping and nothing reused.
func refEncode(body *bytes.Buffer, m *mapper, recs []forward.Record, gz bool) error {
	msg, err := proto.Marshal(m.refExport(recs))
	if err != nil {
		return err
	}
	body.Reset()
	if !gz {
		body.Write(msg)
		return nil
	}
	zw := stdgzip.NewWriter(body)
	if _, err := zw.Write(msg); err != nil {
		return err
	}
	return zw.Close()
}

// BenchmarkGzip compresses BenchmarkExport's marshalled export at the
// levels the writer could use: the Collector's otlphttp exporter uses
// gzip's default.
func BenchmarkGzip(b *testing.B) {
	recs := benchRecords(600)
	msg, err := proto.Marshal(new(builder).export(&mapper{hostname: "bench-host", now: time.Now}, recs))
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		w    func(io.Writer) io.WriteCloser
	}{
		{"stdlib-default", func(w io.Writer) io.WriteCloser { return stdgzip.NewWriter(w) }},
		{"klauspost-default", func(w io.Writer) io.WriteCloser { return gzip.NewWriter(w) }},
		{"klauspost-best-speed", func(w io.Writer) io.WriteCloser { z, _ := gzip.NewWriterLevel(w, gzip.BestSpeed); return z }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var body bytes.Buffer
			iters := 0
			for b.Loop() {
				iters++
				body.Reset()
				zw := tc.w(&body)
				if _, err := zw.Write(msg); err != nil {
					b.Fatal(err)
				}
				if err := zw.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(iters*len(recs)), "ns/record")
			b.ReportMetric(float64(body.Len())/float64(len(recs)), "body-B/record")
		})
	}
}
