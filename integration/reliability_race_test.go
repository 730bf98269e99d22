package integration

import (
	"bytes"
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
//   - the reload storm, for 5 seconds, against a Caddy built with -race:
//     the receivers' accept loops and doors, the app's intake swapped on
//     reload, and the writers shared by two configs have no unit tests of
//     their own, and only a running server exercises them.
//
// Any "WARNING: DATA RACE" fails the test. It is part of `go test ./...`
// (and so of .ci/run) and is skipped with -short. On the 2-core
// development machine it takes 3 to 6 minutes, most of it building with
// -race (less with a warm build cache).
func TestReliabilityRaceDetector(t *testing.T) {
	if testing.Short() {
		t.Skip("the race detector run takes minutes")
	}
	goBin := requireTool(t, "go")
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}

	began := time.Now()
	var out bytes.Buffer
	cmd := exec.Command(goBin, "test", "-race", "-count=1", "-timeout", "15m", "./module/...", "./writers/...", "./handlers/...")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = &out, &out
	err = runBounded(cmd, 20*time.Minute)
	t.Logf("go test -race on module/..., writers/..., handlers/...: %v", time.Since(began).Round(time.Second))
	if races := strings.Count(out.String(), "WARNING: DATA RACE"); races > 0 || err != nil {
		t.Errorf("go test -race: %v, %d data races:\n%s", err, races, out.String())
	}

	began = time.Now()
	raceBin := filepath.Join(t.TempDir(), "caddy-race")
	build := exec.Command(goBin, "build", "-race", "-o", raceBin, "./cmd/caddy")
	build.Dir = root
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building caddy with -race: %v\n%s", err, b)
	}
	t.Logf("building caddy with -race: %v", time.Since(began).Round(time.Second))

	began = time.Now()
	saved := caddyBin
	caddyBin = raceBin
	defer func() { caddyBin = saved }()
	// The race detector makes Caddy several times slower: the storm is
	// short, with the same reload interval.
	s := relStorm{duration: 5 * time.Second, reloadEvery: 200 * time.Millisecond}.run(t)
	t.Logf("reload storm against the -race build: %v", time.Since(began).Round(time.Second))
	if n := strings.Count(s.Output(), "WARNING: DATA RACE"); n > 0 {
		t.Errorf("%d data races in Caddy during the reload storm:\n%s", n, s.Output())
	}
}
