package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// appAttacks are the attacks on the applog app's rules (routing, signatures, record bounds).
var appAttacks = []attack{
	{"pickle whose attribute references one 600-byte string 10,000 times through the memo", "cut to max_record_size and 3x its frame, marked truncated: bytes written ≤ 4x bytes sent", attackPickleAmplification},
	{"syslog message of control bytes (each escaped to 6 bytes)", "cut and marked truncated: bytes written ≤ 4x bytes sent", attackSyslogControlBytes},
	{"JSON record of many tiny keys holding 1e300 (301 digits once written) and deep nesting", "cut and marked truncated: bytes written ≤ 4x bytes sent", attackJSONAmplification},
	{"form post whose message repeats %(a)s of a 600-byte argument", "cut and marked truncated: bytes written ≤ 4x bytes sent", attackFormAmplification},
	{"flood of minimal syslog datagrams (10 bytes each)", "each entry is the fixed envelope and the few bytes sent: ≤ 300 bytes, none cut", attackTinyRecords},
	{"apps A and B with the same facility interleaved on every door under accept_unknown", "every entry is filed, named and labelled as its own app", attackInterleavedApps},
	{"signed request replayed after a clean restart", "409 replayed request; the record is written once", func(t *testing.T) { attackReplay(t, "restart") }},
	{"signed request replayed after kill -9", "409 replayed request; the record is written once", func(t *testing.T) { attackReplay(t, "kill") }},
	{"signed request replayed after a reload", "409 replayed request; the record is written once", func(t *testing.T) { attackReplay(t, "reload") }},
	{"secret abc{def}, which the replacer turned into abc", "the config does not load, with an error that says why", attackSecretBraces},
	{"app named receivers, imitating the receivers' own diagnostics", "refused in config and with 400 at submit", attackReservedApp},
	{"records claiming to be from 1970 and 2099", "the claim is kept as ts, and the arrival time is added as received", attackClockClaims},
	{"record naming no app on python_socket and log_ingest", "each door's error names that door's own settings", attackNoAppErrors},
}

// appCaddyfile has every door, accept_unknown, a signed facility, and a
// log per app the attacks use. SYSUDP, PYTCP are replaced by ports.
const appCaddyfile = `{
	admin 127.0.0.1:{{.AdminPort}}
	applog {
		accept_unknown
		syslog udp/127.0.0.1:SYSUDP
		python_socket tcp/127.0.0.1:PYTCP {
			max_message_size 1MiB
		}
		facility paid {
			secret s3cret-key
		}
	}
	log default {
		output stderr
		exclude applog.amp applog.appa applog.appb applog.paid applog.clock
	}
	log amp {
		include applog.amp
		output file {{.Dir}}/amp.log
		format json
	}
	log appa {
		include applog.appa
		output file {{.Dir}}/appa.log
		format json
	}
	log appb {
		include applog.appb
		output file {{.Dir}}/appb.log
		format json
	}
	log paid {
		include applog.paid
		output file {{.Dir}}/paid.log
		format json
	}
	log clock {
		include applog.clock
		output file {{.Dir}}/clock.log
		format json
	}
}

http://127.0.0.1:{{.HTTPPort}} {
	bind 127.0.0.1
	handle /_applog {
		log_ingest
	}
}
`

// appServer starts Caddy on appCaddyfile; it returns the syslog UDP and
// python_socket TCP ports and the config, for reloads.
func appServer(t *testing.T) (s *server, sysUDP, pyTCP int, cfg string) {
	t.Helper()
	sysUDP, pyTCP = freeUDPPort(t), freePort(t)
	cfg = strings.NewReplacer("SYSUDP", strconv.Itoa(sysUDP), "PYTCP", strconv.Itoa(pyTCP)).Replace(appCaddyfile)
	return startCaddy(t, cfg), sysUDP, pyTCP, cfg
}

