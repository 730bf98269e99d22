// Package integration holds end-to-end tests: they build the real Caddy
// binary with the plugin, start it on loopback ports with a Caddyfile,
// drive it with real clients (python3's logging.handlers, curl, Go's
// log/slog) and assert on the bytes that land in Caddy's log outputs.
package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/caddy-applog/caddy-applog/internal/testdaemon"
	"github.com/caddy-applog/caddy-applog/internal/testtool"
)

// caddyBin is the binary built once for the whole package.
var caddyBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "applog-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	caddyBin = filepath.Join(dir, "caddy")
	// Built in the root module, from its own folder, as a plugin user builds
	// it: integration is a module of its own, with test-only dependencies.
	build := exec.Command("go", "build", "-o", caddyBin, "./cmd/caddy")
	build.Dir = ".."
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building caddy:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// requireTool returns the path of an external program the test needs
// (testtool.Require: a skip, or a failure under CI=true, naming the
// command that installs it).
func requireTool(t *testing.T, name string) string {
	t.Helper()
	return testtool.Require(t, name)
}

// freePort returns a loopback TCP port that was free a moment ago and
// that no other test of this process was given.
func freePort(t *testing.T) int {
	t.Helper()
	return freeTCPPort(t, "127.0.0.1:0")
}

// freeTCPPort is freePort on the host of addr (port 0).
func freeTCPPort(t *testing.T, addr string) int {
	t.Helper()
	return uniquePort(t, func() (int, error) {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return 0, err
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port, nil
	})
}

// freeUDPPort returns a loopback UDP port that was free a moment ago
// and that no other test of this process was given.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	return uniquePort(t, func() (int, error) {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port, nil
	})
}

// givenPorts are the ports handed out so far. The kernel may hand out a
// port again once it was closed (after thousands of connections, often),
// and Caddy listens with SO_REUSEPORT: two servers on one port would
// share its connections without a word.
var givenPorts struct {
	sync.Mutex
	m map[int]bool
}

// uniquePort asks pick for free ports until it gives one not handed out
// before (a bounded number of times).
func uniquePort(t *testing.T, pick func() (int, error)) int {
	t.Helper()
	givenPorts.Lock()
	defer givenPorts.Unlock()
	if givenPorts.m == nil {
		givenPorts.m = make(map[int]bool)
	}
	for range 100 {
		port, err := pick()
		if err != nil {
			t.Fatal(err)
		}
		if !givenPorts.m[port] {
			givenPorts.m[port] = true
			return port
		}
	}
	t.Fatal("no loopback port that was not handed out before, in 100 tries")
	return 0
}

// server is a running Caddy started by startCaddy.
type server struct {
	t         *testing.T
	Dir       string // scratch folder: logs, Caddyfile
	HTTPPort  int
	AdminPort int
	d         *testdaemon.Daemon
}

// caddyHeap reads Caddy's live heap, in bytes, from the admin API's
// expvar memstats. It returns an error rather than failing the test, for
// samplers that run beside it.
func caddyHeap(s *server) (int64, error) {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/vars", s.AdminPort))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	var vars struct {
		Memstats struct{ HeapAlloc int64 } `json:"memstats"`
	}
	if err := json.Unmarshal(body, &vars); err != nil {
		return 0, fmt.Errorf("admin /debug/vars: %s: %w: %.200s", resp.Status, err, body)
	}
	return vars.Memstats.HeapAlloc, nil
}

// caddyMemory returns Caddy's live heap (see caddyHeap) and its resident
// set size, in bytes.
func caddyMemory(t *testing.T, s *server) (heap, rss int64) {
	t.Helper()
	heap, err := caddyHeap(s)
	if err != nil {
		t.Fatal(err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.d.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(status), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			rss = kb << 10
		}
	}
	return heap, rss
}

