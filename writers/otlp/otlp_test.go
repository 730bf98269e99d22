package otlp

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-applog/caddy-applog/internal/forward"
	"github.com/caddy-applog/caddy-applog/internal/forward/forwardtest"
	"github.com/caddy-applog/caddy-applog/internal/testpki"
)

func TestUnmarshalCaddyfile(t *testing.T) {
	d := caddyfile.NewTestDispenser(`otlp https://collector.example:4318 {
		header Authorization "Bearer {env.OTLP_KEY}"
		header X-Scope shop
		resource_attribute deployment.environment.name prod
		compression none
		ca /etc/ca.pem
		client_cert /etc/c.pem /etc/c.key
		server_name collector.internal
		spool /var/spool/otlp {
			max_size 2GiB
			on_full drop_oldest
			fsync 100ms
		}
		buffer 5000
		batch_size 1MiB
		batch_records 500
		batch_timeout 1s
		timeout 5s
		backoff 1s 1m
	}`)
	var w Writer
	if err := w.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(&w)
	want := `{"endpoint":"https://collector.example:4318","headers":{"Authorization":"Bearer {env.OTLP_KEY}","X-Scope":"shop"},"resource_attributes":{"deployment.environment.name":"prod"},"compression":"none","ca":"/etc/ca.pem","client_certificate":"/etc/c.pem","client_key":"/etc/c.key","server_name":"collector.internal","batch_size":1048576,"batch_records":500,"batch_timeout":1000000000,"timeout":5000000000,"spool":{"dir":"/var/spool/otlp","max_size":2147483648,"on_full":"drop_oldest","fsync":"100ms"},"buffer":5000,"backoff_min":1000000000,"backoff_max":60000000000}`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	for _, bad := range []string{
		`otlp`,
		`otlp http://a http://b`,
		"otlp http://a {\nheader X\n}",
		"otlp http://a {\ncolour blue\n}",
		"otlp http://a {\nbatch_size lots\n}",
		"otlp http://a {\nbatch_records 0\n}",
		"otlp http://a {\nbatch_records many\n}",
		"otlp http://a {\nbatch_timeout soon\n}",
		"otlp http://a {\nbatch_timeout 1s 2s\n}",
		"otlp http://a {\nspool /x {\nsize 1\n}\n}",
	} {
		var w Writer
		if err := w.UnmarshalCaddyfile(caddyfile.NewTestDispenser(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		w   Writer
		err string
	}{
		{Writer{}, "endpoint is required"},
		{Writer{Endpoint: "collector:4318"}, "want an http:// or https:// URL"},
		{Writer{Endpoint: "ftp://collector"}, "want an http:// or https:// URL"},
		{Writer{Endpoint: "http://collector", Compression: "zstd"}, "compression"},
		{Writer{Endpoint: "http://collector", BatchRecords: -1}, "batch_records"},
		{Writer{Endpoint: "http://collector", ResourceAttributes: map[string]string{"service.name": "x"}}, "service.name"},
		{Writer{Endpoint: "http://collector", Options: forward.Options{Spool: &forward.Spool{Dir: "/x", MaxSize: 1 << 20, OnFull: "panic"}}}, "on_full"},
	} {
		w := tc.w
		w.Buffer, w.BackoffMin, w.BackoffMax = 1, 1, 1
		if err := w.Validate(); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%+v: %v, want %q", tc.w, err, tc.err)
		}
	}
	w := Writer{Endpoint: "http://collector"}
	w.CA = "/ca.pem"
	w.Buffer, w.BackoffMin, w.BackoffMax = 1, 1, 1
	if err := w.Validate(); err == nil || !strings.Contains(err.Error(), "need https") {
		t.Errorf("TLS options on http://: %v", err)
	}
	for in, want := range map[string]string{
		"http://c:4318":            "http://c:4318/v1/logs",
		"https://c/":               "https://c/v1/logs",
		"https://c/otlp/v1/logs":   "https://c/otlp/v1/logs",
		"https://c:443/custom?x=1": "https://c:443/custom?x=1",
	} {
		u, err := endpointURL(in)
		if err != nil || u.String() != want {
			t.Errorf("endpoint %q: %v %v, want %q", in, u, err, want)
		}
	}
}

// TestModule provisions the writer from its Caddyfile form with mutual
// TLS from files and an API key header from the environment, and sends
// entries through its spool to the collector.
func TestModule(t *testing.T) {
	c := startCollector(t)
	dir := t.TempDir()
	c.ca.WriteCA(t, filepath.Join(dir, "ca.pem"))
	testpki.WriteFiles(t, c.cli, filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key"))
	t.Setenv("OTLP_TEST_KEY", "s3cret")
	var w Writer
	err := w.UnmarshalCaddyfile(caddyfile.NewTestDispenser(`otlp ` + c.srv.URL + ` {
		header Authorization "Bearer {env.OTLP_TEST_KEY}"
		resource_attribute deployment.environment.name test
		ca ` + filepath.Join(dir, "ca.pem") + `
		client_cert ` + filepath.Join(dir, "client.pem") + ` ` + filepath.Join(dir, "client.key") + `
		server_name localhost
		spool ` + filepath.Join(dir, "spool") + `
		backoff 50ms 200ms
	}`))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	if err := w.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	out, err := w.OpenWriter()
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	for _, line := range []string{
		`{"level":"info","ts":1795255200.5,"logger":"applog.shop.orders","msg":"paid","app":"shop","host":"10.0.0.2","level_no":20,"level_name":"INFO","order":7}`,
		`not json`,
	} {
		if _, err := out.Write([]byte(line + "\n")); err != nil {
			t.Fatal(err)
		}
	}
	forwardtest.WaitFor(t, 10*time.Second, "both records", func() bool { return len(c.Received()) == 2 })
	c.mu.Lock()
	defer c.mu.Unlock()
	if got := c.headers[0].Get("Authorization"); got != "Bearer s3cret" {
		t.Errorf("Authorization %q", got)
	}
	if got := c.headers[0].Get("Content-Encoding"); got != "gzip" {
		t.Errorf("Content-Encoding %q", got)
	}
	var resources []string
	for _, e := range c.exports {
		for _, rl := range e.ResourceLogs {
			resources = append(resources, attr(rl.Resource.Attributes, "service.name")+"@"+attr(rl.Resource.Attributes, "host.name")+" "+attr(rl.Resource.Attributes, "deployment.environment.name"))
		}
	}
	if len(resources) != 2 || resources[0] != "shop@10.0.0.2 test" || !strings.HasPrefix(resources[1], "caddy@") || !strings.HasSuffix(resources[1], " test") {
		t.Errorf("resources %q", resources)
	}
	if got := c.got; got[0] != "paid" || got[1] != "not json" {
		t.Errorf("bodies %q", got)
	}
}

// TestBatchOptions checks the batch settings the sender gets, from the
// Caddyfile and from JSON: the defaults, given values, and no wait.
func TestBatchOptions(t *testing.T) {
	for i, tc := range []struct {
		caddyfile, json string
		records         int
		linger          time.Duration
	}{
		{caddyfile: "", records: 8192, linger: 200 * time.Millisecond},
		{json: `{}`, records: 8192, linger: 200 * time.Millisecond},
		{caddyfile: "batch_records 10\nbatch_timeout 50ms", records: 10, linger: 50 * time.Millisecond},
		{json: `{"batch_records":10,"batch_timeout":"50ms"}`, records: 10, linger: 50 * time.Millisecond},
		{caddyfile: "batch_timeout 0", records: 8192, linger: 0},
		{json: `{"batch_timeout":-1}`, records: 8192, linger: 0},
	} {
		endpoint := fmt.Sprintf("http://127.0.0.1:9/batch%d", i)
		var w Writer
		if tc.json != "" {
			if err := json.Unmarshal([]byte(tc.json), &w); err != nil {
				t.Fatal(err)
			}
			w.Endpoint = endpoint
		} else if err := w.UnmarshalCaddyfile(caddyfile.NewTestDispenser("otlp " + endpoint + " {\n" + tc.caddyfile + "\n}")); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		err := w.Provision(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if w.cfg.BatchRecords != tc.records || w.cfg.Linger != tc.linger {
			t.Errorf("%q%s: batch of %d records, linger %v; want %d, %v", tc.caddyfile, tc.json, w.cfg.BatchRecords, w.cfg.Linger, tc.records, tc.linger)
		}
	}
}
