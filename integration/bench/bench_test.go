// Package bench holds the benchmark suite's smoke test; the suite itself
// is run.sh, benchrun (the driver), loadgen (a standalone load
// generator) and internal/load (what both send and verify).
package bench

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/caddy-applog/caddy-applog/internal/testtool"
)

// requireSyslogDaemons checks that rsyslogd and syslog-ng can be found
// the way benchrun finds them (testtool: skipped, or failed under
// CI=true, naming the command that installs them).
func requireSyslogDaemons(t *testing.T) {
	t.Helper()
	testtool.Require(t, "rsyslogd")
	if testtool.SyslogNGRoot() == "" {
		testtool.Require(t, "syslog-ng")
	}
}

// TestBenchSmoke runs the documented command, run.sh, with tiny counts:
// every part must produce its rows, and every message and record must
// have been verified in the files the daemons wrote.
func TestBenchSmoke(t *testing.T) {
	requireSyslogDaemons(t)
	testtool.Require(t, "bash")
	out := filepath.Join(t.TempDir(), "bench.md")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "run.sh", "-quick", "-syslog-msgs", "5000", "-ndjson-records", "5000",
		"-form-modes", "keepalive", "-out", out)
	cmd.WaitDelay = 10 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	stdout, err := cmd.Output()
	t.Logf("run.sh -quick took %s", time.Since(start).Round(time.Second))
	if err != nil {
		t.Fatalf("run.sh: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr.String())
	}
	report, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(report, stdout) {
		t.Errorf("the report written with -out differs from what was printed")
	}
	text := string(report)
	if strings.Contains(text, "FAILED") {
		t.Fatalf("a part failed:\n%s", text)
	}
	// Rows that must be there, each with its verification.
	for _, want := range []string{
		"| caddy-applog (file) |", "| caddy-applog (rotate-always) |", "| caddy-applog (rotate-batch) |",
		"| rsyslog (imtcp → omfile) |", "| syslog-ng (syslog() → file()) |",
		"| rsyslog (imtcp → omfile, JSON lines) |", "| syslog-ng (syslog() → file(), JSON lines) |",
		"| caddy-applog (rotate-batch) / rsyslog (imtcp → omfile, JSON lines) |",
		"| caddy-applog (rotate-batch) / syslog-ng (syslog() → file(), JSON lines) |",
		"| rsyslog (imtcp → omfile, caddy-applog's entry) |", "| syslog-ng (syslog() → file(), caddy-applog's entry) |",
		"| caddy-applog (rotate-batch) / rsyslog (imtcp → omfile, caddy-applog's entry) |",
		"| caddy-applog (file) / rsyslog (imtcp → omfile) |", "| caddy-applog (file) / syslog-ng (syslog() → file()) |",
		"### 2. NDJSON batches", "| `flush batch` | keep-alive | `log_ingest` |", "| `flush batch` | keep-alive | `respond` |",
		"| `flush 1s` | keep-alive | `log_ingest` |", "| `flush 1s` | keep-alive | `respond` |",
		"| writer, interleaved (BenchmarkRotateVsFile) | rotate |", "| encoder, one access entry (BenchmarkAccessEncoders) | access combined |",
		"| caddy-applog | 1 log block |", "| caddy-applog | 1 + 40 unrelated log blocks |",
		"| caddy-applog | 40 log blocks, a `rotate` file each |", "| caddy-applog | 1 log block (`include applog`), `rotate …/{app}/{facility}.log` |",
		"Machine: nproc ",
		"### 6. Access logs", "| Caddy v2.11.9 | `access combined` + `rotate` (`flush batch`) |",
		"| patched core | `access combined` + `rotate` (`flush batch`) |",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	// The form ratios, one per flush mode, with the median and range of
	// the rounds' pairs.
	for _, flush := range []string{"batch", "1s"} {
		row := "\\| `flush " + flush + "` \\| keep-alive \\| [0-9.]+ \\| [+-][0-9]+% \\| [0-9.]+ \\([0-9.]+–[0-9.]+\\) \\|"
		if !regexp.MustCompile(row).MatchString(text) {
			t.Errorf("report lacks the keep-alive ratio row of flush %s with its rounds' median and range", flush)
		}
	}
	// The routing ratios: 1 + 40 blocks / 1 block, and template / 40
	// blocks, each with the rounds' median and range (the part keeps
	// -quick's 20,000 messages, so that each run's CPU spans several
	// clock ticks).
	for _, row := range []string{
		"\\| caddy-applog \\| [0-9.]+ \\| [0-9.]+ \\([0-9.]+–[0-9.]+\\) \\| [0-9.]+ \\| [0-9.]+ \\([0-9.]+–[0-9.]+\\) \\| ≥ 0.95 \\|",
		"\\| caddy-applog \\| [0-9.]+ \\| [0-9.]+ \\([0-9.]+–[0-9.]+\\) \\| [0-9.]+ \\| [0-9.]+ \\([0-9.]+–[0-9.]+\\) \\|\n",
	} {
		if !regexp.MustCompile(row).MatchString(text) {
			t.Errorf("report lacks a routing ratio row matching %s", row)
		}
	}
	verified := 0
	for line := range strings.SplitSeq(text, "\n") {
		if strings.HasSuffix(line, "| yes |") {
			verified++
		}
	}
	// 9 syslog rows (3 Caddy writers, rsyslog and syslog-ng in 3
	// formats, the third checked to be caddy-applog's entry), the NDJSON
	// run, one form mode under two flush modes, the routing part's 2
	// pairs of configs.
	if verified != 16 {
		t.Errorf("%d rows verified, want 16:\n%s", verified, text)
	}
	// The access part: 4 log configurations, each under both builds,
	// every request found as one line in its site's file.
	if n := regexp.MustCompile(`(?m)^\| (Caddy v|patched).*\| yes, [0-9,]+ \|$`).FindAllString(text, -1); len(n) != 8 {
		t.Errorf("%d access rows verified, want 8", len(n))
	}
	if t.Failed() {
		t.Logf("report:\n%s\nstderr:\n%s", text, stderr.String())
	}
}