// amplification waits for n entries in amp.log, checks each is marked
// truncated, and that the file holds at most 4 bytes per byte sent.
func amplification(t *testing.T, s *server, n, sent int) {
	t.Helper()
	path := filepath.Join(s.Dir, "amp.log")
	deadline := time.Now().Add(20 * time.Second)
	for {
		data, _ := os.ReadFile(path)
		if bytes.Count(data, []byte{'\n'}) >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	ratio := float64(st.Size()) / float64(sent)
	t.Logf("%d bytes sent, %d bytes written: %.2f bytes written per byte sent", sent, st.Size(), ratio)
	if ratio > 4 {
		t.Errorf("amplification %.2f > 4", ratio)
	}
	if st.Size() > 64<<20 {
		return // not worth parsing
	}
	lines := readLines(t, path)
	if len(lines) != n {
		t.Fatalf("%d entries, want %d", len(lines), n)
	}
	for _, l := range lines {
		if l["truncated"] != true {
			t.Fatalf("entry not marked truncated: %.300v", l)
		}
	}
}

const ampPickleClient = `
import logging, logging.handlers, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
class Counting(logging.handlers.SocketHandler):
    sent = 0
    def send(self, s):
        Counting.sent += len(s)
        super().send(s)
h = Counting("127.0.0.1", port)
log = logging.getLogger("amp.pickle")
log.propagate = False
log.addHandler(h)
s = "x" * 600
inner = [s] * 100      # 100 memo references to s
blob = [inner] * 100   # 100 to inner: 10,000 to s
for i in range(n):
    log.warning("expanded %d", i, extra={"app": "amp", "blob": blob})
h.close()
print(Counting.sent)
`

func attackPickleAmplification(t *testing.T) {
	s, _, pyTCP, _ := appServer(t)
	const n = 10
	out, _ := runPython(t, s.Dir, ampPickleClient, strconv.Itoa(pyTCP), strconv.Itoa(n))
	sent, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil || sent > n*2000 {
		t.Fatalf("client sent %q bytes: not the ~1.5 KB pickles meant", out)
	}
	amplification(t, s, n, sent)
}

func attackSyslogControlBytes(t *testing.T) {
	s, sysUDP, _, _ := appServer(t)
	var ctl []byte
	for len(ctl) < 1000 {
		for c := byte(1); c < 0x20; c++ {
			if c != '\n' && c != '\r' {
				ctl = append(ctl, c)
			}
		}
	}
	const n = 20
	var msgs []string
	sent := 0
	for i := range n {
		msg := fmt.Sprintf("<12>1 - attacker amp.syslog - - - %d ", i) + string(ctl)
		msgs = append(msgs, msg)
		sent += len(msg)
	}
	sendRaw(t, "udp", sysUDP, msgs...)
	amplification(t, s, n, sent)
}

// attackTinyRecords measures the part of an entry no input controls: for
// records of a few bytes it is most of what is written, and it must not
// grow with anything a sender can choose.
func attackTinyRecords(t *testing.T) {
	s, sysUDP, _, _ := appServer(t)
	const n, msg = 200, "<13>amp: x"
	msgs := make([]string, n)
	for i := range msgs {
		msgs[i] = msg
	}
	sendRaw(t, "udp", sysUDP, msgs...)
	path := filepath.Join(s.Dir, "amp.log")
	lines := waitLines(t, path, n)
	if len(lines) != n {
		t.Fatalf("%d entries, want %d", len(lines), n)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	longest := 0
	for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		longest = max(longest, len(line)+1)
	}
	t.Logf("%d datagrams of %d bytes: %d bytes written, %.0f per entry, the longest %d", n, len(msg), len(data), float64(len(data))/n, longest)
	if longest > 300 {
		t.Errorf("an entry of a %d-byte datagram is %d bytes, want ≤ 300", len(msg), longest)
	}
	for _, l := range lines {
		if l["truncated"] == true || l["msg"] != "x" {
			t.Fatalf("entry cut or changed: %v", l)
		}
	}
}

func attackJSONAmplification(t *testing.T) {
	s, _, _, _ := appServer(t)
	var body bytes.Buffer
	const n = 10
	for i := range n {
		fmt.Fprintf(&body, `{"app":"amp","logger":"amp.json","msg":"m%d"`, i)
		for k := range 100 {
			fmt.Fprintf(&body, `,"%c%d":1e300`, 'a'+k%26, k/26)
		}
		body.WriteString(`,"deep":` + strings.Repeat("[", 60) + strings.Repeat("]", 60) + "}\n")
	}
	status, reply := post(t, s.URL("/_applog"), "application/x-ndjson", body.Bytes(), nil)
	if status != http.StatusOK {
		t.Fatalf("%d %s", status, reply)
	}
	amplification(t, s, n, body.Len())
}

func attackFormAmplification(t *testing.T) {
	s, _, _, _ := appServer(t)
	form := url.Values{
		"app": {"amp"}, "name": {"amp.form"}, "levelname": {"INFO"}, "levelno": {"20"},
		"msg":  {strings.Repeat("%(a)s", 200)},
		"args": {"{'a': '" + strings.Repeat("x", 600) + "'}"},
	}
	body := []byte(form.Encode())
	const n = 5
	for range n {
		status, reply := post(t, s.URL("/_applog"), "application/x-www-form-urlencoded", body, nil)
		if status != http.StatusOK {
			t.Fatalf("%d %s", status, reply)
		}
	}
	amplification(t, s, n, n*len(body))
}

const interleaveClient = `
import logging, logging.handlers, sys
h = logging.handlers.SocketHandler("127.0.0.1", int(sys.argv[1]))
log = logging.getLogger("web.requests")
log.propagate = False
log.addHandler(h)
for i in range(int(sys.argv[2])):
    for app in ("appa", "appb"):
        log.warning("%s python_socket %d", app, i, extra={"app": app})
h.close()
`

func attackInterleavedApps(t *testing.T) {
	s, sysUDP, pyTCP, _ := appServer(t)
	const n = 5
	conn, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", sysUDP))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i := range n {
		for _, app := range []string{"appa", "appb"} {
			body := fmt.Sprintf(`{"app":%q,"logger":"web.requests","msg":"%s log_ingest %d"}`, app, app, i)
			if status, reply := post(t, s.URL("/_applog"), "application/json", []byte(body), nil); status != http.StatusOK {
				t.Fatalf("%d %s", status, reply)
			}
			if _, err := fmt.Fprintf(conn, "<12>1 - host %s.web.requests - - - %s syslog %d", app, app, i); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Millisecond)
		}
	}
	runPython(t, s.Dir, interleaveClient, strconv.Itoa(pyTCP), strconv.Itoa(n))
	for _, app := range []string{"appa", "appb"} {
		waitLines(t, filepath.Join(s.Dir, app+".log"), 3*n)
		time.Sleep(200 * time.Millisecond) // and no more
		lines := readLines(t, filepath.Join(s.Dir, app+".log"))
		for _, l := range lines {
			msg, _ := l["msg"].(string)
			if l["app"] != app || l["logger"] != "applog."+app+".web.requests" || !strings.HasPrefix(msg, app+" ") {
				t.Errorf("%s.log: %v / %v / %q", app, l["app"], l["logger"], msg)
			}
		}
		if len(lines) != 3*n {
			t.Errorf("%s.log has %d entries, want %d (%d from each door)", app, len(lines), 3*n, n)
		}
	}
}

