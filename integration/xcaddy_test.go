package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestXcaddyBuild runs the README's local xcaddy build instructions and
// checks that the resulting binary has every module of the plugin.
func TestXcaddyBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Caddy from scratch; skipped with -short")
	}
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	xcaddy := filepath.Join(dir, "xcaddy")
	build := exec.Command("go", "build", "-o", xcaddy, "github.com/caddyserver/xcaddy/cmd/xcaddy")
	build.Dir = filepath.Join(repo, "integration", "testdata", "xcaddy")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building xcaddy: %v\n%s", err, out)
	}

	bin := filepath.Join(dir, "caddy")
	cmd := exec.Command(xcaddy, "build",
		"--output", bin,
		"--with", "github.com/caddy-applog/caddy-applog/module",
		"--replace", "github.com/caddy-applog/caddy-applog="+repo)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOPROXY="+proxyOrOff(t))
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := runBounded(cmd, 10*time.Minute); err != nil {
		t.Fatalf("xcaddy build: %v\n%s", err, out.String())
	}

	list, err := exec.Command(bin, "list-modules").Output()
	if err != nil {
		t.Fatalf("list-modules: %v", err)
	}
	for _, mod := range []string{"applog", "http.handlers.log_ingest"} {
		if !strings.Contains("\n"+string(list), "\n"+mod+"\n") {
			t.Errorf("module %s missing from the xcaddy-built binary:\n%s", mod, list)
		}
	}
}

// proxyOrOff is the README's GOPROXY for local builds: the first proxy
// Go is configured with, then "off". With "|", any error from the proxy
// (it may answer 403 for a module it has never seen) falls through to
// "off", whose "not found" makes Go use the --replace folder instead.
func proxyOrOff(t *testing.T) string {
	out, err := exec.Command("go", "env", "GOPROXY").Output()
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(strings.TrimSpace(string(out)), ",")
	first, _, _ = strings.Cut(first, "|")
	return first + "|off"
}
