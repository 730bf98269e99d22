package rotate

import (
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/logging"
)

// benchRecords are encoded entries as Caddy's json encoder writes them
// for the applog app, about 330 bytes each.
var benchRecords = func() [][]byte {
	out := make([][]byte, 1024)
	for i := range out {
		out[i] = fmt.Appendf(nil, `{"level":"info","ts":1795255200.%07d,"logger":"applog.shop.web.requests","msg":"GET /api/orders/%d 200 in %dms","app":"shop","facility":"web.requests","host":"10.0.%d.%d","logger_name":"web.requests","level_name":"INFO","level_no":20,"attrs":{"pathname":"/srv/shop/views.py","lineno":%d,"funcName":"orders","process":4242}}`+"\n",
			i*7919%10000000, i, i%97, i%7, i%250, 100+i%400)
	}
	return out
}()

// openers are the writers BenchmarkRotateVsFile compares: Caddy's own
// `file` writer (timberjack) and `rotate`, both rolling at 100 MiB
// without compression (compression runs in the background in both and
// would blur the comparison of the write paths), and `rotate` with
// `flush 1s`, which buffers entries instead of making a system call per
// entry (`file` has no such option).
var openers = []struct {
	name string
	open func(dir string) (io.WriteCloser, error)
}{
	{"file", func(dir string) (io.WriteCloser, error) {
		fw := logging.FileWriter{Filename: filepath.Join(dir, "file.log"), RollSizeMB: 100, RollCompression: "none"}
		return fw.OpenWriter()
	}},
	{"rotate", func(dir string) (io.WriteCloser, error) {
		rw := &RotateWriter{Filename: filepath.Join(dir, "rotate.log"), MaxSize: 100 << 20, Compress: "none", Flush: "always"}
		return rw.OpenWriter()
	}},
	{"rotate_flush_1s", func(dir string) (io.WriteCloser, error) {
		rw := &RotateWriter{Filename: filepath.Join(dir, "rotate_flush.log"), MaxSize: 100 << 20, Compress: "none", Flush: "1s"}
		return rw.OpenWriter()
	}},
}

// BenchmarkRotateVsFile writes the same encoded records through each of
// openers, from one goroutine (serial) and from GOMAXPROCS goroutines
// (parallel), each on its own (ns/op is per record). Then "interleaved"
// and "interleaved_parallel" write b.N records to each writer in
// alternating chunks of 4096, so that all see the same machine (the cost
// of a write(2) to the page cache dominates and drifts with whatever
// else the machine does), and report each writer's ns/record and
// allocs/record and rotate's time as a ratio of file's.
//
//	go test -run '^$' -bench RotateVsFile -benchmem ./writers/rotate
func BenchmarkRotateVsFile(b *testing.B) {
	for _, par := range []bool{false, true} {
		mode := "serial"
		if par {
			mode = "parallel"
		}
		for _, w := range openers {
			b.Run(mode+"/"+w.name, func(b *testing.B) {
				wc, err := w.open(b.TempDir())
				if err != nil {
					b.Fatal(err)
				}
				defer wc.Close()
				b.ReportAllocs()
				b.SetBytes(int64(len(benchRecords[0])))
				b.ResetTimer()
				if par {
					b.RunParallel(func(pb *testing.PB) {
						i := 0
						for pb.Next() {
							if _, err := wc.Write(benchRecords[i%len(benchRecords)]); err != nil {
								b.Error(err)
								return
							}
							i++
						}
					})
					return
				}
				for i := range b.N {
					if _, err := wc.Write(benchRecords[i%len(benchRecords)]); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
	for _, par := range []bool{false, true} {
		name := "interleaved"
		if par {
			name += "_parallel"
		}
		b.Run(name, func(b *testing.B) { interleaved(b, par) })
	}
}

// interleaved writes b.N records to each of openers in alternating
// chunks, from one goroutine or from GOMAXPROCS, and reports each
// writer's time and allocations per record, and rotate's times as
// ratios of file's.
func interleaved(b *testing.B, par bool) {
	{
		dir := b.TempDir()
		writers := make([]io.WriteCloser, len(openers))
		for i, w := range openers {
			wc, err := w.open(dir)
			if err != nil {
				b.Fatal(err)
			}
			defer wc.Close()
			writers[i] = wc
		}
		elapsed := make([]time.Duration, len(openers))
		allocs := make([]uint64, len(openers))
		var ms runtime.MemStats
		const chunk = 4096
		b.ResetTimer()
		for done := 0; done < b.N; done += chunk {
			n := min(chunk, b.N-done)
			for i, wc := range writers {
				runtime.ReadMemStats(&ms)
				before, t0 := ms.Mallocs, time.Now()
				write := func(from, to int) {
					for j := from; j < to; j++ {
						if _, err := wc.Write(benchRecords[(done+j)%len(benchRecords)]); err != nil {
							b.Error(err)
							return
						}
					}
				}
				if par {
					var wg sync.WaitGroup
					procs := runtime.GOMAXPROCS(0)
					for p := range procs {
						wg.Go(func() { write(p*n/procs, (p+1)*n/procs) })
					}
					wg.Wait()
				} else {
					write(0, n)
				}
				elapsed[i] += time.Since(t0)
				runtime.ReadMemStats(&ms)
				allocs[i] += ms.Mallocs - before
			}
		}
		b.StopTimer()
		per := func(i int) float64 { return float64(elapsed[i].Nanoseconds()) / float64(b.N) }
		for i, w := range openers {
			b.ReportMetric(per(i), w.name+"-ns/record")
			b.ReportMetric(float64(allocs[i])/float64(b.N), w.name+"-allocs/record")
		}
		b.ReportMetric(per(1)/per(0), "rotate/file")
		b.ReportMetric(per(2)/per(0), "rotate_flush_1s/file")
	}
}
