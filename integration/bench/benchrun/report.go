package main

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// report collects the results of every part.
type report struct {
	opts    *options
	date    time.Time
	machine string
	syslog  []syslogRow
	ndjson  *ndjsonRow
	forms   []formRow
	gobench []goBenchRow
	routing *routingReport
	access  *accessResult
	forward *forwardReport
}

func (r *report) failed() bool {
	if r.access.failed() || r.forward.failed() {
		return true
	}
	for _, s := range r.syslog {
		if s.Err != nil {
			return true
		}
	}
	if r.ndjson != nil && r.ndjson.Err != nil {
		return true
	}
	for _, f := range r.forms {
		if f.Err != nil {
			return true
		}
	}
	for _, g := range r.gobench {
		if g.Err != nil {
			return true
		}
	}
	return r.routing.failed()
}

// failure is a failed row's cell: the reason on one line.
func failure(err error) string {
	msg := strings.Join(strings.Fields(err.Error()), " ")
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	return "**FAILED**: " + strings.ReplaceAll(msg, "|", `\|`)
}

func (r *report) markdown() string {
	o := r.opts
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("\n## caddy-applog benchmarks, %s\n\n", r.date.UTC().Format("2006-01-02 15:04 UTC"))
	p("Machine: %s. Caddy %s.\n", r.machine, o.caddyVersion)

	if len(r.syslog) > 0 {
		p("\n### 1. Syslog over TCP into a file\n\n")
		p("%s RFC 5424 messages of %d bytes, octet-counted, over %d TCP connections from a Go load generator, to each daemon in turn; "+
			"median of %d round(s). Time runs from the first byte sent to the last line found in the file; "+
			"CPU is the daemon's utime+stime; every file is checked for each sequence number exactly once.\n\n",
			thousands(o.syslogMsgs), o.syslogSize, o.syslogConns, o.syslogRounds)
		p("| daemon | version | messages/s | range over rounds | CPU s per 1M messages | peak RSS | bytes written per message | all messages verified |\n")
		p("|---|---|--:|--:|--:|--:|--:|---|\n")
		for _, s := range r.syslog {
			if s.Err != nil {
				p("| %s | %s | %s | | | | | no |\n", s.Name, s.Version, failure(s.Err))
				continue
			}
			p("| %s | %s | %s | %s | %.2f | %s | %.0f | yes |\n", s.Name, s.Version, thousands(int(s.Rate)), spread(s.Rates), s.CPU.Seconds(), mib(s.PeakRSS), s.OutBytes)
		}
		p("\n| ratio | messages/s | CPU per message |\n|---|--:|--:|\n")
		for _, c := range r.syslog {
			if !strings.HasPrefix(c.Name, "caddy-applog (") || c.Err != nil {
				continue
			}
			for _, other := range r.syslog {
				if other.Err != nil {
					continue
				}
				short := other.Name
				switch {
				case other.Name == strings.Replace(c.Name, "caddy-applog", "caddy-applog B", 1):
					short = other.Name
				case strings.HasPrefix(other.Name, "caddy"):
					continue
				}
				p("| %s / %s | %.2f | %.2f |\n", c.Name, short, c.Rate/other.Rate, c.CPU.Seconds()/other.CPU.Seconds())
			}
		}
	}

	if n := r.ndjson; n != nil {
		p("\n### 2. NDJSON batches → `log_ingest` → `rotate` (`flush %s`)\n\n", o.httpFlush)
		p("%s slog-style records in batches of %d, posted by %d concurrent keep-alive clients; latency per batch as the client sees it; every record verified in the file.\n\n",
			thousands(n.Records), n.Batch, n.Conc)
		p("| records/s | p50 per batch | p99 per batch | CPU s per 1M records | peak RSS | all records verified |\n|--:|--:|--:|--:|--:|---|\n")
		if n.Err != nil {
			p("| %s | | | | | no |\n", failure(n.Err))
		} else {
			p("| %s | %s | %s | %.2f | %s | yes |\n", thousands(int(n.Rate)), ms(n.P50), ms(n.P99), n.CPU.Seconds(), mib(n.PeakRSS))
		}
	}

	if len(r.forms) > 0 {
		p("\n### 3. Single-record posts (Python `HTTPHandler`'s requests) vs a plain `respond`\n\n")
		p("The form-encoded LogRecord HTTPHandler posts, one per request, by %d concurrent clients, to `log_ingest` (written by `rotate`) "+
			"and the same request to `respond` on the same Caddy, in %d alternating phases of %s per route, once per flush mode of `rotate`: "+
			"with `flush batch` each record is written within microseconds, by a write of its own unless others gathered meanwhile; "+
			"with an interval the writes are amortized, so those rows measure `log_ingest` itself. "+
			"Cost is the extra time (1/throughput) and extra Caddy CPU per request of `log_ingest` relative to `respond`; the goal is under 10%%. "+
			"Each round's two adjacent phases give one ratio; the median and range of those show how far the machine itself moved.\n\n",
			o.formConc, o.formRounds, o.formPhase)
		p("| `rotate` | connections | route | requests/s | Caddy CPU µs/request | p50 | p99 |\n|---|---|---|--:|--:|--:|--:|\n")
		for _, f := range r.forms {
			if f.Err != nil {
				p("| `flush %s` | %s | | %s | | | |\n", f.Flush, f.Mode, failure(f.Err))
				continue
			}
			for _, rt := range []struct {
				name string
				v    *formRoute
			}{{"`log_ingest`", &f.Ingest}, {"`respond`", &f.Respond}} {
				p("| `flush %s` | %s | %s | %s | %.1f | %s | %s |\n", f.Flush, f.Mode, rt.name, thousands(int(rt.v.rate())),
					float64(rt.v.cpuPer())/1e3, ms(rt.v.Lat.Percentile(50)), ms(rt.v.Lat.Percentile(99)))
			}
		}
		p("\n| `rotate` | connections | `log_ingest` / `respond` requests/s | extra time per request | median and range of the rounds' ratios | extra CPU per request | peak RSS | records verified |\n|---|---|--:|--:|--:|--:|--:|---|\n")
		for _, f := range r.forms {
			if f.Err != nil {
				continue
			}
			ratio := f.Ingest.rate() / f.Respond.rate()
			extraCPU := float64(f.Ingest.cpuPer())/float64(f.Respond.cpuPer()) - 1
			p("| `flush %s` | %s | %.2f | %+.0f%% | %s | %+.0f%% | %s | yes |\n", f.Flush, f.Mode, ratio, (1/ratio-1)*100, pairSpread(f.Pairs), extraCPU*100, mib(f.PeakRSS))
		}
	}

	if len(r.gobench) > 0 {
		p("\n### 4. Go benchmarks (`go test -bench`, `-benchtime %s`)\n\n", o.goBenchTime)
		p("| benchmark | A | ns (A) | B | ns (B) | A / B | allocs (A, B) |\n|---|---|--:|---|--:|--:|---|\n")
		for _, g := range r.gobench {
			if g.Err != nil {
				p("| %s | %s | %s | %s | | | |\n", g.Name, g.A, failure(g.Err), g.B)
				continue
			}
			p("| %s | %s | %.0f | %s | %.0f | %.2f | %.2g, %.2g |\n", g.Name, g.A, g.AVal, g.B, g.BVal, g.AVal/g.BVal, g.AAllocs, g.BAllocs)
		}
	}
	if r.routing != nil {
		r.routing.markdown(p, o)
	}
	if r.access != nil {
		r.access.markdown(p)
	}
	if r.forward != nil {
		r.forward.markdown(p, o)
	}
	p("\n")
	return b.String()
}

// spread is the lowest and highest of a row's rounds.
func spread(rates []float64) string {
	if len(rates) < 2 {
		return "–"
	}
	return thousands(int(slices.Min(rates))) + "–" + thousands(int(slices.Max(rates)))
}

// pairSpread is the median of per-round ratios and their range.
func pairSpread(pairs []float64) string {
	if len(pairs) == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f (%.2f–%.2f)", median(pairs), slices.Min(pairs), slices.Max(pairs))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }

// thousands writes n with thin separators: 1,234,567.
func thousands(n int) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