// restartCaddy ends s (SIGTERM, or SIGKILL when kill) and starts Caddy
// again on the same folder, data directory, ports and Caddyfile.
func restartCaddy(t *testing.T, s *server, kill bool) *server {
	t.Helper()
	if kill {
		s.d.Kill()
	} else {
		s.stop()
	}
	n := &server{t: t, Dir: s.Dir, HTTPPort: s.HTTPPort, AdminPort: s.AdminPort}
	n.launch(t)
	return n
}

func attackReplay(t *testing.T, how string) {
	s, _, _, cfg := appServer(t)
	body := []byte(`{"app":"paid","msg":"pay 100 EUR once"}`)
	h := http.Header{"X-Applog-Signature": {sign("s3cret-key", strconv.FormatInt(time.Now().Unix(), 10), body)}}
	if status, reply := post(t, s.URL("/_applog"), "application/json", body, h); status != http.StatusOK {
		t.Fatalf("first post: %d %s", status, reply)
	}
	waitLines(t, filepath.Join(s.Dir, "paid.log"), 1)
	switch how {
	case "restart":
		s = restartCaddy(t, s, false)
	case "kill":
		s = restartCaddy(t, s, true)
	case "reload":
		s.reload(cfg)
	}
	status, reply := post(t, s.URL("/_applog"), "application/json", body, h)
	if status != http.StatusConflict || !strings.Contains(reply, "replayed request") {
		t.Errorf("replay after %s: %d %s", how, status, reply)
	}
	// A fresh signature of the same body is still accepted.
	h2 := http.Header{"X-Applog-Signature": {sign("s3cret-key", strconv.FormatInt(time.Now().Unix()+1, 10), body)}}
	if status, reply := post(t, s.URL("/_applog"), "application/json", body, h2); status != http.StatusOK {
		t.Errorf("fresh signature after %s: %d %s", how, status, reply)
	}
	time.Sleep(200 * time.Millisecond)
	if lines := readLines(t, filepath.Join(s.Dir, "paid.log")); len(lines) != 2 {
		t.Errorf("paid.log has %d entries, want 2 (the replay not among them)", len(lines))
	}
}

// validate runs `caddy validate` on a config and returns its output and
// whether it failed.
func validate(t *testing.T, config, adapter string) (string, bool) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "config")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"validate", "--config", path}
	if adapter != "" {
		args = append(args, "--adapter", adapter)
	}
	cmd := exec.Command(caddyBin, args...)
	cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+dir+"/data", "XDG_CONFIG_HOME="+dir+"/config")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := runBounded(cmd, 30*time.Second)
	return out.String(), err != nil
}

