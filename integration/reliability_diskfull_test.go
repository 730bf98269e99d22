package integration

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/caddy-applog/caddy-applog/internal/testtool"
)

// relSmallFS gives dir a file system that fills up: a 2 MiB tmpfs if
// this process may mount one (root, or CAP_SYS_ADMIN), else a 4 MiB ext2
// image on a loop device. It returns how, or "" if neither works; then
// the caller falls back to /dev/full, which cannot recover.
func relSmallFS(t *testing.T, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	unmount := func() {
		// Lazy, so that a file still open somewhere cannot keep the
		// mount (and the test's temp folder) around.
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Logf("unmounting %s: %v", dir, err)
		}
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=2m,mode=0755"); err == nil {
		t.Cleanup(unmount)
		return "tmpfs size=2m"
	} else {
		t.Logf("mounting a tmpfs: %v", err)
	}
	mkfs, err := exec.LookPath("mkfs.ext2")
	if err != nil {
		t.Logf("no mkfs.ext2 for a loop-mounted file system: %v", err)
		return ""
	}
	img := dir + ".img"
	if err := os.WriteFile(img, make([]byte, 4<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(mkfs, "-q", "-F", "-m", "0", img).CombinedOutput(); err != nil {
		t.Logf("mkfs.ext2: %v: %s", err, out)
		return ""
	}
	if out, err := exec.Command("mount", "-o", "loop", img, dir).CombinedOutput(); err != nil {
		t.Logf("mount -o loop: %v: %s", err, out)
		return ""
	}
	t.Cleanup(unmount)
	return "ext2 on a loop device, 4 MiB"
}

// relFill writes zeros to path until the file system is full.
func relFillDisk(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	var n int64
	for {
		w, err := f.Write(chunk)
		n += int64(w)
		if errors.Is(err, syscall.ENOSPC) {
			return n
		}
		if err != nil {
			t.Fatal(err)
		}
		if n > 64<<20 {
			t.Fatalf("%s: wrote 64 MiB and the file system is not full", path)
		}
	}
}

const relDiskCaddyfile = `{
	admin 127.0.0.1:{{.AdminPort}}
	log disk {
		include applog.disk
		output OUTPUT
		format json
	}
}

http://127.0.0.1:{{.HTTPPort}} {
	bind 127.0.0.1
	handle /_applog/disk {
		log_ingest disk
	}
	handle /status {
		log_status
	}
}
`

var relErrorsMetric = regexp.MustCompile(`(?m)^caddy_applog_writer_errors_total\{name="([^"]*)",writer="rotate"\} (\d+)$`)

// relWriterErrors returns the rotate writer's error count for path from
// the status page's JSON and from the admin endpoint's metrics.
func relWriterErrors(t *testing.T, s *server, path string) (page, metric int64) {
	t.Helper()
	var doc struct {
		Stats struct {
			Writers []struct {
				Kind, Name string
				Errors     int64
			}
		}
	}
	getJSON(t, s.URL("/status?format=json"), &doc)
	page = -1
	for _, w := range doc.Stats.Writers {
		if w.Kind == "rotate" && w.Name == path {
			page = w.Errors
		}
	}
	metric = -1
	for _, m := range relErrorsMetric.FindAllStringSubmatch(scrape(t, s), -1) {
		if m[1] == path {
			metric, _ = strconv.ParseInt(m[2], 10, 64)
		}
	}
	return page, metric
}

// TestReliabilityDiskFull fills the file system under a log output while
// records keep coming, then frees space. Caddy must keep running and
// answering 200 (a record the app accepted is not the client's problem
// once the writer fails), log an error naming the file, count the
// failures (for the rotate writer, on the status page and in metrics;
// Caddy's own file writer counts nothing), and write again once there is
// room: every record posted after the space came back must be in the
// file exactly once, on a line of its own.
//
// The rotate writer gets mode 0666, the mode of /dev/full, so that in the
// last-resort fallback it does not chmod the device.
func TestReliabilityDiskFull(t *testing.T) {
	for _, tc := range []struct{ name, output string }{
		{"rotate", "rotate PATH {\n\t\t\tmax_size 100MiB\n\t\t\tmode 0666\n\t\t}"},
		{"rotate_flush_interval", "rotate PATH {\n\t\t\tmax_size 100MiB\n\t\t\tmode 0666\n\t\t\tflush 100ms\n\t\t}"},
		{"file", "file PATH {\n\t\t\troll_disabled\n\t\t}"},
	} {
		t.Run(tc.name, func(t *testing.T) { relDiskFull(t, tc.output, strings.HasPrefix(tc.name, "rotate")) })
	}
}

func relDiskFull(t *testing.T, output string, rotate bool) {
	var how string
	prepare := func(dir string) {
		full := filepath.Join(dir, "full")
		how = relSmallFS(t, full)
		if how != "" {
			return
		}
		// Last resort: a file that is /dev/full, where every write fails
		// with ENOSPC. Space never comes back, so recovery goes untested.
		if testtool.CI() {
			t.Fatal("no way to fill a file system: cannot mount a tmpfs or a loop device (run as root)")
		}
		if _, err := os.Stat("/dev/full"); err != nil {
			t.Skip("cannot mount a small file system and there is no /dev/full")
		}
		if err := os.Symlink("/dev/full", filepath.Join(full, "app.log")); err != nil {
			t.Fatal(err)
		}
		how = "/dev/full"
	}
	out := strings.Replace(output, "PATH", "{{.Dir}}/full/app.log", 1)
	s := startCaddyWith(t, strings.Replace(relDiskCaddyfile, "OUTPUT", out, 1), prepare)
	path := filepath.Join(s.Dir, "full", "app.log")
	t.Logf("small file system: %s", how)
	ingest := s.URL("/_applog/disk")
	c := relHTTPClient()

	// postPhase posts n batches of size records named "<phase> i j" and
	// fails unless every one is answered 200 with all records accepted.
	postPhase := func(phase string, n, size int) (msgs []string) {
		t.Helper()
		for i := range n {
			var body bytes.Buffer
			for j := range size {
				m := fmt.Sprintf("%s %03d %02d", phase, i, j)
				msgs = append(msgs, m)
				fmt.Fprintf(&body, `{"level":"error","msg":%q,"logger":"disk.test","pad":%q}`+"\n", m, strings.Repeat("p", 200))
			}
			resp, err := c.Post(ingest, "application/x-ndjson", &body)
			if err != nil {
				t.Fatalf("%s: post %d: %v", phase, i, err)
			}
			var reply bytes.Buffer
			_, _ = reply.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.HasPrefix(reply.String(), fmt.Sprintf(`{"accepted":%d,`, size)) {
				t.Fatalf("%s: post %d: %s %s", phase, i, resp.Status, reply.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
		return msgs
	}
	// waitFor polls until every msg is in the file (bounded) and returns
	// the counts and the lines that are not JSON.
	waitFor := func(msgs []string) (map[string]int, []string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			counts, bad := relReadMsgs(t, path)
			missing := 0
			for _, m := range msgs {
				if counts[m] == 0 {
					missing++
				}
			}
			if missing == 0 || time.Now().After(deadline) {
				return counts, bad
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	if how != "/dev/full" {
		before := postPhase("before", 5, 10)
		if counts, _ := waitFor(before); len(counts) != len(before) {
			t.Fatalf("before the disk filled up: %d of %d records in the file", len(counts), len(before))
		}
		filled := relFillDisk(t, filepath.Join(s.Dir, "full", "filler"))
		t.Logf("filled the file system with a %d KiB file", filled>>10)
	}

	// Full: records keep coming, Caddy keeps answering.
	began := time.Now()
	during := postPhase("during", 40, 10)
	t.Logf("posted %d records to a full disk in %v, all answered 200", len(during), time.Since(began).Round(time.Millisecond))
	select {
	case <-s.d.Done():
		t.Fatalf("caddy exited on a full disk:\n%s", s.Output())
	default:
	}
	// The error must name the file and say why.
	deadline := time.Now().Add(5 * time.Second)
	var errLines []string
	for {
		errLines = errLines[:0]
		for _, l := range strings.Split(s.Output(), "\n") {
			if strings.Contains(l, path) && strings.Contains(l, "no space left on device") {
				errLines = append(errLines, l)
			}
		}
		if len(errLines) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(errLines) == 0 {
		t.Errorf("no error naming %s and the cause in Caddy's output:\n%s", path, s.Output())
	} else {
		t.Logf("%d error lines, the first: %s", len(errLines), errLines[0])
	}
	if rotate {
		var page, metric int64
		for deadline := time.Now().Add(5 * time.Second); ; {
			page, metric = relWriterErrors(t, s, path)
			if (page > 0 && metric > 0) || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("write errors counted: %d on the status page, %d in caddy_applog_writer_errors_total", page, metric)
		if page <= 0 || metric <= 0 || page != metric {
			t.Errorf("write errors: status page %d, metric %d; want the same count above 0", page, metric)
		}
	}
	if how == "/dev/full" {
		t.Log("recovery not tested: /dev/full never has room")
		return
	}

	// Room again: what comes now must be written, each record once and
	// whole.
	if err := os.Remove(filepath.Join(s.Dir, "full", "filler")); err != nil {
		t.Fatal(err)
	}
	after := postPhase("after", 20, 5)
	counts, bad := waitFor(after)
	var lost, dup int
	for _, m := range after {
		switch counts[m] {
		case 0:
			lost++
		case 1:
		default:
			dup++
		}
	}
	var duringWritten int
	for _, m := range during {
		duringWritten += counts[m]
	}
	t.Logf("after freeing space: %d of %d new records written once (%d lost, %d duplicated); %d of %d records posted while full are in the file; %d lines are not JSON",
		len(after)-lost-dup, len(after), lost, dup, duringWritten, len(during), len(bad))
	if !rotate && lost <= 1 && len(bad) == 1 {
		// Caddy's file writer (timberjack) leaves the part of an entry
		// that fit on the full disk, and the first entry written once
		// there is room again completes that line: both are lost. That
		// is Caddy's to fix; the rotate writer cuts the torn part off.
		for _, m := range after {
			if counts[m] == 0 && strings.Contains(bad[0], m) {
				t.Logf("known limitation of Caddy's file writer: record %q was glued to a torn entry: %.300s", m, bad[0])
				lost, bad = lost-1, nil
			}
		}
	}
	if lost > 0 || dup > 0 {
		t.Errorf("after space came back: %d records lost, %d duplicated", lost, dup)
	}
	for _, b := range bad {
		t.Errorf("torn line in the file: %.300s", b)
	}
	select {
	case <-s.d.Done():
		t.Fatalf("caddy exited:\n%s", s.Output())
	default:
	}
}