// every calls f every interval from a goroutine of its own until the
// returned stop is called; stop returns once that goroutine has.
func every(interval time.Duration, f func()) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				f()
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// sendRaw writes data on one connection to a loopback port and closes
// it; over UDP, each datum is a datagram, 5ms after the one before, so
// that none is dropped in the socket buffer.
func sendRaw(t *testing.T, network string, port int, data ...string) {
	t.Helper()
	c, err := net.Dial(network, fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, d := range data {
		if _, err := c.Write([]byte(d)); err != nil {
			t.Fatal(err)
		}
		if network == "udp" {
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// URL returns the HTTP address of path on the server.
func (s *server) URL(path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", s.HTTPPort, path)
}

// startCaddy renders caddyfile as a text/template with .HTTPPort,
// .AdminPort and .Dir, starts Caddy on it, and waits until it runs it
// with every listener up.
func startCaddy(t *testing.T, caddyfile string) *server {
	t.Helper()
	return startCaddyWith(t, caddyfile, nil)
}

// startCaddyWith is startCaddy with prepare run on the scratch folder
// first, for files the config needs to exist.
func startCaddyWith(t *testing.T, caddyfile string, prepare func(dir string)) *server {
	t.Helper()
	s := &server{t: t, Dir: t.TempDir(), HTTPPort: freePort(t), AdminPort: freePort(t)}
	if prepare != nil {
		prepare(s.Dir)
	}
	if err := os.WriteFile(filepath.Join(s.Dir, "Caddyfile"), s.render(caddyfile), 0o644); err != nil {
		t.Fatal(err)
	}
	s.launch(t)
	return s
}

// launch runs Caddy on the Caddyfile in s.Dir, with its data and config
// folders there too, and waits until it runs that config and every
// listener the config names is up (see waitListeners); it is stopped
// when t ends.
func (s *server) launch(t *testing.T) {
	t.Helper()
	cmd := exec.Command(caddyBin, "run", "--config", filepath.Join(s.Dir, "Caddyfile"), "--adapter", "caddyfile")
	cmd.Dir = s.Dir
	cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+s.Dir+"/data", "XDG_CONFIG_HOME="+s.Dir+"/config")
	d, err := testdaemon.Start(context.Background(), "caddy", cmd, s.AdminPort, s.HTTPPort)
	if err != nil {
		t.Fatal(err)
	}
	s.d = d
	t.Cleanup(s.stop)
	s.waitListeners(t)
}

func (s *server) render(caddyfile string) []byte {
	tmpl := template.Must(template.New("Caddyfile").Parse(caddyfile))
	var b bytes.Buffer
	if err := tmpl.Execute(&b, s); err != nil {
		s.t.Fatal(err)
	}
	return b.Bytes()
}

// reload loads a new Caddyfile through the admin API, as `caddy reload`
// does, and waits until every listener of the new config is up.
func (s *server) reload(caddyfile string) {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/load", s.AdminPort), bytes.NewReader(s.render(caddyfile)))
	req.Header.Set("Content-Type", "text/caddyfile")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		s.t.Fatalf("reload: %s: %s", resp.Status, body)
	}
	// Kept-alive connections belong to the old config's servers, which
	// close them as they stop: a POST that picks one as it closes fails
	// with EOF (net/http retries only idempotent requests).
	http.DefaultClient.CloseIdleConnections()
	s.waitListeners(s.t)
}

// stop ends Caddy gracefully, killing it if it does not exit in time.
func (s *server) stop() {
	s.d.Stop()
	if s.t.Failed() {
		s.t.Logf("caddy output:\n%s", s.d.Output())
	}
}

// Output returns what Caddy printed so far.
func (s *server) Output() string { return s.d.Output() }

// readLines returns the JSON entries of a log file, numbers kept exact.
func readLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		t.Fatal(err)
	}
	// Only whole lines: a writer may be in the middle of the last one
	// (a read can see part of a write(2) to a regular file).
	if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
		data = data[:i+1]
	} else {
		data = nil
	}
	var out []map[string]any
	for i, line := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		if line == "" {
			continue
		}
		dec := json.NewDecoder(strings.NewReader(line))
		dec.UseNumber()
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("%s line %d is not JSON: %v: %q", path, i+1, err, line)
		}
		out = append(out, m)
	}
	return out
}

// waitLines polls until path has at least n entries (bounded wait).
func waitLines(t *testing.T, path string, n int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		lines := readLines(t, path)
		if len(lines) >= n || time.Now().After(deadline) {
			return lines
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// post sends body and returns the status and the response body.
func post(t *testing.T, url, contentType string, body []byte, header http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// getJSON GETs url and decodes its JSON body into v, failing t unless
// the answer is a 200 whose body decodes.
func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s: %s", url, resp.Status, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// runPython runs script with python3 and returns its standard output.
func runPython(t *testing.T, dir, script string, args ...string) (stdout, stderr string) {
	t.Helper()
	py := requireTool(t, "python3")
	path := filepath.Join(dir, "client.py")
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	var o, e bytes.Buffer
	cmd := exec.Command(py, append([]string{path}, args...)...)
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := runBounded(cmd, time.Minute); err != nil {
		t.Fatalf("python3 %s: %v\n%s", path, err, e.String())
	}
	return o.String(), e.String()
}

// runBounded runs cmd, killing it after limit.
func runBounded(cmd *exec.Cmd, limit time.Duration) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	timer := time.AfterFunc(limit, func() { _ = cmd.Process.Kill() })
	defer timer.Stop()
	return cmd.Wait()
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a
// child's stdout and stderr.
type syncBuffer = testdaemon.Buffer

// eachLine calls fn with every line of a log file or backup, which is
// decompressed by its suffix (.gz, .zst); lines up to 4 MiB.
func eachLine(t *testing.T, path string, fn func(line []byte)) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r io.Reader = f
	switch {
	case strings.HasSuffix(path, ".gz"):
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		r = zr
	case strings.HasSuffix(path, ".zst"):
		zr, err := zstd.NewReader(f)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		defer zr.Close()
		r = zr
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 4<<20)
	for sc.Scan() {
		fn(sc.Bytes())
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