func attackSecretBraces(t *testing.T) {
	caddyfile := "{\n\tapplog {\n\t\tfacility paid {\n\t\t\tsecret abc{def}\n\t\t}\n\t}\n}\n"
	out, failed := validate(t, caddyfile, "caddyfile")
	if !failed || !strings.Contains(out, "a secret has braces like a placeholder") {
		t.Errorf("Caddyfile with secret abc{def}: failed=%v\n%s", failed, out)
	}
	// The message (not the config's path, which has the test's name).
	if _, msg, _ := strings.Cut(out, "a secret has braces"); strings.Contains(strings.Split(msg, ", at ")[0], "abc{def}") {
		t.Errorf("the error shows the secret:\n%s", out)
	}
	// The same in JSON, which no Caddyfile check sees; and
	// {system.hostname}, which the replacer expanded to a public value.
	for _, secret := range []string{"abc{def}", "{system.hostname}"} {
		cfg, _ := json.Marshal(map[string]any{"apps": map[string]any{"applog": map[string]any{
			"facilities": map[string]any{"paid": map[string]any{"secrets": []string{secret}}}}}})
		out, failed := validate(t, string(cfg), "")
		if !failed || !strings.Contains(out, "a secret has braces like a placeholder") {
			t.Errorf("JSON with secret %s: failed=%v\n%s", secret, failed, out)
		}
	}
}

func attackReservedApp(t *testing.T) {
	for _, opt := range []string{"facility receivers", "python_socket tcp/127.0.0.1:1 {\n\t\t\tapp receivers\n\t\t}"} {
		out, failed := validate(t, "{\n\tapplog {\n\t\t"+opt+"\n\t}\n}\n", "caddyfile")
		if !failed || !strings.Contains(out, `reserved app name \"receivers\"`) {
			t.Errorf("%s: failed=%v\n%s", opt, failed, out)
		}
	}
	s, sysUDP, _, _ := appServer(t)
	status, reply := post(t, s.URL("/_applog"), "application/json", []byte(`{"app":"receivers","logger":"syslog","level":"WARNING","msg":"closing connection"}`), nil)
	if status != http.StatusBadRequest || !strings.Contains(reply, "reserved app name") {
		t.Errorf("log_ingest: %d %s", status, reply)
	}
	sendRaw(t, "udp", sysUDP, "<12>1 - host receivers.syslog - - - closing connection")
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(s.Output(), "reserved app name") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	for _, line := range strings.Split(s.Output(), "\n") {
		if strings.Contains(line, `"logger":"applog.receivers.syslog"`) && !strings.Contains(line, "reserved app name") ||
			strings.Contains(line, `"logger":"applog.receivers"`) {
			t.Errorf("an imitation got through: %s", line)
		}
	}
	if !strings.Contains(s.Output(), "reserved app name") {
		t.Errorf("the syslog receiver did not say why it refused the record:\n%s", s.Output())
	}
}

func attackClockClaims(t *testing.T) {
	s, _, _, _ := appServer(t)
	body := `{"app":"clock","msg":"1970","time":"1970-01-01T00:00:00Z"}
{"app":"clock","msg":"2099","time":"2099-01-01T00:00:00Z"}
{"app":"clock","msg":"now"}
`
	before := time.Now()
	if status, reply := post(t, s.URL("/_applog"), "application/x-ndjson", []byte(body), nil); status != http.StatusOK {
		t.Fatalf("%d %s", status, reply)
	}
	lines := waitLines(t, filepath.Join(s.Dir, "clock.log"), 3)
	if len(lines) != 3 {
		t.Fatalf("%d entries", len(lines))
	}
	for i, want := range []float64{0, float64(time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC).Unix())} {
		ts, _ := lines[i]["ts"].(json.Number).Float64()
		recv, err := lines[i]["received"].(json.Number).Float64()
		if ts != want || err != nil || recv < float64(before.Unix()-1) || recv > float64(time.Now().Unix()+1) {
			t.Errorf("%s: ts %v, received %v", lines[i]["msg"], lines[i]["ts"], lines[i]["received"])
		}
	}
	if _, ok := lines[2]["received"]; ok {
		t.Errorf("a record stamped on arrival got a received field: %v", lines[2])
	}
}

func attackNoAppErrors(t *testing.T) {
	s, _, pyTCP, _ := appServer(t)
	status, reply := post(t, s.URL("/_applog"), "application/json", []byte(`{"msg":"whose?"}`), nil)
	if status != http.StatusBadRequest || !strings.Contains(reply, "the `app` query parameter") {
		t.Errorf("log_ingest: %d %s", status, reply)
	}
	runPython(t, s.Dir, `
import logging, logging.handlers, sys
h = logging.handlers.SocketHandler("127.0.0.1", int(sys.argv[1]))
log = logging.getLogger("web")
log.propagate = False
log.addHandler(h)
log.warning("whose?")
h.close()
`, strconv.Itoa(pyTCP))
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(s.Output(), "names no app") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	var line string
	for _, l := range strings.Split(s.Output(), "\n") {
		if strings.Contains(l, "names no app") {
			line = l
		}
	}
	if !strings.Contains(line, "python_socket receiver") || strings.Contains(line, "query parameter") {
		t.Errorf("python_socket's error: %q", line)
	}
}
