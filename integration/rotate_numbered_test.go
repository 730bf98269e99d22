package integration

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestRotateNumbered: `name_format numbered` through the real binary.
// Records posted one by one rotate a 2 KiB file about 6 times; then
// Caddy is killed (SIGKILL, whatever its archiver was doing: shifting,
// compressing) and started again, and 2 more rotations follow. In the
// end there must be shop.log.1.gz to shop.log.3.gz and nothing else
// besides the live file, and reading shop.log.3.gz, .2.gz, .1.gz and
// the live file must give the most recent records, each once, in the
// order they were sent.
func TestRotateNumbered(t *testing.T) {
	t.Parallel()
	// flush always: every answered record is in the file before the kill.
	s := startCaddy(t, rotateConfig("max_size 2KiB", "keep 3", "name_format numbered", "flush always"))
	logs := filepath.Join(s.Dir, "logs")
	live := filepath.Join(logs, "shop.log")
	var sent []string
	send := func(s *server) {
		t.Helper()
		msg := fmt.Sprintf("num-%05d", len(sent))
		body := fmt.Sprintf(`{"level":"info","msg":%q,"pad":%q}`, msg, strings.Repeat("x", 60))
		if st, reply := post(t, s.URL("/_applog/shop"), "application/json", []byte(body), nil); st != 200 {
			t.Fatalf("post %s: %d %s", msg, st, reply)
		}
		sent = append(sent, msg)
	}
	metric := regexp.MustCompile(`(?m)^caddy_applog_writer_rotations_total\{name="` + regexp.QuoteMeta(live) + `",writer="rotate"\} (\d+)$`)
	rotations := func(s *server) int {
		t.Helper()
		m := metric.FindStringSubmatch(scrape(t, s))
		if m == nil {
			return 0
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	rotateTo := func(s *server, want int) {
		t.Helper()
		for i := 0; rotations(s) < want; i++ {
			if i >= 500 {
				t.Fatalf("%d rotations after %d records, want %d", rotations(s), len(sent), want)
			}
			send(s)
		}
	}

	rotateTo(s, 6)
	firstRun := len(sent)
	s = restartCaddy(t, s, true)
	rotateTo(s, 2)
	s.stop() // the writer finishes its compressions before Caddy exits

	backups := []string{"shop.log.3.gz", "shop.log.2.gz", "shop.log.1.gz"} // oldest first
	files, _, _ := logLines(t, logs)
	if want := append(slices.Clone(backups), "shop.log"); !slices.Equal(files, slices.Sorted(slices.Values(want))) {
		t.Fatalf("files %q, want %q", files, want)
	}
	var got []string
	for _, f := range append(backups, "shop.log") {
		msgs := fileMsgs(t, filepath.Join(logs, f))
		if len(msgs) == 0 && f != "shop.log" {
			t.Errorf("%s is empty", f)
		}
		got = append(got, msgs...)
	}
	t.Logf("%d records sent (%d before the kill), the last %d kept", len(sent), firstRun, len(got))
	if len(got) == 0 || len(got) >= firstRun {
		t.Fatalf("kept %d records of %d: keep 3 should have removed the oldest backups", len(got), len(sent))
	}
	if want := sent[len(sent)-len(got):]; !slices.Equal(got, want) {
		t.Fatalf("records in backup order (3, 2, 1, live):\n%q\nwant the last %d sent:\n%q", got, len(want), want)
	}
}
