// Package race runs the race detector over the plugin. It is a package of
// its own, apart from integration, because `go test ./...` gives each
// package's tests 10 minutes, and with a cold build cache compiling Caddy
// and its dependencies with -race alone takes about 6 minutes on a
// 2-core machine: added to the integration package it would not fit.
package race

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReliabilityRaceDetector runs the race detector where concurrency
// lives, in two ways, because neither covers everything:
//
//   - `go test -race` on module/..., writers/... and handlers/...: the
//     unit tests drive the rotate writer's handover, the status counters,
//     the syslog writer's sender, the ingest handler in parallel.
//   - integration's TestReliabilityReloadStorm, shortened to 5 seconds,
//     against a Caddy built with -race: the receivers' accept loops and
//     doors, the app's intake swapped on reload, and writers shared by
//     two configs have no unit tests of their own; only a running server
//     under load exercises them.
//
// Any "WARNING: DATA RACE", or a failure, fails the test. It runs as part
// of `go test ./...` (and so of .ci/run) and is skipped with -short.
// Measured on the 2-core development machine, shared with other work:
// 49s with a warm build cache; with a cold one the -race unit tests alone
// took 5m58s (nearly all compiling), the -race Caddy build then 5s, and
// the nested storm may add a cold non-race Caddy build (about 2m).
func TestReliabilityRaceDetector(t *testing.T) {
	if testing.Short() {
		t.Skip("the race detector run takes minutes")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	run := func(what string, limit time.Duration, env []string, args ...string) string {
		t.Helper()
		began := time.Now()
		var out bytes.Buffer
		cmd := exec.Command(goBin, args...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), env...)
		cmd.Stdout, cmd.Stderr = &out, &out
		err := runBounded(cmd, limit)
		t.Logf("%s: %v", what, time.Since(began).Round(time.Second))
		if races := strings.Count(out.String(), "WARNING: DATA RACE"); races > 0 || err != nil {
			t.Errorf("%s: %v, %d data races:\n%s", what, err, races, out.String())
		}
		return out.String()
	}

	run("go test -race on module/..., writers/..., handlers/...", 9*time.Minute, nil,
		"test", "-race", "-count=1", "-timeout", "8m", "./module/...", "./writers/...", "./handlers/...")
	if t.Failed() {
		return
	}
	raceBin := filepath.Join(t.TempDir(), "caddy-race")
	run("building caddy with -race", 5*time.Minute, nil, "build", "-race", "-o", raceBin, "./cmd/caddy")
	if t.Failed() {
		return
	}
	out := run("the reload storm against the -race build", 4*time.Minute,
		[]string{"APPLOG_RELIABILITY_CADDY=" + raceBin, "APPLOG_RELIABILITY_STORM=5s"},
		"test", "-count=1", "-v", "-run", "^TestReliabilityReloadStorm$", "./integration/")
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "reliability_reload_test.go") {
			t.Log(strings.TrimSpace(l))
		}
	}
	if !strings.Contains(out, "--- PASS: TestReliabilityReloadStorm") {
		t.Errorf("the reload storm did not pass against the -race build")
	}
}

// runBounded runs cmd, killing it after limit.
func runBounded(cmd *exec.Cmd, limit time.Duration) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	timer := time.AfterFunc(limit, func() { _ = cmd.Process.Kill() })
	defer timer.Stop()
	return cmd.Wait()
}
