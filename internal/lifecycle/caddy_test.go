package lifecycle

import (
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// probeWriter is a log writer module that records whether Caddy closed
// what it opened.
type probeWriter struct {
	Name string `json:"name,omitempty"`
}

var probes struct {
	sync.Mutex
	opened, closed map[string]int
}

func (probeWriter) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "caddy.logging.writers.lifecycle_probe",
		New: func() caddy.Module { return new(probeWriter) },
	}
}

func (w probeWriter) String() string    { return "probe " + w.Name }
func (w probeWriter) WriterKey() string { return "lifecycle_probe:" + w.Name }

func (w probeWriter) OpenWriter() (io.WriteCloser, error) {
	probes.Lock()
	probes.opened[w.Name]++
	probes.Unlock()
	return probeFile{w.Name}, nil
}

type probeFile struct{ name string }

func (probeFile) Write(p []byte) (int, error) { return len(p), nil }

func (f probeFile) Close() error {
	probes.Lock()
	probes.closed[f.name]++
	probes.Unlock()
	return nil
}

func init() { caddy.RegisterModule(probeWriter{}) }

func probeConfig(name string) []byte {
	return fmt.Appendf(nil, `{"admin":{"disabled":true},"logging":{"logs":{"probe":{"writer":{"output":"lifecycle_probe","name":%q}}}}}`, name)
}

// TestCaddyClosesNoPooledWriter loads a config with a log writer into
// Caddy in this process, replaces it with one whose writer has another
// key, and stops Caddy: in v2.11 the first writer is never closed, which
// is why internal/lifecycle leases and drains (see the package doc).
func TestCaddyClosesNoPooledWriter(t *testing.T) {
	probes.Lock()
	probes.opened, probes.closed = map[string]int{}, map[string]int{}
	probes.Unlock()
	if err := caddy.Load(probeConfig("first"), true); err != nil {
		t.Fatal(err)
	}
	if err := caddy.Load(probeConfig("second"), true); err != nil {
		t.Fatal(err)
	}
	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
	probes.Lock()
	defer probes.Unlock()
	if probes.opened["first"] != 1 || probes.opened["second"] != 1 {
		t.Fatalf("Caddy opened %v, want each writer once: the probe does not see Caddy's logging", probes.opened)
	}
	if n := probes.closed["first"] + probes.closed["second"]; n != 0 {
		t.Fatalf("Caddy closed its pooled log writers itself (%v) after a reload and a stop: "+
			"internal/lifecycle's exit drain and the writers' handles, which exist because it never did, can now be simplified",
			probes.closed)
	}
}
