package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-applog/caddy-applog/internal/testpki"
)

// pki is a throwaway CA, its file, and a folder to issue certificates
// into.
type pki struct {
	*testpki.CA
	dir    string
	caFile string
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	p := &pki{CA: testpki.NewCA(t, "test ca"), dir: t.TempDir()}
	p.caFile = filepath.Join(p.dir, "ca.pem")
	p.WriteCA(t, p.caFile)
	return p
}

// issue writes a certificate for name and its key to <file>.pem and
// <file>-key.pem, and returns their paths.
func (p *pki) issue(t *testing.T, file, name string, usage x509.ExtKeyUsage) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = filepath.Join(p.dir, file+".pem"), filepath.Join(p.dir, file+"-key.pem")
	testpki.WriteFiles(t, p.Issue(t, name, usage), certFile, keyFile)
	return certFile, keyFile
}

// server accepts TLS connections that present a client certificate of
// the pki and reports each one's common name.
func (p *pki) server(t *testing.T) (addr string, names <-chan string) {
	t.Helper()
	certFile, keyFile := p.issue(t, "server", "logs.test", x509.ExtKeyUsageServerAuth)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := CertPool(p.caFile)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert,
	})
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan string, 10)
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tc := c.(*tls.Conn)
			tc.SetDeadline(time.Now().Add(5 * time.Second))
			if tc.Handshake() == nil {
				ch <- tc.ConnectionState().PeerCertificates[0].Subject.CommonName
			}
			tc.Close()
		}
	}()
	return ln.Addr().String(), ch
}

func dial(t *testing.T, addr string, cfg *tls.Config) {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// TLS 1.3: the server checks the client certificate after the
	// client's handshake is done; read until it closes.
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	c.Read(make([]byte, 1))
	c.Close()
}

// TestClientFilesReadAtEachHandshake checks that the server is verified
// against the CA file under server_name, and that client certificate
// files replaced on disk (a renewal) are presented at the next
// connection without building the config again.
func TestClientFilesReadAtEachHandshake(t *testing.T) {
	p := newPKI(t)
	addr, names := p.server(t)
	certFile, keyFile := p.issue(t, "client", "web-1", x509.ExtKeyUsageClientAuth)
	c := &Client{CA: p.caFile, ClientCertificate: certFile, ClientKey: keyFile, ServerName: "logs.test"}
	cfg, err := c.Config("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ServerName != "logs.test" || cfg.MinVersion != tls.VersionTLS12 {
		t.Fatalf("server name %q, min version %x", cfg.ServerName, cfg.MinVersion)
	}
	dial(t, addr, cfg)
	if got := <-names; got != "web-1" {
		t.Fatalf("first connection presented %q, want web-1", got)
	}
	renewedCert, renewedKey := p.issue(t, "renewed", "web-1-renewed", x509.ExtKeyUsageClientAuth)
	for _, f := range [][2]string{{renewedCert, certFile}, {renewedKey, keyFile}} {
		if err := os.Rename(f[0], f[1]); err != nil {
			t.Fatal(err)
		}
	}
	dial(t, addr, cfg)
	if got := <-names; got != "web-1-renewed" {
		t.Fatalf("after renewal the connection presented %q, want web-1-renewed", got)
	}
}

// TestClientServerNameDefaultsToHost checks that without server_name the
// host dialled is the name verified, so a server certificate for another
// name is refused.
func TestClientServerNameDefaultsToHost(t *testing.T) {
	p := newPKI(t)
	addr, _ := p.server(t)
	certFile, keyFile := p.issue(t, "client", "web-1", x509.ExtKeyUsageClientAuth)
	cfg, err := (&Client{CA: p.caFile, ClientCertificate: certFile, ClientKey: keyFile}).Config("other.test")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ServerName != "other.test" {
		t.Fatalf("server name %q, want the host", cfg.ServerName)
	}
	_, err = tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	var hostErr x509.HostnameError
	if !errors.As(err, &hostErr) {
		t.Fatalf("a certificate for logs.test accepted as other.test: %v", err)
	}
}

func TestClientSettingsRefused(t *testing.T) {
	p := newPKI(t)
	certFile, keyFile := p.issue(t, "client", "web-1", x509.ExtKeyUsageClientAuth)
	notPEM := filepath.Join(p.dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		c    Client
		want string
	}{
		{Client{ClientCertificate: certFile}, "client_cert needs both a certificate file and a key file"},
		{Client{ClientKey: keyFile}, "client_cert needs both"},
		{Client{ClientCertificate: certFile, ClientKey: keyFile, ClientCertificateAutomate: "web-1"}, "use client_cert or client_cert_automate, not both"},
		{Client{CA: filepath.Join(p.dir, "missing.pem")}, "ca: open "},
		{Client{CA: notPEM}, "ca: " + notPEM + ": no PEM certificates found"},
		{Client{ClientCertificate: certFile, ClientKey: notPEM}, "client_cert: "},
		{Client{ClientCertificate: certFile, ClientKey: p.caFile}, "client_cert: "},
	} {
		_, err := tc.c.Config("h")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.c, err, tc.want)
		}
	}
	if _, err := (&Client{}).Config("h"); err != nil {
		t.Errorf("no settings (system roots, no client certificate): %v", err)
	}
}
