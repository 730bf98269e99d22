package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/caddy-applog/caddy-applog/integration/bench/internal/load"
)

// httpCaddyfile serves log_ingest (records to a rotate file, with the
// flush mode of -http-flush or of one of -form-flush's) and a plain
// respond, each in a handle block so that routing costs the same.
//
// The load's records carry a fixed time (so that entries can be checked
// byte for byte): max_clock_skew keeps the arrival time out of them.
const httpCaddyfile = `{
	admin 127.0.0.1:%d
	applog {
		max_clock_skew 87600h
	}
	log ingest {
		include applog.bench
		output rotate %s {
			max_size 1000GiB
			compress none
			flush %s
		}
		format json
	}
}

http://127.0.0.1:%d {
	bind 127.0.0.1
	handle /ndjson {
		log_ingest bench
	}
	handle /form {
		log_ingest bench
	}
	handle /plain {
		respond ` + "`" + `{"accepted":1,"filtered":0,"truncated":0}` + "`" + ` 200
	}
}
`

// httpCaddy is a Caddy started for the HTTP parts.
type httpCaddy struct {
	*daemon
	base, out string
}

func (o *options) startHTTPCaddy(ctx context.Context, name, flush string) (*httpCaddy, func(), error) {
	dir, err := os.MkdirTemp(o.work, "http-")
	if err != nil {
		return nil, nil, err
	}
	admin, err1 := freePort()
	port, err2 := freePort()
	if err1 != nil || err2 != nil {
		os.RemoveAll(dir)
		return nil, nil, fmt.Errorf("no free port: %v %v", err1, err2)
	}
	out := filepath.Join(dir, "ingest.log")
	d, err := startCaddy(ctx, o.caddy, name, dir, fmt.Sprintf(httpCaddyfile, admin, strconv.Quote(out), flush, port), port)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	c := &httpCaddy{daemon: d, base: fmt.Sprintf("http://127.0.0.1:%d", port), out: out}
	return c, func() { d.stop(); os.RemoveAll(dir) }, nil
}

// settleTime is how long after the last accepted record its file is
// complete: log_ingest answers once a record is buffered, and the
// flusher writes within microseconds with flush batch, but up to an
// interval later with flush <interval>.
func settleTime(flush string) time.Duration {
	d := 300 * time.Millisecond
	if interval, err := time.ParseDuration(flush); err == nil {
		d += interval
	}
	return d
}

// ndjsonRow is part 2's result.
type ndjsonRow struct {
	Records, Batch, Conc int
	Rate                 float64 // records per second
	P50, P99             time.Duration
	CPU                  time.Duration // per million records
	PeakRSS              int64
	Err                  error
}

func (o *options) runNDJSON(ctx context.Context) (row ndjsonRow) {
	row = ndjsonRow{Records: o.ndjsonRecords, Batch: o.ndjsonBatch, Conc: o.ndjsonConc}
	c, stop, err := o.startHTTPCaddy(ctx, "caddy (log_ingest NDJSON)", o.httpFlush)
	if err != nil {
		row.Err = err
		return row
	}
	defer stop()
	runCtx, cancel := context.WithTimeout(ctx, o.httpTimeout)
	defer cancel()
	client := load.NewClient(o.ndjsonConc, true)
	cpu0, err := c.cpu()
	if err != nil {
		row.Err = err
		return row
	}
	res := load.PostBatches(runCtx, client, load.BatchSpec{URL: c.base + "/ndjson", Total: o.ndjsonRecords, Batch: o.ndjsonBatch, Conc: o.ndjsonConc})
	cpu1, err := c.cpu()
	if err != nil {
		row.Err = err
		return row
	}
	if res.Errors > 0 || res.Records != o.ndjsonRecords {
		row.Err = fmt.Errorf("%d of %d records accepted, %d failed requests (first: %v)", res.Records, o.ndjsonRecords, res.Errors, res.FirstErr)
		return row
	}
	v := load.NewVerifier(o.ndjsonRecords)
	if err := v.Settle(c.out, settleTime(o.httpFlush)); err != nil {
		row.Err = err
		return row
	}
	if row.PeakRSS, err = load.PeakRSS(c.pid()); err != nil {
		row.Err = err
		return row
	}
	row.Rate = float64(res.Records) / res.Elapsed.Seconds()
	row.P50, row.P99 = res.Latencies.Percentile(50), res.Latencies.Percentile(99)
	row.CPU = time.Duration(float64(cpu1-cpu0) * 1e6 / float64(res.Records))
	logf("NDJSON: %d records in %.2fs: %.0f records/s, p50 %s, p99 %s per batch, %.2f CPU s per 1M, verified",
		res.Records, res.Elapsed.Seconds(), row.Rate, row.P50, row.P99, row.CPU.Seconds())
	return row
}

