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
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddy-applog/caddy-applog/integration/bench/internal/load"
	"github.com/caddy-applog/caddy-applog/internal/testdaemon"
	"github.com/caddy-applog/caddy-applog/internal/testtool"
)

// daemon is a server process started by the suite (Caddy, rsyslogd or
// syslog-ng; see testdaemon.Start), listed while it runs so that an
// interrupted suite can end it.
type daemon struct{ *testdaemon.Daemon }

// running lists the daemons to end if the suite is interrupted.
var (
	runningMu sync.Mutex
	running   = map[*daemon]struct{}{}
)

// start runs cmd and waits (bounded) until port accepts connections.
func start(ctx context.Context, name string, cmd *exec.Cmd, port int) (*daemon, error) {
	return started(testdaemon.Start(ctx, name, cmd, port))
}

// started lists a daemon that testdaemon started.
func started(td *testdaemon.Daemon, err error) (*daemon, error) {
	if err != nil {
		return nil, err
	}
	d := &daemon{td}
	runningMu.Lock()
	running[d] = struct{}{}
	runningMu.Unlock()
	return d, nil
}

func (d *daemon) pid() int { return d.Pid() }

// stop ends the daemon: SIGTERM, then SIGKILL to its group after 10s.
func (d *daemon) stop() {
	d.Stop()
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

// cpu is the daemon's CPU time (utime+stime) at this moment.
func (d *daemon) cpu() (time.Duration, error) {
	t, err := load.CPUTime(d.pid())
	if err != nil {
		return 0, fmt.Errorf("%s: %w", d.Name, err)
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
	r := &testdaemon.Rsyslog{Bin: bin}
	return started(r.Start(ctx, dir, conf, port))
}

// rsyslogEntry is caddy-applog's JSON entry for a syslog message as an
// rsyslog string template (quotes escaped for rsyslog's config).
var rsyslogEntry = strings.ReplaceAll(`{"level":"%syslogseverity-text%","ts":%timereported:::date-unixtimestamp%.%timereported:::date-subseconds%,`+
	`"logger":"applog.%app-name:::json%","msg":"%msg:::json%","app":"%app-name:::json%","facility":"","host":"%fromhost-ip%",`+
	`"logger_name":"","level_name":"%syslogseverity-text%","level_no":20,"attrs":{"syslog_facility":"%syslogfacility-text%",`+
	`"syslog_severity":%syslogseverity%,"program":"%app-name:::json%","hostname":"%hostname:::json%","procid":"%procid:::json%"}}`, `"`, `\"`)

// findSyslogNG finds syslog-ng (testdaemon.FindSyslogNG): root is an
// unpacked syslog-ng-core package, else syslog-ng on PATH.
func findSyslogNG(root string) (*testdaemon.SyslogNG, error) {
	ng, err := testdaemon.FindSyslogNG(root)
	if err != nil && root == "" {
		return nil, fmt.Errorf("%w; install the test tools with: %s", err, testtool.Install)
	}
	return ng, err
}

// startSyslogNG runs syslog-ng in the foreground with its syslog()
// source (RFC 5424, octet counting on TCP) and a file() destination in
// its default format, or a JSON object per line made by format-json:
// with "json" the fields rsyslog's JSON template has, with "entry" those
// of caddy-applog's entry, typed as it types them (format-json orders
// keys its own way). Flow control is on: without it syslog-ng drops what
// its destination queue cannot hold, by design.
func startSyslogNG(ctx context.Context, s *testdaemon.SyslogNG, dir, out string, port, conns int, format string) (*daemon, error) {
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
`, s.Version, frac, port, max(conns, 10), dest)
	return started(s.Start(ctx, dir, conf, []int{port}))
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
