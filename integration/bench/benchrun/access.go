package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddy-applog/caddy-applog/integration/bench/internal/load"
)

// The access part: one Caddy serving the same respond on five sites
// (host names on one port), each site with a log block of its own, in
// each access log configuration, against the same sites without access
// logs; and the same again with a Caddy built with Caddy's logging.go
// patched (docs/upstream/caddy-logging-filteringcore.patch), to show
// what the logging core costs around the plugin's encoder and writer.

// accessOpts are the part's flags, registered here to keep main.go's
// list short; main's -quick sets the phase, round and warm-up lengths.
type accessOpts struct {
	sites, conns int
	rounds       int
	phase        time.Duration
	warmup       time.Duration
	patch        string
	configs      string
}

var accessFlags = func() *accessOpts {
	a := &accessOpts{}
	flag.IntVar(&a.sites, "access-sites", 5, "access part: sites, each with its own log block")
	flag.IntVar(&a.conns, "access-conns", 8, "access part: keep-alive connections of the GET load")
	flag.IntVar(&a.rounds, "access-rounds", 5, "access part: rounds; each runs a phase of every configuration, in an order that turns each round")
	flag.DurationVar(&a.phase, "access-phase", 3*time.Second, "access part: length of one phase")
	flag.DurationVar(&a.warmup, "access-warmup", time.Second, "access part: warm-up of each Caddy before the rounds")
	flag.StringVar(&a.patch, "access-patch", "docs/upstream/caddy-logging-filteringcore.patch",
		"access part: patch to Caddy's module source (relative to -repo) for the second build; none: only the shipped build")
	flag.StringVar(&a.configs, "access-configs", "none,json-file,combined-rotate,combined-rotate-default-access,json-rotate",
		"access part: log configurations: none, json-file, combined-file, combined-rotate, combined-rotate-default-access, json-rotate")
	return a
}()

// accessConfig is a log block put in every site ("" for none); OUT is
// replaced with the site's file. global goes into the global options.
type accessConfig struct{ key, name, log, global string }

var accessConfigs = []accessConfig{
	{"none", "no access log", "", ""},
	{"json-file", "`json` + `file`", `log {
		output file OUT {
			roll_size 1000GiB
		}
		format json
	}`, ""},
	{"combined-file", "`access combined` + `file`", `log {
		output file OUT {
			roll_size 1000GiB
		}
		format access combined
	}`, ""},
	{"combined-rotate", "`access combined` + `rotate` (`flush batch`)", `log {
		output rotate OUT {
			max_size 1000GiB
			compress none
			flush batch
		}
		format access combined
	}`, ""},
	// Caddy tees each request's logger to the default log too, whose
	// json encoder marshals the request although it takes no access
	// entry; the access encoder in its place only keeps a reference, and
	// writes the default log's own entries with its json fallback, as
	// before.
	{"combined-rotate-default-access", "`access combined` + `rotate` (`flush batch`), default log `format access`", `log {
		output rotate OUT {
			max_size 1000GiB
			compress none
			flush batch
		}
		format access combined
	}`, `log {
		format access
	}`},
	{"json-rotate", "`json` + `rotate` (`flush batch`)", `log {
		output rotate OUT {
			max_size 1000GiB
			compress none
			flush batch
		}
		format json
	}`, ""},
}

// accessTarget is one Caddy (a build in a configuration) and its totals.
type accessTarget struct {
	build, config string
	short         string // build and configuration, for the profile table
	bin           string
	log, global   string
	d             *daemon
	admin, port   int
	dir           string
	hosts         []string
	files         []string
	perHost       []int // requests answered, warm-up included, per site
	requests      int   // in the measured phases
	elapsed       time.Duration
	cpu           time.Duration
	rates         []float64 // per round
	cpus          []float64 // per round, CPU per request
	profile       string    // CPU profile, with -pprof
	profReqs      int       // requests during the profile
	err           error
}

