package integration

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestXcaddyBuild runs the commands of docs/building.md as written there:
// it installs xcaddy both ways the page gives, builds Caddy from a copy of
// the clone with the page's local xcaddy command, and checks that the
// binary lists every module the page shows.
func TestXcaddyBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Caddy from scratch; skipped with -short")
	}
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(filepath.Join(repo, "docs", "building.md"))
	if err != nil {
		t.Fatal(err)
	}
	cmds, modules := buildingCommands(string(page))
	var installs []string
	var build string
	for _, c := range cmds {
		switch {
		case strings.HasPrefix(c, "go install ") || strings.HasPrefix(c, "go -C tools install "):
			installs = append(installs, c)
		case strings.Contains(c, "xcaddy build") && strings.Contains(c, "=."):
			build = c
		}
	}
	if len(installs) != 2 || build == "" || len(modules) == 0 {
		t.Fatalf("docs/building.md: want two xcaddy installs, a local xcaddy build and the module list; found installs %q, build %q, modules %q", installs, build, modules)
	}
	if !strings.Contains(string(page), "xcaddy build --with github.com/caddy-applog/caddy-applog\n") {
		t.Error("docs/building.md does not give the published form, xcaddy build --with github.com/caddy-applog/caddy-applog")
	}

	// A copy of the clone (tracked and new files, as git sees them), so
	// that ./caddy lands there and not over a binary of the user's.
	clone := filepath.Join(t.TempDir(), "clone")
	copyTree(t, repo, clone)
	bin := filepath.Join(t.TempDir(), "bin")
	env := append(os.Environ(), "GOBIN="+bin, "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	run := func(line string, limit time.Duration) {
		t.Helper()
		cmd := exec.Command("bash", "-c", line)
		cmd.Dir, cmd.Env = clone, env
		var out syncBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := runBounded(cmd, limit); err != nil {
			t.Fatalf("%s: %v\n%s", line, err, out.String())
		}
	}
	for _, line := range installs {
		os.Remove(filepath.Join(bin, "xcaddy"))
		run(line, 5*time.Minute)
		if out, err := exec.Command(filepath.Join(bin, "xcaddy"), "version").Output(); err != nil || !strings.HasPrefix(string(out), "v0.4.7") {
			t.Fatalf("%s installed xcaddy %q (%v), want v0.4.7", line, out, err)
		}
	}
	run(build, 10*time.Minute)

	list, err := exec.Command(filepath.Join(clone, "caddy"), "list-modules").Output()
	if err != nil {
		t.Fatalf("list-modules: %v", err)
	}
	for _, mod := range modules {
		if !strings.Contains("\n"+string(list), "\n"+mod+"\n") {
			t.Errorf("module %s (listed in docs/building.md) missing from the xcaddy-built binary", mod)
		}
	}
}

// buildingCommands reads the page's ```console blocks: the commands (a
// block's lines, or those after "$ "), and the module IDs printed after
// "$ ./caddy list-modules".
func buildingCommands(page string) (cmds, modules []string) {
	in, listing := false, false
	sc := bufio.NewScanner(strings.NewReader(page))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "```console":
			in, listing = true, false
		case line == "```":
			in = false
		case !in:
		case strings.HasPrefix(line, "$ ./caddy list-modules"):
			listing = true
		case listing:
			modules = append(modules, line)
		default:
			cmds = append(cmds, strings.TrimPrefix(line, "$ "))
		}
	}
	return cmds, modules
}

// copyTree copies the files git knows in src (tracked, or new and not
// ignored) to dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Dir = src
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	for _, name := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		from := filepath.Join(src, name)
		fi, err := os.Lstat(from)
		if err != nil || !fi.Mode().IsRegular() {
			continue // deleted in the work tree, or not a plain file
		}
		to := filepath.Join(dst, name)
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			t.Fatal(err)
		}
		r, err := os.Open(from)
		if err != nil {
			t.Fatal(err)
		}
		w, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, fi.Mode().Perm())
		if err == nil {
			_, err = io.Copy(w, r)
			if cerr := w.Close(); err == nil {
				err = cerr
			}
		}
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
}
