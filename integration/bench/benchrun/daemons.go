package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/caddy-applog/caddy-applog/integration/bench/internal/load"
	"github.com/caddy-applog/caddy-applog/internal/testtool"
)

// daemon is a server process started by the suite: Caddy, rsyslogd or
// syslog-ng, each in its own process group so that it can be ended with
// everything it started.
type daemon struct {
	name string
	cmd  *exec.Cmd
	out  syncBuffer
	done chan struct{}
}

// running lists the daemons to end if the suite is interrupted.
var (
	runningMu sync.Mutex
	running   = map[*daemon]struct{}{}
)

// start runs cmd and waits (bounded) until port accepts connections.
func start(ctx context.Context, name string, cmd *exec.Cmd, port int) (*daemon, error) {
	d := &daemon{name: name, cmd: cmd, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = &d.out, &d.out
	// Its own group, so a Ctrl-C in the terminal reaches only the suite,
	// which ends the daemon in order; and killed with the suite if the
	// suite itself is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	runningMu.Lock()
	running[d] = struct{}{}
	runningMu.Unlock()
	go func() { _ = cmd.Wait(); close(d.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			return d, nil
		}
		select {
		case <-d.done:
			return nil, fmt.Errorf("%s exited during start-up:\n%s", name, d.out.String())
		case <-ctx.Done():
			d.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			d.stop()
			return nil, fmt.Errorf("%s did not listen on port %d within 30s:\n%s", name, port, d.out.String())
		}
	}
}

func (d *daemon) pid() int { return d.cmd.Process.Pid }

// stop ends the daemon: SIGTERM, then SIGKILL to its group after 10s.
func (d *daemon) stop() {
	_ = syscall.Kill(d.pid(), syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-d.pid(), syscall.SIGKILL)
		<-d.done
	}
	runningMu.Lock()
	delete(running, d)
	runningMu.Unlock()
}

// killAll ends every daemon still running (on interruption).
func killAll() {
	runningMu.Lock()
	ds := make([]*daemon, 0, len(running))
	for d := range running {
		ds = append(ds, d)
	}
	runningMu.Unlock()
	for _, d := range ds {
		d.stop()
	}
}

// sample is a daemon's CPU time at one moment.
func (d *daemon) cpu() (time.Duration, error) {
	t, err := load.CPUTime(d.pid())
	if err != nil {
		return 0, fmt.Errorf("%s: %w", d.name, err)
	}
	return t, nil
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startCaddy writes caddyfile to dir and runs Caddy on it, waiting for
// port (the admin endpoint is polled by start's dial as well).
func startCaddy(ctx context.Context, bin, name, dir, caddyfile string, port int) (*daemon, error) {
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(caddyfile), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "run", "--config", path, "--adapter", "caddyfile")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+dir+"/data", "XDG_CONFIG_HOME="+dir+"/config")
	return start(ctx, name, cmd, port)
}

// startRsyslog runs rsyslogd in the foreground: imtcp (octet counting
// is on by default) bound to a ruleset with one omfile action writing,
// by format, its default file format ("default"), a JSON object per line
// with the header fields, the peer and the message ("json"), or the very
// line caddy-applog's `format json` writes for the same message, key for
// key and in its order ("entry"; level_no is the constant 20, as every
// benchmark message is severity 6 and rsyslog would need a lookup table
// to map it).
func startRsyslog(ctx context.Context, bin, dir, out string, port int, format string) (*daemon, error) {
	template := map[string]string{
		"default": `template="RSYSLOG_FileFormat"`,
		"json":    `template="applog_json"`,
		"entry":   `template="applog_entry"`,
	}[format]
	conf := fmt.Sprintf(`global(workDirectory=%q maxMessageSize="64k")
module(load="imtcp")
template(name="applog_json" type="list" option.jsonf="on") {
	property(outname="ts" name="timereported" dateFormat="rfc3339" format="jsonf")
	property(outname="host" name="hostname" format="jsonf")
	property(outname="app" name="app-name" format="jsonf")
	property(outname="facility" name="syslogfacility-text" format="jsonf")
	property(outname="severity" name="syslogseverity-text" format="jsonf")
	property(outname="procid" name="procid" format="jsonf")
	property(outname="msgid" name="msgid" format="jsonf")
	property(outname="peer" name="fromhost-ip" format="jsonf")
	property(outname="msg" name="msg" format="jsonf")
}
template(name="applog_entry" type="string" string="%s\n")
ruleset(name="bench") {
	action(type="omfile" file=%q %s)
}
input(type="imtcp" address="127.0.0.1" port="%d" ruleset="bench")
`, dir, rsyslogEntry, out, template, port)
	path := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	return start(ctx, "rsyslog", exec.Command(bin, "-n", "-f", path, "-i", filepath.Join(dir, "rsyslog.pid")), port)
}