// accessRow is a target's result.
type accessRow struct {
	Build, Config string
	Short         string
	Rate          float64
	CPUPer        time.Duration
	Ratios        []float64 // per round: this rate / the same build's rate without access logs
	CPURatios     []float64 // per round: the same build's CPU per request without access logs / this one's
	Lines         int       // verified in the sites' files
	HasLog        bool
	Profile       string
	ProfReqs      int
	Bin           string
	Err           error
}

// accessResult is the part's result.
type accessResult struct {
	opts      *accessOpts
	breakdown *breakdown
	rows      []accessRow
	err       error // the part could not run (the patched build failed)
	patch     string
}

func (o *options) runAccess(ctx context.Context) *accessResult {
	a := accessFlags
	res := &accessResult{opts: a}
	var configs []accessConfig
	for _, key := range strings.Split(a.configs, ",") {
		i := slices.IndexFunc(accessConfigs, func(c accessConfig) bool { return c.key == key })
		if i < 0 {
			res.err = fmt.Errorf("-access-configs: unknown configuration %q", key)
			return res
		}
		configs = append(configs, accessConfigs[i])
	}
	if configs[0].key != "none" {
		res.err = errors.New("-access-configs must start with none: every ratio is to it")
		return res
	}
	builds := []struct{ name, short, bin string }{{"Caddy " + o.caddyVersion, "", o.caddy}}
	if a.patch != "none" {
		patch := a.patch
		if !filepath.IsAbs(patch) {
			patch = filepath.Join(o.repo, patch)
		}
		res.patch = a.patch
		logf("access: building Caddy with %s", a.patch)
		bin, err := o.buildPatchedCaddy(ctx, patch)
		if err != nil {
			res.err = err
			return res
		}
		builds = append(builds, struct{ name, short, bin string }{"patched core", "patched ", bin})
	}

	var targets []*accessTarget
	defer func() {
		for _, t := range targets {
			if t.d != nil {
				t.d.stop()
			}
			os.RemoveAll(t.dir)
		}
	}()
	for _, b := range builds {
		for _, c := range configs {
			t := &accessTarget{build: b.name, config: c.name, short: b.short + c.key, bin: b.bin, log: c.log, global: c.global}
			targets = append(targets, t)
			if err := o.startAccessCaddy(ctx, t, a.sites); err != nil {
				t.err = err
			}
		}
	}
	spec := func(t *accessTarget, d time.Duration) load.GetSpec {
		return load.GetSpec{Addr: fmt.Sprintf("127.0.0.1:%d", t.port), Hosts: t.hosts, Path: "/", Conns: a.conns, Duration: d}
	}
	phase := func(t *accessTarget, d time.Duration, measured bool) {
		if t.err != nil || ctx.Err() != nil {
			return
		}
		cpu0, err := t.d.cpu()
		if err != nil {
			t.err = err
			return
		}
		r := load.Get(ctx, spec(t, d))
		cpu1, err := t.d.cpu()
		if err != nil {
			t.err = err
			return
		}
		for h, n := range r.PerHost {
			t.perHost[h] += n
		}
		if r.Errors > 0 {
			t.err = fmt.Errorf("%d failed requests (first: %v)", r.Errors, r.FirstErr)
			return
		}
		if measured {
			t.requests += r.Requests
			t.elapsed += r.Elapsed
			t.cpu += cpu1 - cpu0
			t.rates = append(t.rates, float64(r.Requests)/r.Elapsed.Seconds())
			t.cpus = append(t.cpus, float64(cpu1-cpu0)/float64(max(r.Requests, 1)))
		}
	}
	for _, t := range targets {
		phase(t, a.warmup, false)
	}
	for r := range a.rounds {
		// Turn the order each round and reverse it every other round,
		// so that no configuration always follows the same one.
		order := slices.Clone(targets)
		k := r % len(order)
		order = append(order[k:], order[:k]...)
		if r%2 == 1 {
			slices.Reverse(order)
		}
		logf("access round %d/%d", r+1, a.rounds)
		for _, t := range order {
			phase(t, a.phase, true)
		}
	}
	if o.pprofDir != "" {
		for _, t := range targets {
			o.profileAccess(ctx, t, spec)
		}
	}

	// Every request answered must be exactly one line in its site's file.
	time.Sleep(settleTime("batch"))
	for _, t := range targets {
		row := accessRow{Build: t.build, Config: t.config, Short: t.short, HasLog: t.log != "", Profile: t.profile, ProfReqs: t.profReqs, Bin: t.bin, Err: t.err}
		if row.Err == nil && t.log != "" {
			row.Lines, row.Err = verifyAccessFiles(t)
		}
		if row.Err == nil && t.requests > 0 {
			row.Rate = float64(t.requests) / t.elapsed.Seconds()
			row.CPUPer = t.cpu / time.Duration(t.requests)
		}
		res.rows = append(res.rows, row)
	}
	// Ratios, round by round, to the same build without access logs.
	for i, t := range targets {
		base := targets[i-i%len(configs)]
		if res.rows[i].Err != nil || len(base.rates) != len(t.rates) {
			continue
		}
		for r := range t.rates {
			res.rows[i].Ratios = append(res.rows[i].Ratios, t.rates[r]/base.rates[r])
			res.rows[i].CPURatios = append(res.rows[i].CPURatios, base.cpus[r]/t.cpus[r])
		}
	}
	if o.pprofDir != "" {
		res.breakdown = profileBreakdown(ctx, res.rows)
	}
	for _, row := range res.rows {
		if row.Err == nil {
			logf("access: %s, %s: %.0f requests/s, %.1f µs CPU/request, / no log %s, CPU %s", row.Build, row.Config, row.Rate,
				float64(row.CPUPer)/1e3, pairSpread(row.Ratios), pairSpread(row.CPURatios))
		}
	}
	return res
}

