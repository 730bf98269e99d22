package receiver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/caddytls" // the tls.ca_pool.source modules

	"github.com/caddy-applog/caddy-applog/internal/testpki"
)

func TestTLSCaddyfile(t *testing.T) {
	var s Server
	d := caddyfile.NewTestDispenser(`syslog tls/127.0.0.1:6514 {
		tls {
			certificate_automate logs.example.net
			trust_pool file /etc/ca.pem
		}
	}`)
	d.Next()
	if err := s.UnmarshalServer(d, "syslog", func(string) (bool, error) { return false, nil }); err != nil {
		t.Fatal(err)
	}
	if s.TLS == nil || s.TLS.CertificateAutomate != "logs.example.net" {
		t.Fatalf("%+v", s.TLS)
	}
	var pool map[string]any
	if err := json.Unmarshal(s.TLS.TrustPoolRaw, &pool); err != nil || pool["provider"] != "file" || !strings.Contains(string(s.TLS.TrustPoolRaw), "/etc/ca.pem") {
		t.Errorf("trust_pool: %s (%v)", s.TLS.TrustPoolRaw, err)
	}
	for _, bad := range []string{
		"syslog tls/:6514 {\n tls {\n certificate_automate\n }\n}",
		"syslog tls/:6514 {\n tls {\n certificate_automate a b\n }\n}",
		"syslog tls/:6514 {\n tls {\n trust_pool\n }\n}",
		"syslog tls/:6514 {\n tls {\n trust_pool no_such_source\n }\n}",
	} {
		var s Server
		d := caddyfile.NewTestDispenser(bad)
		d.Next()
		if err := s.UnmarshalServer(d, "syslog", func(string) (bool, error) { return false, nil }); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestTLSProvision checks the certificate and the client CAs are each
// given one way, and that a trust_pool module becomes the client CAs.
// (An automated certificate needs a whole config's tls app: the
// integration test TestTLSAutomate runs it.)
func TestTLSProvision(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	dir := t.TempDir()
	ca := testpki.NewCA(t, "receiver test CA")
	caFile := filepath.Join(dir, "ca.pem")
	ca.WriteCA(t, caFile)
	certFile, keyFile := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key")
	testpki.WriteFiles(t, ca.Issue(t, "localhost", x509.ExtKeyUsageServerAuth), certFile, keyFile)
	filePool := json.RawMessage(`{"provider":"file","pem_files":["` + caFile + `"]}`)

	for _, c := range []struct {
		tls  *TLS
		want string // in the error; "" for none
	}{
		{nil, "need tls"},
		{&TLS{}, "need tls"},
		{&TLS{Certificate: certFile}, "a key file"},
		{&TLS{Certificate: certFile, Key: keyFile, CertificateAutomate: "localhost"}, "not both"},
		{&TLS{CertificateAutomate: "localhost", ClientCA: caFile, TrustPoolRaw: filePool}, "not both"},
		{&TLS{Certificate: certFile, Key: keyFile, TrustPoolRaw: json.RawMessage(`{"provider":"file","pem_files":["` + filepath.Join(dir, "none.pem") + `"]}`)}, "trust_pool"},
		{&TLS{Certificate: certFile, Key: keyFile, ClientCA: caFile}, ""},
		{&TLS{Certificate: certFile, Key: keyFile, TrustPoolRaw: filePool}, ""},
	} {
		s := &Server{Listen: []string{"tls/127.0.0.1:0"}, TLS: c.tls}
		err := s.Provision(ctx, "tlstest", lineProtocol{})
		if c.want != "" {
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%+v: error %v, want one with %q", c.tls, err, c.want)
			}
			continue
		}
		if err != nil {
			t.Errorf("%+v: %v", c.tls, err)
			continue
		}
		cfg := s.tlsConfig
		if cfg.ClientAuth != tls.RequireAndVerifyClientCert || cfg.ClientCAs == nil {
			t.Errorf("%+v: client auth %v, pool %v", c.tls, cfg.ClientAuth, cfg.ClientCAs)
		}
		if len(cfg.Certificates) != 1 || cfg.GetCertificate != nil || s.tlsApp != nil {
			t.Errorf("%+v: %d certificates, GetCertificate %v, tls app %v", c.tls, len(cfg.Certificates), cfg.GetCertificate != nil, s.tlsApp != nil)
		}
	}
	if s := (&Server{Listen: []string{"tcp/127.0.0.1:0"}, TLS: &TLS{CertificateAutomate: "x"}}); s.Provision(ctx, "tlstest", lineProtocol{}) == nil {
		t.Error("tls settings without a tls/ address: no error")
	}
}
