package main

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Part 5, routing at scale (issue 18): what a record costs as the
// number of log blocks and files grows. Two comparisons, each a pair of
// Caddy configs run in alternating rounds (A B, B A, A B, ...), a fresh
// Caddy per run, with the syslog load of part 1:
//
//	blocks:    one facility written by rotate (flush batch), with 1 log
//	           block against 1 + N log blocks of N other apps, each with
//	           its own file, that take none of the load; with
//	           -compare-caddy, the same pair on that build too (a build
//	           from before the per-facility loggers shows the cost that
//	           grew with unrelated blocks);
//	templates: N facilities (apps of 4 facilities each) in one mixed
//	           load, written by N log blocks with a file each against
//	           one log block whose rotate file is {app}/{facility}.log.
//
// Each round's two runs give one ratio, B / A: the median and range of
// those show how far the machine moved under the run. Every message is
// verified in the file it belongs in, exactly once.

// routingFlags are the part's options (registered here, beside the
// part, rather than in main).
type routingFlags struct {
	msgs, rounds, blocks int
}

var routingOpts = func() *routingFlags {
	r := &routingFlags{}
	flag.IntVar(&r.msgs, "routing-msgs", 1_000_000, "routing part: syslog messages per run")
	flag.IntVar(&r.rounds, "routing-rounds", 5, "routing part: rounds, each running both configs of a comparison")
	flag.IntVar(&r.blocks, "routing-blocks", 40, "routing part: the unrelated log blocks added to one, and the facilities of the template comparison")
	return r
}()

// routingSetup is one Caddy config of a comparison.
type routingSetup struct {
	label string // what the row says
	bin   string
	// caddyfile is the config of a run in dir.
	caddyfile func(dir string, admin, port int) string
	// files are where the load goes, in dir, and place(seq) the index
	// of the one message seq belongs in.
	files    func(dir string) []string
	place    func(seq int) int
	programs []string // the load's APP-NAMEs (load.SyslogSpec)
}

// routingPair is a comparison's result: A and B's runs, one of each per
// round.
type routingPair struct {
	Caddy        string
	A, B         routingSetup
	ARuns, BRuns []syslogRow
}

func (p *routingPair) err() error {
	for _, r := range append(slices.Clone(p.ARuns), p.BRuns...) {
		if r.Err != nil {
			return r.Err
		}
	}
	if len(p.ARuns) == 0 || len(p.ARuns) != len(p.BRuns) {
		return fmt.Errorf("%d and %d runs", len(p.ARuns), len(p.BRuns))
	}
	return nil
}

// ratios are each round's B / A of f.
func (p *routingPair) ratios(f func(syslogRow) float64) []float64 {
	var v []float64
	for i := range p.ARuns {
		v = append(v, f(p.BRuns[i])/f(p.ARuns[i]))
	}
	return v
}

// routingReport is part 5's result.
type routingReport struct {
	Msgs, Blocks int
	Unrelated    []routingPair // 1 vs 1+N log blocks, per Caddy build
	Templates    *routingPair
}

func (r *routingReport) failed() bool {
	if r == nil {
		return false
	}
	for _, p := range r.pairs() {
		if p.err() != nil {
			return true
		}
	}
	return false
}

func (r *routingReport) pairs() []*routingPair {
	var ps []*routingPair
	for i := range r.Unrelated {
		ps = append(ps, &r.Unrelated[i])
	}
	if r.Templates != nil {
		ps = append(ps, r.Templates)
	}
	return ps
}

// rotateBlock is the rotate writer of every file in this part: the
// fast path, no rotation or compression in the way.
const rotateBlock = `output rotate %s {
			max_size 1000GiB
			compress none
			flush batch
		}`

func (o *options) runRouting(ctx context.Context) *routingReport {
	ro := routingOpts
	rep := &routingReport{Msgs: ro.msgs, Blocks: ro.blocks}
	for _, v := range o.caddyVariants() {
		rep.Unrelated = append(rep.Unrelated, o.unrelatedBlocksPair(v, ro.blocks))
	}
	tp := o.templatePair(ro.blocks)
	rep.Templates = &tp
	for r := range ro.rounds {
		for _, p := range rep.pairs() {
			type run struct {
				s    routingSetup
				into *[]syslogRow
			}
			order := []run{{p.A, &p.ARuns}, {p.B, &p.BRuns}}
			if r%2 == 1 {
				order[0], order[1] = order[1], order[0]
			}
			for _, x := range order {
				if ctx.Err() != nil {
					return rep
				}
				logf("routing round %d/%d: %s, %s", r+1, ro.rounds, p.Caddy, x.s.label)
				*x.into = append(*x.into, o.runSyslog(ctx, x.s.target(ro.msgs)))
			}
		}
	}
	return rep
}