// accessCaddyfile is the sites' config: the same respond on each, and,
// per site, the log block of the configuration.
func accessCaddyfile(admin, port int, hosts, files []string, log, global string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "{\n\tadmin 127.0.0.1:%d\n", admin)
	if global != "" {
		fmt.Fprintf(&b, "\t%s\n", global)
	}
	b.WriteString("}\n")
	for i, h := range hosts {
		fmt.Fprintf(&b, "\nhttp://%s {\n\tbind 127.0.0.1\n\trespond \"hello from %s\" 200\n", h, h)
		if log != "" {
			fmt.Fprintf(&b, "\t%s\n", strings.ReplaceAll(log, "OUT", strconv.Quote(files[i])))
		}
		b.WriteString("}\n")
	}
	return b.String()
}

func (o *options) startAccessCaddy(ctx context.Context, t *accessTarget, sites int) error {
	dir, err := os.MkdirTemp(o.work, "access-")
	if err != nil {
		return err
	}
	t.dir = dir
	admin, err1 := freePort()
	port, err2 := freePort()
	if err1 != nil || err2 != nil {
		return fmt.Errorf("no free port: %v %v", err1, err2)
	}
	t.admin, t.port = admin, port
	for i := range sites {
		t.hosts = append(t.hosts, fmt.Sprintf("site%d.test:%d", i+1, port))
		t.files = append(t.files, filepath.Join(dir, fmt.Sprintf("site%d.log", i+1)))
	}
	t.perHost = make([]int, sites)
	t.d, err = startCaddy(ctx, t.bin, "caddy ("+t.build+", "+t.config+")", dir, accessCaddyfile(admin, port, t.hosts, t.files, t.log, t.global), port)
	return err
}