// rsyslogEntry is caddy-applog's JSON entry for a syslog message as an
// rsyslog string template (quotes escaped for rsyslog's config).
var rsyslogEntry = strings.ReplaceAll(`{"level":"%syslogseverity-text%","ts":%timereported:::date-unixtimestamp%.%timereported:::date-subseconds%,`+
	`"logger":"applog.%app-name:::json%","msg":"%msg:::json%","app":"%app-name:::json%","facility":"","host":"%fromhost-ip%",`+
	`"logger_name":"","level_name":"%syslogseverity-text%","level_no":20,"attrs":{"syslog_facility":"%syslogfacility-text%",`+
	`"syslog_severity":%syslogseverity%,"program":"%app-name:::json%","hostname":"%hostname:::json%","procid":"%procid:::json%"}}`, `"`, `\"`)

// syslogNG is how to run syslog-ng: a binary, its environment and
// module path, and its configuration version.
type syslogNG struct {
	bin, modulePath, version string
	env                      []string
}

// findSyslogNG finds syslog-ng: root is an unpacked syslog-ng-core
// package (Debian's syslog-ng-core conflicts with rsyslog, so .ci/run
// unpacks it into a private folder), else syslog-ng on PATH.
func findSyslogNG(root string) (*syslogNG, error) {
	if root != "" {
		s := &syslogNG{bin: filepath.Join(root, "usr/sbin/syslog-ng")}
		mods, _ := filepath.Glob(filepath.Join(root, "usr/lib/syslog-ng/[0-9]*.[0-9]*"))
		if _, err := os.Stat(s.bin); err != nil || len(mods) != 1 {
			return nil, fmt.Errorf("no syslog-ng under %s (want usr/sbin/syslog-ng and one usr/lib/syslog-ng/<version>)", root)
		}
		s.modulePath, s.version = mods[0], filepath.Base(mods[0])
		s.env = []string{"LD_LIBRARY_PATH=" + filepath.Join(root, "usr/lib/syslog-ng")}
		return s, nil
	}
	bin, err := testtool.Find("syslog-ng")
	if err != nil {
		return nil, fmt.Errorf("%w; install the test tools with: %s", err, testtool.Install)
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --version: %w", bin, err)
	}
	m := regexp.MustCompile(`\((\d+\.\d+)`).FindSubmatch(out)
	if m == nil {
		return nil, fmt.Errorf("%s --version: no version in %q", bin, out)
	}
	return &syslogNG{bin: bin, version: string(m[1])}, nil
}

// startSyslogNG runs syslog-ng in the foreground with its syslog()
// source (RFC 5424, octet counting on TCP) and a file() destination in
// its default format, or a JSON object per line made by format-json:
// with "json" the fields rsyslog's JSON template has, with "entry" those
// of caddy-applog's entry, typed as it types them (format-json orders
// keys its own way). Flow control is on: without it syslog-ng drops what
// its destination queue cannot hold, by design.
func startSyslogNG(ctx context.Context, s *syslogNG, dir, out string, port, conns int, format string) (*daemon, error) {
	dest, frac := strconv.Quote(out), ""
	switch format {
	case "json":
		frac = " frac-digits(6);" // rsyslog's and caddy-applog's timestamps have them
		dest += ` template("$(format-json ts=${ISODATE} host=${HOST} app=${PROGRAM} facility=${FACILITY} severity=${LEVEL} procid=${PID} msgid=${MSGID} peer=${SOURCEIP} msg=${MESSAGE})\n")`
	case "entry":
		frac = " frac-digits(6);"
		dest += ` template("$(format-json level=${LEVEL} ts=double(${UNIXTIME}) logger=applog.${PROGRAM} msg=${MESSAGE} app=${PROGRAM} facility=literal(\"\") host=${SOURCEIP}` +
			` logger_name=literal(\"\") level_name=${LEVEL} level_no=int64(20) attrs.syslog_facility=${FACILITY} attrs.syslog_severity=int64(${LEVEL_NUM})` +
			` attrs.program=${PROGRAM} attrs.hostname=${HOST} attrs.procid=${PID})\n")`
	}
	conf := fmt.Sprintf(`@version: %s
options { keep-hostname(yes); log-msg-size(65536); stats-freq(0);%s };
source s_net { syslog(ip("127.0.0.1") port(%d) transport("tcp") max-connections(%d)); };
destination d_file { file(%s); };
log { source(s_net); destination(d_file); flags(flow-control); };
`, s.version, frac, port, max(conns, 10), dest)
	path := filepath.Join(dir, "syslog-ng.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	args := []string{"-F", "--no-caps", "-f", path, "-p", filepath.Join(dir, "pid"),
		"-R", filepath.Join(dir, "persist"), "-c", filepath.Join(dir, "ctl")}
	if s.modulePath != "" {
		args = append(args, "--module-path="+s.modulePath)
	}
	cmd := exec.Command(s.bin, args...)
	cmd.Env = append(os.Environ(), s.env...)
	return start(ctx, "syslog-ng", cmd, port)
}

// versionOf returns the first line a program prints for --version/-v.
func versionOf(env []string, bin string, args ...string) string {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, _ := cmd.CombinedOutput()
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line)
}

// fetch GETs url, bounded by ctx, and writes the body to path.
func fetch(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, b.Bytes()[:min(b.Len(), 200)])
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// syncBuffer is a bytes.Buffer safe for a child's stdout and stderr.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() > 1<<20 { // keep the start-up output, not a flood
		return len(p), nil
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
