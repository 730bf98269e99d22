package integration

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/caddy-applog/caddy-applog/internal/testtool"
)

// fuzzTargets are the decoders that take untrusted bytes, and the
// encoders that write them, with the package each lives in.
var fuzzTargets = []struct{ pkg, target string }{
	{"./module/decoders/jsonlog", "FuzzDecode"},
	{"./module/decoders/jsonlog", "FuzzDecodeLines"},
	{"./module/decoders/pylog", "FuzzParseForm"},
	{"./module/decoders/pylog", "FuzzParseLiteral"},
	{"./module/decoders/pylog", "FuzzFormat"},
	{"./module/decoders/pylog", "FuzzFormatLimit"},
	{"./module/decoders/pylog", "FuzzDecodePickle"},
	{"./module/decoders/pylog", "FuzzSplitSocketFrames"},
	{"./module/decoders/otlp", "FuzzDecode"},
	{"./module/decoders/syslogmsg", "FuzzParse"},
	{"./module/decoders/syslogmsg", "FuzzSplit"},
	{"./module/decoders/syslogmsg", "FuzzNoInjection"},
	{"./module/decoders/syslogmsg", "FuzzDatagram"},
	{"./module/decoders/syslogmsg", "FuzzTag"},
	{"./module/receiver", "FuzzLFProxyHeader"},
	{"./writers/rotate", "FuzzHostOf"},
	// The app: no record encodes past its bound.
	{"./module/intake", "FuzzBound"},
	// Encoders: any entry is exactly one line.
	{"./internal/oneline", "FuzzLine"},
	{"./writers/syslog", "FuzzEncoderOneLine"},
	{"./module/encoders/access", "FuzzAccessOneLine"},
}

// TestFuzzBounded runs every fuzz target for a fixed number of
// executions, so CI explores beyond the seed corpora that plain `go test`
// replays. It runs under CI=true, or when APPLOG_FUZZ is set to a budget
// such as 1000000x. The default, 100000x, keeps all of them near two
// minutes on CI's 2 cores, as a target whose package links Caddy runs
// only some thousands of executions a second. The budget is a count,
// not a duration: Go 1.26's fuzz coordinator can fail a duration-bounded
// run at its deadline with "context deadline exceeded" and no crasher
// (go.dev/issue/75804, fixed in Go 1.27); a count never races a clock.
func TestFuzzBounded(t *testing.T) {
	budget := os.Getenv("APPLOG_FUZZ")
	if budget == "" && !testtool.CI() {
		t.Skip("set APPLOG_FUZZ=100000x (or CI=true) to fuzz")
	}
	if !strings.HasSuffix(budget, "x") {
		budget = "100000x"
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