// unrelatedBlocksPair: the load's one facility, benchapp, written by one
// log block; then the same with n apps more, each with its own log block
// and file, which the load never names. Their files are verified to
// stay empty.
func (o *options) unrelatedBlocksPair(v caddyVariant, n int) routingPair {
	others := make([]string, n)
	for i := range others {
		others[i] = fmt.Sprintf("other%02d", i)
	}
	config := func(unrelated []string) func(dir string, admin, port int) string {
		return func(dir string, admin, port int) string {
			var apps, logs strings.Builder
			for _, app := range unrelated {
				fmt.Fprintf(&apps, "\t\tfacility %s\n", app)
				fmt.Fprintf(&logs, "\tlog %s {\n\t\tinclude applog.%s\n\t\t%s\n\t\tformat json\n\t}\n",
					app, app, fmt.Sprintf(rotateBlock, strconv.Quote(filepath.Join(dir, "other", app+".log"))))
			}
			return fmt.Sprintf(`{
	admin 127.0.0.1:%d
	applog {
		syslog tcp/127.0.0.1:%d
		facility benchapp
%s		max_clock_skew 87600h
	}
	log bench {
		include applog.benchapp
		%s
		format json
	}
%s}
`, admin, port, apps.String(), fmt.Sprintf(rotateBlock, strconv.Quote(filepath.Join(dir, "bench.log"))), logs.String())
		}
	}
	// Both sides follow the same files, so that the verifier costs the
	// same beside either Caddy.
	files := func(dir string) []string {
		fs := []string{filepath.Join(dir, "bench.log")}
		for _, app := range others {
			fs = append(fs, filepath.Join(dir, "other", app+".log"))
		}
		return fs
	}
	place := func(int) int { return 0 }
	programs := []string{"benchapp"}
	return routingPair{
		Caddy: v.label,
		A:     routingSetup{label: "1 log block", bin: v.bin, caddyfile: config(nil), files: files, place: place, programs: programs},
		B:     routingSetup{label: fmt.Sprintf("1 + %d unrelated log blocks", n), bin: v.bin, caddyfile: config(others), files: files, place: place, programs: programs},
	}
}

// templatePair: n facilities, facility k being f<k%4> of app<k/4>, in
// one load where message seq comes from facility seq%n; written by n log
// blocks, each with its own file, against one log block writing
// {app}/{facility}.log. Both write the same files.
func (o *options) templatePair(n int) routingPair {
	programs := make([]string, n)
	var appNames []string
	for k := range programs {
		if k%4 == 0 {
			appNames = append(appNames, fmt.Sprintf("app%d", k/4))
		}
		programs[k] = fmt.Sprintf("app%d.f%d", k/4, k%4)
	}
	global := func(admin, port int, logs string) string {
		var decl strings.Builder
		for _, app := range appNames {
			fmt.Fprintf(&decl, "\t\tfacility %s\n", app)
		}
		return fmt.Sprintf(`{
	admin 127.0.0.1:%d
	applog {
		syslog tcp/127.0.0.1:%d
%s		max_clock_skew 87600h
	}
%s}
`, admin, port, decl.String(), logs)
	}
	file := func(dir, program string) string {
		app, facility, _ := strings.Cut(program, ".")
		return filepath.Join(dir, app, facility+".log")
	}
	blocks := func(dir string, admin, port int) string {
		var logs strings.Builder
		for k, p := range programs {
			fmt.Fprintf(&logs, "\tlog f%02d {\n\t\tinclude applog.%s\n\t\t%s\n\t\tformat json\n\t}\n",
				k, p, fmt.Sprintf(rotateBlock, strconv.Quote(file(dir, p))))
		}
		return global(admin, port, logs.String())
	}
	// The one block takes all of applog, as a hub writing a file per
	// app and facility would (the receivers' own entries, which have no
	// app, would go to the template's fallback file).
	template := func(dir string, admin, port int) string {
		logs := fmt.Sprintf("\tlog routed {\n\t\tinclude applog\n\t\t%s\n\t\tformat json\n\t}\n",
			fmt.Sprintf(rotateBlock, strconv.Quote(filepath.Join(dir, "{app}", "{facility}.log"))))
		return global(admin, port, logs)
	}
	files := func(dir string) []string {
		fs := make([]string, len(programs))
		for k, p := range programs {
			fs[k] = file(dir, p)
		}
		return fs
	}
	place := func(seq int) int { return seq % n }
	return routingPair{
		Caddy: "caddy-applog",
		A:     routingSetup{label: fmt.Sprintf("%d log blocks, a `rotate` file each", n), bin: o.caddy, caddyfile: blocks, files: files, place: place, programs: programs},
		B:     routingSetup{label: "1 log block (`include applog`), `rotate …/{app}/{facility}.log`", bin: o.caddy, caddyfile: template, files: files, place: place, programs: programs},
	}
}