// verifyAccessFiles checks that each site's file holds one line per
// request answered by that site, each line a GET request's entry.
func verifyAccessFiles(t *accessTarget) (int, error) {
	total := 0
	for i, path := range t.files {
		data, err := os.ReadFile(path)
		if err != nil {
			return 0, err
		}
		lines, gets := bytes.Count(data, []byte("\n")), bytes.Count(data, []byte(`"GET`))
		if lines != t.perHost[i] || gets != t.perHost[i] {
			return 0, fmt.Errorf("%s: %d lines (%d with a GET) for %d requests answered", filepath.Base(path), lines, gets, t.perHost[i])
		}
		total += lines
	}
	return total, nil
}

// profileAccess records a CPU profile of t's Caddy under the same load,
// and the requests it answered meanwhile (outside the measured rounds).
func (o *options) profileAccess(ctx context.Context, t *accessTarget, spec func(*accessTarget, time.Duration) load.GetSpec) {
	if t.err != nil || ctx.Err() != nil {
		return
	}
	name := strings.NewReplacer(" ", "-", "`", "", "(", "", ")", "", "+", "", ",", "", ".", "").Replace(t.build + "-" + t.config)
	path := filepath.Join(o.pprofDir, "caddy-access-"+strings.ReplaceAll(name, "--", "-")+".cpu.pprof")
	done := make(chan load.GetResult, 1)
	loadCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		done <- load.Get(loadCtx, spec(t, time.Duration(o.pprofSeconds)*time.Second+500*time.Millisecond))
	}()
	url := fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/profile?seconds=%d", t.admin, o.pprofSeconds)
	err := fetch(ctx, url, path)
	r := <-done
	for h, n := range r.PerHost {
		t.perHost[h] += n
	}
	if err != nil {
		logf("profile of %s, %s: %v", t.build, t.config, err)
		return
	}
	// The load ran half a second longer than the profile.
	t.profile, t.profReqs = path, int(float64(r.Requests)*float64(o.pprofSeconds)/r.Elapsed.Seconds())
	logf("CPU profile of Caddy (%s, %s): %s (go tool pprof -top %s %s)", t.build, t.config, path, t.bin, path)
}

// buildPatchedCaddy builds cmd/caddy with Caddy's module replaced by a
// patched copy (patchedSource), through a go.work of its own in the
// scratch folder: the repository's go.mod and go.work are not touched.
func (o *options) buildPatchedCaddy(ctx context.Context, patch string) (string, error) {
	gocmd := func(dir string, env []string, args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out)), nil
	}
	mod, err := gocmd(o.repo, nil, "list", "-m", "-f", "{{.Dir}} {{.Version}} {{.GoVersion}}", "github.com/caddyserver/caddy/v2")
	if err != nil {
		return "", err
	}
	f := strings.Fields(mod)
	if len(f) != 3 {
		return "", fmt.Errorf("go list -m: unexpected %q", mod)
	}
	srcDir, version := f[0], f[1]
	work, err := os.MkdirTemp(o.work, "caddy-patched-")
	if err != nil {
		return "", err
	}
	src, err := patchedSource(ctx, srcDir, version, patch)
	if err != nil {
		return "", err
	}
	goVersion, err := gocmd(o.repo, nil, "env", "GOVERSION")
	if err != nil {
		return "", err
	}
	workFile := filepath.Join(work, "go.work")
	text := fmt.Sprintf("go %s\n\nuse %s\n\nreplace github.com/caddyserver/caddy/v2 %s => %s\n",
		strings.TrimPrefix(goVersion, "go"), strconv.Quote(o.repo), version, strconv.Quote(src))
	if err := os.WriteFile(workFile, []byte(text), 0o644); err != nil {
		return "", err
	}
	bin := filepath.Join(work, "caddy-patched")
	if _, err := gocmd(o.repo, []string{"GOWORK=" + workFile, "GOFLAGS="}, "build", "-o", bin, "./cmd/caddy"); err != nil {
		return "", err
	}
	return bin, nil
}

