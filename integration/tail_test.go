package integration

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// tailCaddyfile takes records of any app on log_ingest. No log_status:
// `caddy applog tail` needs only the admin API.
const tailCaddyfile = `{
	admin 127.0.0.1:{{.AdminPort}}
	applog {
		accept_unknown
		facility shop
	}
}

http://127.0.0.1:{{.HTTPPort}} {
	bind 127.0.0.1
	log_ingest
}
`

// tailProc is a running `caddy applog tail`.
type tailProc struct {
	name     string
	cmd      *exec.Cmd
	out, err *syncBuffer
	done     chan error
}

func startTail(t *testing.T, s *server, name string, args ...string) *tailProc {
	t.Helper()
	p := &tailProc{name: name, out: new(syncBuffer), err: new(syncBuffer), done: make(chan error, 1)}
	p.cmd = exec.Command(caddyBin, append([]string{"applog", "tail", "--address", fmt.Sprintf("127.0.0.1:%d", s.AdminPort)}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.err
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// lines returns the whole lines printed so far.
func (p *tailProc) lines() []string {
	out := p.out.String()
	if i := strings.LastIndexByte(out, '\n'); i >= 0 {
		return strings.Split(out[:i], "\n")
	}
	return nil
}

// messages returns the messages of the lines printed after the last one
// that contains from.
func (p *tailProc) messages(t *testing.T, json bool, from string) []string {
	t.Helper()
	var msgs []string
	for _, line := range p.lines() {
		msg := lineMessage(t, json, line)
		if strings.Contains(msg, from) {
			msgs = nil
			continue
		}
		msgs = append(msgs, msg)
	}
	return msgs
}

// tailLine is one record as `caddy applog tail` prints it off a terminal.
var tailLine = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} (\S+) +(\S+) (\S+) (.*?)(?:  logger=\S+)?$`)

// lineMessage checks a printed line and returns "LEVEL app:facility message".
func lineMessage(t *testing.T, asJSON bool, line string) string {
	t.Helper()
	if asJSON {
		var e struct {
			App, Facility, Message, Host string
			LevelName                    string `json:"level_name"`
			Seq                          uint64
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil || e.Seq == 0 || e.Host != "127.0.0.1" {
			t.Fatalf("not a record as JSON (%v): %q", err, line)
		}
		return fmt.Sprintf("%s %s:%s %s", e.LevelName, e.App, e.Facility, e.Message)
	}
	m := tailLine.FindStringSubmatch(line)
	if m == nil || m[3] != "127.0.0.1" {
		t.Fatalf("not a record line: %q", line)
	}
	return fmt.Sprintf("%s %s %s", m[1], m[2], m[4])
}

// postRecords sends records as NDJSON to log_ingest.
func postRecords(t *testing.T, s *server, recs ...string) {
	t.Helper()
	var b strings.Builder
	for _, r := range recs {
		f := strings.SplitN(r, " ", 4) // app facility level message
		line, _ := json.Marshal(map[string]string{"app": f[0], "logger": f[1], "level": f[2], "msg": f[3]})
		b.Write(line)
		b.WriteByte('\n')
	}
	if st, body := post(t, s.URL("/"), "application/x-ndjson", []byte(b.String()), nil); st != 200 {
		t.Fatalf("posting records: %d %s", st, body)
	}
}

// waitReconnected waits until each tail has said n times on stderr that it
// follows again.
func waitReconnected(t *testing.T, n int, tails ...*tailProc) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for _, p := range tails {
		for strings.Count(p.err.String(), "following again") < n {
			if time.Now().After(deadline) {
				t.Fatalf("%s did not reconnect; stderr:\n%s", p.name, p.err.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// TestTail runs `caddy applog tail` with filters against the built Caddy:
// each prints exactly the records that match, keeps following through a
// config reload and a restart of Caddy, and ends with status 0 on SIGINT.
func TestTail(t *testing.T) {
	s := startCaddy(t, tailCaddyfile)
	warn := startTail(t, s, "--app shop --level warn", "--app", "shop", "--level", "warn")
	js := startTail(t, s, "--json --facility web", "--json", "--facility", "web")
	grep := startTail(t, s, "--grep timeout", "--grep", "timeout")
	all := []*tailProc{warn, js, grep}

	// A record every filter takes, until each tail has shown it: from
	// then on they all follow.
	marker := func(text string) {
		deadline := time.Now().Add(15 * time.Second)
		for {
			postRecords(t, s, "shop web.mark ERROR "+text+" timeout")
			next := time.Now().Add(200 * time.Millisecond)
			for time.Now().Before(next) {
				seen := 0
				for _, p := range all {
					if strings.Contains(p.out.String(), text+" timeout") {
						seen++
					}
				}
				if seen == len(all) {
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
			if time.Now().After(deadline) {
				for _, p := range all {
					t.Logf("%s stdout:\n%s\nstderr:\n%s", p.name, p.out.String(), p.err.String())
				}
				t.Fatalf("not every tail printed %q", text)
			}
		}
	}
	marker("ready")

	records := []string{
		"shop web.requests WARNING slow checkout",
		"shop web INFO page served",
		"shop db ERROR query timeout",
		"billing web ERROR ledger Timeout",
		"billing db CRITICAL disk full",
		"shop webhooks CRITICAL hook failed",
		"shop web.requests DEBUG trace timeout",
	}
	postRecords(t, s, records...)
	marker("end")
	want := map[*tailProc][]string{
		warn: {"WARNING shop:web.requests slow checkout", "ERROR shop:db query timeout", "CRITICAL shop:webhooks hook failed"},
		js:   {"WARNING shop:web.requests slow checkout", "INFO shop:web page served", "ERROR billing:web ledger Timeout", "DEBUG shop:web.requests trace timeout"},
		grep: {"ERROR shop:db query timeout", "ERROR billing:web ledger Timeout", "DEBUG shop:web.requests trace timeout"},
	}
	check := func(from string, want map[*tailProc][]string) {
		t.Helper()
		for _, p := range all {
			var got []string
			for _, m := range p.messages(t, p == js, from) {
				if !strings.Contains(m, " shop:web.mark ") { // the markers
					got = append(got, m)
				}
			}
			if strings.Join(got, "\n") != strings.Join(want[p], "\n") {
				t.Fatalf("%s printed after %q:\n%s\nwant:\n%s", p.name, from, strings.Join(got, "\n"), strings.Join(want[p], "\n"))
			}
		}
	}
	check("ready timeout", want)

	// A config reload ends the admin server's streams: each tail says so,
	// reconnects, and goes on where it was.
	s.reload(strings.Replace(tailCaddyfile, "facility shop", "facility shop\n\t\tfacility billing", 1))
	postRecords(t, s, "shop web ERROR during reload timeout")
	waitReconnected(t, 1, all...)
	postRecords(t, s, "shop web ERROR after reload timeout", "billing web INFO after reload")
	marker("again")
	after := []string{"ERROR shop:web during reload timeout", "ERROR shop:web after reload timeout"}
	check("end timeout", map[*tailProc][]string{
		warn: after,
		js:   append(after[:2:2], "INFO billing:web after reload"),
		grep: after,
	})

	// A restart too: sequence numbers start again in the new process,
	// and the tails follow it from its start.
	s = restartCaddy(t, s, false)
	waitReconnected(t, 2, all...)
	postRecords(t, s, "shop web ERROR after restart timeout")
	marker("restarted")
	check("again timeout", map[*tailProc][]string{
		warn: {"ERROR shop:web after restart timeout"},
		js:   {"ERROR shop:web after restart timeout"},
		grep: {"ERROR shop:web after restart timeout"},
	})

	for _, p := range all {
		if strings.Contains(p.out.String(), "\x1b[") {
			t.Fatalf("%s coloured a pipe: %q", p.name, p.out.String())
		}
		if e := p.err.String(); strings.Count(e, "\n") != 4 || strings.Count(e, "ended the stream; reconnecting") != 2 {
			t.Fatalf("%s stderr:\n%s", p.name, e)
		}
		_ = p.cmd.Process.Signal(syscall.SIGINT)
	}
	for _, p := range all {
		select {
		case err := <-p.done:
			p.done <- err // for the cleanup
			if err != nil {
				t.Fatalf("%s after SIGINT: %v\n%s", p.name, err, p.err.String())
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s still running 5s after SIGINT", p.name)
		}
	}
}

// TestTailUnreachable: without a Caddy to follow, the command ends at
// once with one line that says where it looked.
func TestTailUnreachable(t *testing.T) {
	port := freePort(t)
	cmd := exec.Command(caddyBin, "applog", "tail", "--address", fmt.Sprintf("127.0.0.1:%d", port))
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := runBounded(cmd, 10*time.Second)
	want := fmt.Sprintf("caddy applog tail: cannot reach Caddy's admin API at 127.0.0.1:%d: dial tcp 127.0.0.1:%d: connect: connection refused\n", port, port)
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || errOut.String() != want || out.Len() != 0 {
		t.Fatalf("exit %v\nstderr %q\nwant   %q\nstdout %q", err, errOut.String(), want, out.String())
	}
}

// TestTailWithoutApplog: a Caddy without the applog app answers the admin
// route with 503 and a reason, which the command prints as its one line.
func TestTailWithoutApplog(t *testing.T) {
	s := startCaddy(t, `{
	admin 127.0.0.1:{{.AdminPort}}
}

http://127.0.0.1:{{.HTTPPort}} {
	bind 127.0.0.1
	respond "hello"
}
`)
	cmd := exec.Command(caddyBin, "applog", "tail", "--address", fmt.Sprintf("127.0.0.1:%d", s.AdminPort))
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := runBounded(cmd, 10*time.Second)
	want := fmt.Sprintf("caddy applog tail: admin API at 127.0.0.1:%d: HTTP 503: the applog app is not configured on this server\n", s.AdminPort)
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || errOut.String() != want || out.Len() != 0 {
		t.Fatalf("exit %v\nstderr %q\nwant   %q\nstdout %q", err, errOut.String(), want, out.String())
	}
}