// target is s as part 1 runs a daemon: a new Caddy with s's config,
// sent msgs messages, its files followed until every one is there.
func (s routingSetup) target(msgs int) syslogTarget {
	return syslogTarget{
		name: "caddy (" + s.label + ")", msgs: msgs, programs: s.programs, files: s.files, place: s.place,
		start: func(ctx context.Context, dir, _ string, port int) (*daemon, error) {
			admin, err := freePort()
			if err != nil {
				return nil, err
			}
			return startCaddy(ctx, s.bin, "caddy ("+s.label+")", dir, s.caddyfile(dir, admin, port), port)
		},
	}
}

// markdown writes part 5's section.
func (r *routingReport) markdown(p func(format string, args ...any), o *options) {
	p("\n### 5. Routing: unrelated log blocks, and a path template against a log block per facility\n\n")
	p("%s RFC 5424 messages of %d bytes over %d TCP connections to the `syslog` receiver per run, a new Caddy for each, "+
		"every file written by `rotate` with `flush batch`; %d round(s), each running both configs of a comparison in turn (A B, then B A). "+
		"Time runs from the first byte sent to the last line found; CPU is Caddy's utime+stime. "+
		"Each message is verified in the file it belongs in, exactly once, and unrelated files stay empty. "+
		"Each round's two runs give one ratio; the median and range of those show how far the machine moved.\n\n",
		thousands(r.Msgs), o.syslogSize, o.syslogConns, routingOpts.rounds)

	p("One facility (`benchapp`), its log block alone, then with %d more apps, each with its own log block and file, that the load never names", r.Blocks)
	if o.compareCaddy != "" {
		p("; `caddy-applog B` is the build given with `-compare-caddy` (`%s`)", filepath.Base(o.compareCaddy))
	}
	p(":\n\n")
	p("| Caddy | log blocks | messages/s | range over rounds | CPU s per 1M messages | peak RSS | all messages verified |\n|---|---|--:|--:|--:|--:|---|\n")
	for i := range r.Unrelated {
		r.Unrelated[i].rows(p)
	}
	p("\n| Caddy | messages/s, 1 + %d / 1 | median and range of the rounds' ratios | CPU per message | median and range of the rounds' ratios | goal |\n|---|--:|--:|--:|--:|---|\n", r.Blocks)
	for i := range r.Unrelated {
		pr := &r.Unrelated[i]
		if pr.err() != nil {
			continue
		}
		rate, pairs, cpu, cpuPairs := pr.summary()
		p("| %s | %.2f | %s | %.2f | %s | ≥ 0.95 |\n", pr.Caddy, rate, pairSpread(pairs), cpu, pairSpread(cpuPairs))
	}

	if t := r.Templates; t != nil {
		p("\n%d facilities (apps `app0`… of 4 facilities `f0`…`f3` each) in one load, facility by facility in turn on each connection, "+
			"into a file per facility, `<dir>/<app>/<facility>.log`: %s, against %s:\n\n", r.Blocks, t.A.label, t.B.label)
		p("| Caddy | writing | records/s | range over rounds | CPU µs per record | peak RSS | all records verified |\n|---|---|--:|--:|--:|--:|---|\n")
		t.rows(p)
		if t.err() == nil {
			rate, pairs, cpu, cpuPairs := t.summary()
			p("\n| template / %d blocks | records/s | median and range of the rounds' ratios | CPU per record | median and range of the rounds' ratios |\n|---|--:|--:|--:|--:|\n", r.Blocks)
			p("| %s | %.2f | %s | %.2f | %s |\n", t.Caddy, rate, pairSpread(pairs), cpu, pairSpread(cpuPairs))
		}
	}
}

// rows writes a pair's two rows: each side's median over rounds. CPU
// seconds per million messages are also µs per message.
func (pr *routingPair) rows(p func(format string, args ...any)) {
	if err := pr.err(); err != nil {
		p("| %s | %s / %s | %s | | | | no |\n", pr.Caddy, pr.A.label, pr.B.label, failure(err))
		return
	}
	for _, side := range []struct {
		label string
		runs  []syslogRow
	}{{pr.A.label, pr.ARuns}, {pr.B.label, pr.BRuns}} {
		m := medianSyslog(side.runs)
		p("| %s | %s | %s | %s | %.2f | %s | yes |\n", pr.Caddy, side.label, thousands(int(m.Rate)), spread(m.Rates), m.CPU.Seconds(), mib(m.PeakRSS))
	}
}

// summary is B / A of the medians' rates and CPU per message, each with
// the rounds' ratios. On a busy machine, CPU per message moves less than
// throughput.
func (pr *routingPair) summary() (rate float64, pairs []float64, cpu float64, cpuPairs []float64) {
	a, b := medianSyslog(pr.ARuns), medianSyslog(pr.BRuns)
	return b.Rate / a.Rate, pr.ratios(func(x syslogRow) float64 { return x.Rate }),
		float64(b.CPU) / float64(a.CPU), pr.ratios(func(x syslogRow) float64 { return float64(x.CPU) })
}