// patchedSource returns a copy of Caddy's module source (srcDir) with
// patch applied. The copy is kept in the user's cache folder, named by
// the version and the patch's hash, because Go's build cache keys
// packages by their folder: a copy in the same place lets the next run
// reuse what this one compiled.
func patchedSource(ctx context.Context, srcDir, version, patch string) (string, error) {
	text, err := os.ReadFile(patch)
	if err != nil {
		return "", err
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(text)
	parent := filepath.Join(cache, "caddy-applog", "caddy-patched")
	dir := filepath.Join(parent, fmt.Sprintf("%s-%x", version, sum[:6]))
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(parent, "new-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	src := filepath.Join(tmp, "caddy")
	if err := os.CopyFS(src, os.DirFS(srcDir)); err != nil {
		return "", fmt.Errorf("copying Caddy's module source: %w", err)
	}
	cmd := exec.CommandContext(ctx, "patch", "-p1", "--batch", "--forward", "-d", src, "-i", patch)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("patch -p1 -i %s: %w\n%s", patch, err, out)
	}
	// Another run may have put the same copy in place meanwhile.
	if err := os.Rename(src, dir); err != nil {
		if _, statErr := os.Stat(filepath.Join(dir, "go.mod")); statErr != nil {
			return "", err
		}
	}
	return dir, nil
}

func (r *accessResult) failed() bool {
	if r == nil {
		return false
	}
	if r.err != nil {
		return true
	}
	for _, row := range r.rows {
		if row.Err != nil {
			return true
		}
	}
	return false
}

func (r *accessResult) markdown(p func(string, ...any)) {
	a := r.opts
	p("\n### 6. Access logs: five sites, a `log` block each\n\n")
	p("One Caddy serves the same `respond` on %d sites (host names on one port), each with its own `log` block in the configuration of the row; "+
		"%d keep-alive connections send GET requests with a browser's headers, cycling through the sites; "+
		"%d rounds of %s per Caddy, the order turned each round. The ratios are, round by round, requests/s over those of the same build without access logs, "+
		"and that build's Caddy CPU per request without access logs over this one's (which other loads on the machine move less); median and range over the rounds. "+
		"Every request answered is checked to be one line in its site's file.", a.sites, a.conns, a.rounds, a.phase)
	if r.patch != "" {
		p(" \"patched core\" is Caddy built with `%s` (bench-only `replace`).", r.patch)
	}
	p("\n\n")
	if r.err != nil {
		p("%s\n", failure(r.err))
		return
	}
	p("| Caddy | access log | requests/s | Caddy CPU µs/request | requests/s / no access log | CPU: no access log / this | lines verified |\n|---|---|--:|--:|--:|--:|---|\n")
	for _, row := range r.rows {
		if row.Err != nil {
			p("| %s | %s | %s | | | | no |\n", row.Build, row.Config, failure(row.Err))
			continue
		}
		verified := "–"
		if row.HasLog {
			verified = "yes, " + thousands(row.Lines)
		}
		p("| %s | %s | %s | %.1f | %s | %s | %s |\n", row.Build, row.Config, thousands(int(row.Rate)), float64(row.CPUPer)/1e3,
			pairSpread(row.Ratios), pairSpread(row.CPURatios), verified)
	}
	r.profileTable(p)
}

// profPart is a share of Caddy's CPU in a profile: the samples whose
// stack goes through a function matching focus and none matching
// ignore (go tool pprof's -focus and -ignore).
type profPart struct{ name, owner, focus, ignore string }

var accessProfParts = []profPart{
	{"access logging in the request path (`Server.logRequest`, all below but the `rotate` flusher)", "", `caddyhttp\.\(\*Server\)\.logRequest$`, ""},
	{"the request's logger: each teed log's encoder cloned with the request (`ioCore.With`)", "Caddy core", `zapcore\.\(\*ioCore\)\.With$`, ""},
	{"… of which Caddy's `json` encoder marshaling the request (the default log's, and each site's with `format json`)", "Caddy core", `zapcore\.\(\*jsonEncoder\)`, `EncodeEntry$`},
	{"… of which the `access` encoder's clone", "plugin", `encoders/access\.`, `EncodeEntry$`},
	{"logger names and filters (`wrapLogger`, `Logger.Named`, `loggerAllowed`)", "Caddy core", `wrapLogger$|zap\.\(\*Logger\)\.Named$|loggerAllowed$`, ""},
	{"encoding the entry: `json`", "Caddy", `zapcore\.\(\*jsonEncoder\)\.EncodeEntry$`, ""},
	{"encoding the entry: `access`", "plugin", `encoders/access\.\(\*encoder\)\.EncodeEntry$`, ""},
	{"writing: `file` (timberjack)", "Caddy", `timberjack`, ""},
	{"writing: `rotate`, its flusher included", "plugin", `writers/rotate\.`, ""},
	{"garbage collection and allocation, all of Caddy's", "", `runtime\.(gcBgMarkWorker|gcAssistAlloc|mallocgc|bgsweep)$`, ""},
	{"all of Caddy's CPU", "", "", ""},
}

var pprofTotal = regexp.MustCompile(`accounting for ([^,]+), [^ ]+ of ([^ ]+) total`)

// profShare returns the CPU time of part in a profile: go tool pprof's
// total of the samples it keeps, every node shown.
func profShare(ctx context.Context, bin, profile string, part profPart) (time.Duration, error) {
	args := []string{"tool", "pprof", "-top", "-nodecount=1000000", "-nodefraction=0", "-edgefraction=0"}
	if part.focus != "" {
		args = append(args, "-focus="+part.focus)
	}
	if part.ignore != "" {
		args = append(args, "-ignore="+part.ignore)
	}
	out, err := exec.CommandContext(ctx, "go", append(args, bin, profile)...).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	m := pprofTotal.FindSubmatch(out)
	if m == nil {
		if part.focus != "" && bytes.Contains(out, []byte("no samples")) || bytes.Contains(out, []byte("matched no samples")) {
			return 0, nil
		}
		return 0, fmt.Errorf("go %s: no total in %q", strings.Join(args, " "), out[:min(len(out), 300)])
	}
	v := m[1]
	if part.focus == "" {
		v = m[2]
	}
	if string(v) == "0" {
		return 0, nil
	}
	return time.ParseDuration(string(v))
}

// breakdown is the profiled Caddys' CPU per request, in µs, by
// accessProfParts: what each part costs per request answered while the
// profile was taken.
type breakdown struct {
	cols  []string   // the profiled rows' short names
	cells [][]string // by part, then column
}

func profileBreakdown(ctx context.Context, rows []accessRow) *breakdown {
	b := &breakdown{cells: make([][]string, len(accessProfParts))}
	for _, row := range rows {
		if row.Err != nil || row.Profile == "" || row.ProfReqs == 0 {
			continue
		}
		b.cols = append(b.cols, row.Short)
		for i, part := range accessProfParts {
			d, err := profShare(ctx, row.Bin, row.Profile, part)
			cell := fmt.Sprintf("%.1f", float64(d)/1e3/float64(row.ProfReqs))
			if err != nil {
				logf("profile breakdown: %v", err)
				cell = "?"
			}
			b.cells[i] = append(b.cells[i], cell)
		}
	}
	if len(b.cols) == 0 {
		return nil
	}
	return b
}

func (r *accessResult) profileTable(p func(string, ...any)) {
	b := r.breakdown
	if b == nil {
		return
	}
	p("\nWhere Caddy's CPU goes, in µs per request, from a CPU profile of each Caddy under the same load after the rounds " +
		"(`-pprof`; nested parts overlap, the rest is serving HTTP):\n\n")
	p("| part | whose | %s |\n", strings.Join(b.cols, " | "))
	p("|---|---|%s\n", strings.Repeat("--:|", len(b.cols)))
	for i, part := range accessProfParts {
		p("| %s | %s | %s |\n", part.name, part.owner, strings.Join(b.cells[i], " | "))
	}
}