// formRoute is one route's totals in part 3.
type formRoute struct {
	Requests int
	Elapsed  time.Duration
	CPU      time.Duration // Caddy's, over the route's phases
	Lat      load.Latencies
}

func (r *formRoute) rate() float64 { return float64(r.Requests) / r.Elapsed.Seconds() }
func (r *formRoute) cpuPer() time.Duration {
	return time.Duration(float64(r.CPU) / float64(max(r.Requests, 1)))
}

// formRow is part 3's result for one flush mode and connection mode.
type formRow struct {
	Flush, Mode     string
	Conc            int
	Ingest, Respond formRoute
	// Pairs are each round's log_ingest / respond requests/s, from its
	// two adjacent phases: their spread shows how much the machine
	// moved under the run.
	Pairs   []float64
	PeakRSS int64
	Err     error
}

// runForms alternates phases of single-record posts to log_ingest and
// of the same posts to a plain respond, on one Caddy, so that both meet
// the same machine: respond, ingest, ingest, respond, ... (ABBA, which
// cancels a linear drift).
func (o *options) runForms(ctx context.Context, flush string, keepAlive bool) (row formRow) {
	row = formRow{Flush: flush, Mode: "new connection per request (as HTTPHandler)", Conc: o.formConc}
	if keepAlive {
		row.Mode = "keep-alive"
	}
	c, stop, err := o.startHTTPCaddy(ctx, "caddy (log_ingest forms)", flush)
	if err != nil {
		row.Err = err
		return row
	}
	defer stop()
	runCtx, cancel := context.WithTimeout(ctx, o.httpTimeout)
	defer cancel()
	client := load.NewClient(o.formConc, keepAlive)
	var seq, plainSeq atomic.Int64
	phase := func(route string, d time.Duration, into *formRoute) (rate float64, err error) {
		counter := &seq
		if route == "/plain" {
			counter = &plainSeq
		}
		cpu0, err := c.cpu()
		if err != nil {
			return 0, err
		}
		res := load.PostForms(runCtx, client, load.FormSpec{URL: c.base + route, Conc: o.formConc, Duration: d, Seq: counter})
		cpu1, err := c.cpu()
		if err != nil {
			return 0, err
		}
		if res.Errors > 0 {
			return 0, fmt.Errorf("%s: %d failed requests (first: %v)", route, res.Errors, res.FirstErr)
		}
		if into != nil {
			into.Requests += res.Requests
			into.Elapsed += res.Elapsed
			into.CPU += cpu1 - cpu0
			into.Lat = append(into.Lat, res.Latencies...)
		}
		return float64(res.Requests) / res.Elapsed.Seconds(), nil
	}
	// Warm up both routes (connections, Caddy's pools, the file).
	for _, route := range []string{"/plain", "/form"} {
		if _, err := phase(route, o.formWarmup, nil); err != nil {
			row.Err = err
			return row
		}
	}
	for r := range o.formRounds {
		order := []string{"/plain", "/form"}
		if r%2 == 1 {
			order = []string{"/form", "/plain"}
		}
		var ingest, respond float64
		for _, route := range order {
			into, rate := &row.Respond, &respond
			if route == "/form" {
				into, rate = &row.Ingest, &ingest
			}
			if *rate, err = phase(route, o.formPhase, into); err != nil {
				row.Err = err
				return row
			}
		}
		row.Pairs = append(row.Pairs, ingest/respond)
	}
	v := load.NewVerifier(int(seq.Load()))
	if err := v.Settle(c.out, settleTime(row.Flush)); err != nil {
		row.Err = err
		return row
	}
	if row.PeakRSS, err = load.PeakRSS(c.pid()); err != nil {
		row.Err = err
		return row
	}
	logf("forms (flush %s, %s, %d workers): log_ingest %.0f req/s %s CPU/req, respond %.0f req/s %s CPU/req; %d records verified",
		row.Flush, row.Mode, o.formConc, row.Ingest.rate(), row.Ingest.cpuPer(), row.Respond.rate(), row.Respond.cpuPer(), v.Present)
	return row
}
