package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const pysocketCaddyfile = `{
	admin 127.0.0.1:{{.AdminPort}}
	applog {
		python_socket tcp/127.0.0.1:TCPPORT udp/127.0.0.1:UDPPORT {
			app worker
			max_message_size 256KiB
		}
		facility worker
	}
	log worker {
		include applog.worker
		output file {{.Dir}}/worker.log
		level DEBUG
		format json
	}
}

http://127.0.0.1:{{.HTTPPort}} {
	bind 127.0.0.1
	respond "ok"
}
`

// pysocketClient logs through real SocketHandler and DatagramHandler
// instances; with a third argument it logs a second batch on the same
// SocketHandler connection after waiting for a file to appear (the test
// reloads Caddy in between).
const pysocketClient = `
import logging, logging.handlers, os, sys, time
tcp, udp = int(sys.argv[1]), int(sys.argv[2])
log = logging.getLogger("jobs.runner")
log.setLevel(logging.DEBUG)
log.propagate = False
sock = logging.handlers.SocketHandler("127.0.0.1", tcp)
log.addHandler(sock)
log.info("job %s started with %d items", "nightly", 3)
log.warning("retry", extra={"attempt": 2, "payload": b"\x00\xffbytes", "tags": ["a", "b"], "ok": True})
try:
    {}["missing"]
except KeyError:
    log.exception("job failed")
log.debug("ünïcode ✓")
if len(sys.argv) > 3:
    # Stay on the same connection across a reload of Caddy.
    open(sys.argv[3] + ".ready", "w").close()
    for _ in range(600):
        if os.path.exists(sys.argv[3]):
            break
        time.sleep(0.05)
    for i in range(20):
        log.info("after reload %d", i)
sock.close()
dg = logging.getLogger("jobs.udp")
dg.propagate = False
dg.addHandler(logging.handlers.DatagramHandler("127.0.0.1", udp))
dg.error("over udp %d", 7)
`

func pysocketServer(t *testing.T) (*server, string) {
	t.Helper()
	cfg := strings.NewReplacer("TCPPORT", fmt.Sprint(freePort(t)), "UDPPORT", fmt.Sprint(freeUDPPort(t))).Replace(pysocketCaddyfile)
	return startCaddy(t, cfg), cfg
}

func ports(cfg string) (tcp, udp string) {
	i := strings.Index(cfg, "tcp/127.0.0.1:")
	tcp = cfg[i+len("tcp/127.0.0.1:"):]
	tcp = tcp[:strings.IndexByte(tcp, ' ')]
	i = strings.Index(cfg, "udp/127.0.0.1:")
	udp = cfg[i+len("udp/127.0.0.1:"):]
	udp = udp[:strings.IndexByte(udp, ' ')]
	return tcp, udp
}

func TestPythonSocketHandlers(t *testing.T) {
	s, cfg := pysocketServer(t)
	tcp, udp := ports(cfg)
	_, stderr := runPython(t, s.Dir, pysocketClient, tcp, udp)
	if strings.TrimSpace(stderr) != "" {
		t.Fatalf("python: %s", stderr)
	}
	lines := waitLines(t, filepath.Join(s.Dir, "worker.log"), 5)
	if len(lines) != 5 {
		t.Fatalf("got %d lines: %v", len(lines), lines)
	}
	byMsg := map[string]map[string]any{}
	for _, l := range lines {
		byMsg[l["msg"].(string)] = l
	}
	for msg, want := range map[string]string{
		"job nightly started with 3 items": "info applog.worker.jobs.runner",
		"retry":                            "warn applog.worker.jobs.runner",
		"job failed":                       "error applog.worker.jobs.runner",
		"ünïcode ✓":                        "debug applog.worker.jobs.runner",
		"over udp 7":                       "error applog.worker.jobs.udp",
	} {
		l, ok := byMsg[msg]
		if !ok {
			t.Errorf("missing %q", msg)
			continue
		}
		if got := fmt.Sprint(l["level"], " ", l["logger"]); got != want || l["host"] != "127.0.0.1" || l["app"] != "worker" {
			t.Errorf("%q: %s host=%v app=%v, want %s", msg, got, l["host"], l["app"], want)
		}
	}
	attrs, _ := byMsg["retry"]["attrs"].(map[string]any)
	if fmt.Sprint(attrs["attempt"]) != "2" || fmt.Sprint(attrs["tags"]) != "[a b]" || attrs["ok"] != true || attrs["payload"] == nil {
		t.Errorf("extra attributes: %v", attrs)
	}
	exc, _ := byMsg["job failed"]["attrs"].(map[string]any)["exc_text"].(string)
	if !strings.HasPrefix(exc, "Traceback (most recent call last):") || !strings.HasSuffix(exc, "KeyError: 'missing'") {
		t.Errorf("exc_text %q", exc)
	}
}

// hostilePickle would run a shell command if unpickled by Python.
const hostileClient = `
import socket, struct, sys
payload = b"cos\nsystem\n(S'touch " + sys.argv[2].encode() + b"'\ntR."
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(struct.pack(">L", len(payload)) + payload)
s.close()
`

func TestPythonSocketRejectsHostilePickle(t *testing.T) {
	s, cfg := pysocketServer(t)
	tcp, udp := ports(cfg)
	marker := filepath.Join(s.Dir, "pwned")
	runPython(t, s.Dir, hostileClient, tcp, marker)
	// Then a good record on a new connection: still served.
	runPython(t, s.Dir, pysocketClient, tcp, udp)
	waitLines(t, filepath.Join(s.Dir, "worker.log"), 5)
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the hostile pickle ran a command")
	}
	if !strings.Contains(s.Output(), `"msg":"rejected message"`) || !strings.Contains(s.Output(), "GLOBAL") {
		t.Fatalf("rejection not logged:\n%s", s.Output())
	}
	if lines := readLines(t, filepath.Join(s.Dir, "worker.log")); len(lines) != 5 {
		t.Fatalf("got %d records, want the 5 good ones", len(lines))
	}
}

func TestPythonSocketSurvivesReload(t *testing.T) {
	s, cfg := pysocketServer(t)
	tcp, udp := ports(cfg)
	gate := filepath.Join(s.Dir, "reloaded")
	done := make(chan string, 1)
	go func() {
		_, stderr := runPython(t, s.Dir, pysocketClient, tcp, udp, gate)
		done <- stderr
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(gate + ".ready"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("python client never got ready")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Reload with a changed config (a new facility), on the same ports.
	s.reload(strings.Replace(cfg, "facility worker", "facility worker\n\t\tfacility worker:jobs.noise", 1))
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if stderr := <-done; strings.TrimSpace(stderr) != "" {
		t.Fatalf("python: %s", stderr)
	}
	lines := waitLines(t, filepath.Join(s.Dir, "worker.log"), 25)
	seen := map[string]int{}
	for _, l := range lines {
		seen[l["msg"].(string)]++
	}
	for i := range 20 {
		if n := seen[fmt.Sprintf("after reload %d", i)]; n != 1 {
			t.Errorf("record %d after the reload arrived %d times", i, n)
		}
	}
	if len(lines) != 25 {
		t.Fatalf("got %d records, want 25", len(lines))
	}
}
