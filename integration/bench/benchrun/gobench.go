package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// benchLine is one result line of `go test -bench`: its metrics by unit.
type benchLine map[string]float64

// goBench runs `go test -run '^$' -bench pattern` in pkg and returns the
// result lines by benchmark name (without the -GOMAXPROCS suffix).
func (o *options) goBench(ctx context.Context, pkg, pattern string) (map[string]benchLine, error) {
	args := []string{"test", "-run", "^$", "-bench", pattern, "-benchmem", "-count", "1", "-benchtime", o.goBenchTime, pkg}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = o.repo
	cmd.Env = os.Environ()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go %s: %w\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	out := map[string]benchLine{}
	for line := range strings.SplitSeq(stdout.String(), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		m := benchLine{}
		for i := 2; i+1 < len(f); i += 2 { // f[1] is the iteration count
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				m[f[i+1]] = v
			}
		}
		out[name] = m
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("go %s printed no results:\n%s", strings.Join(args, " "), stdout.String())
	}
	return out, nil
}

// goBenchRow is one comparison of part 4.
type goBenchRow struct {
	Name       string
	A, B       string  // what is compared: A against B
	AVal, BVal float64 // ns per record or entry
	AAllocs    float64
	BAllocs    float64
	Err        error
}

func (o *options) runGoBenches(ctx context.Context) []goBenchRow {
	var rows []goBenchRow
	rot, err := o.goBench(ctx, "./writers/rotate", "RotateVsFile/interleaved")
	for _, name := range []string{"interleaved", "interleaved_parallel"} {
		row := goBenchRow{Name: "writer, " + strings.ReplaceAll(name, "_", " ") + " (BenchmarkRotateVsFile)", A: "rotate", B: "file"}
		m, ok := rot["BenchmarkRotateVsFile/"+name]
		switch {
		case err != nil:
			row.Err = err
		case !ok:
			row.Err = fmt.Errorf("no result for BenchmarkRotateVsFile/%s", name)
		default:
			row.AVal, row.BVal = m["rotate-ns/record"], m["file-ns/record"]
			row.AAllocs, row.BAllocs = m["rotate-allocs/record"], m["file-allocs/record"]
		}
		rows = append(rows, row)
	}
	acc, err := o.goBench(ctx, "./module/encoders/access", "AccessEncoders")
	for _, preset := range []string{"combined", "common"} {
		row := goBenchRow{Name: "encoder, one access entry (BenchmarkAccessEncoders)", A: "access " + preset, B: "json"}
		a, okA := acc["BenchmarkAccessEncoders/access_"+preset]
		j, okJ := acc["BenchmarkAccessEncoders/json"]
		switch {
		case err != nil:
			row.Err = err
		case !okA || !okJ:
			row.Err = fmt.Errorf("no result for BenchmarkAccessEncoders/access_%s or /json", preset)
		default:
			row.AVal, row.BVal = a["ns/entry"], j["ns/entry"]
			row.AAllocs, row.BAllocs = a["allocs/op"], j["allocs/op"]
		}
		rows = append(rows, row)
	}
	for _, r := range rows {
		if r.Err == nil {
			logf("%s: %s %.0f ns, %s %.0f ns: %.2f", r.Name, r.A, r.AVal, r.B, r.BVal, r.AVal/r.BVal)
		}
	}
	return rows
}
