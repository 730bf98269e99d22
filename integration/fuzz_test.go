package integration

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// fuzzTargets are the decoders that take untrusted bytes, with the
// package each lives in.
var fuzzTargets = []struct{ pkg, target string }{
	{"./module/jsonlog", "FuzzDecode"},
	{"./module/pylog", "FuzzParseForm"},
	{"./module/pylog", "FuzzParseLiteral"},
	{"./module/pylog", "FuzzFormat"},
	{"./module/pylog", "FuzzDecodePickle"},
	{"./module/syslogmsg", "FuzzParse"},
	{"./module/syslogmsg", "FuzzSplit"},
	{"./writers/rotate", "FuzzHostOf"},
}

// TestFuzzBounded runs every fuzz target for a fixed time, so CI
// explores beyond the seed corpora that plain `go test` replays. It runs
// under CI=true, or when APPLOG_FUZZ is set (to a duration, default 15s).
func TestFuzzBounded(t *testing.T) {
	budget := os.Getenv("APPLOG_FUZZ")
	if budget == "" && os.Getenv("CI") != "true" {
		t.Skip("set APPLOG_FUZZ=15s (or CI=true) to fuzz")
	}
	if _, err := time.ParseDuration(budget); err != nil {
		budget = "15s"
	}
	for _, ft := range fuzzTargets {
		t.Run(ft.target, func(t *testing.T) {
			cmd := exec.Command("go", "test", "-run", "^$", "-fuzz", "^"+ft.target+"$", "-fuzztime", budget, "-parallel", "2", ft.pkg)
			cmd.Dir = ".."
			var out syncBuffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := runBounded(cmd, 5*time.Minute); err != nil {
				t.Fatalf("fuzzing %s %s: %v\n%s", ft.pkg, ft.target, err, out.String())
			}
			if !strings.Contains(out.String(), "PASS") {
				t.Fatalf("fuzzing %s: no PASS\n%s", ft.target, out.String())
			}
		})
	}
}
