package integration

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"path/filepath"
	"testing"

	"github.com/caddy-applog/caddy-applog/internal/testpki"
)

// tlsClientName is the DNS name in the test client certificates; peers
// that check client names (rsyslog's x509/name) permit exactly this one.
const tlsClientName = "client.applog.test"

// tlsPKI is a throw-away public key infrastructure in a test's temporary
// folder, as PEM files: a CA, a server certificate for 127.0.0.1 and
// localhost, and a client certificate, all from that CA; and a "rogue"
// CA with its own client certificate, for peers that must refuse it.
type tlsPKI struct {
	Dir                   string
	CA                    string // CA certificate
	ServerCert, ServerKey string // server certificate (127.0.0.1, ::1, localhost)
	ClientCert, ClientKey string // client certificate signed by CA
	RogueCA               string // an unrelated CA
	RogueCert, RogueKey   string // client certificate signed by RogueCA

	caPool *x509.CertPool
}

// tlsNewPKI generates the certificates (ECDSA P-256) and writes them.
func tlsNewPKI(t testing.TB) *tlsPKI {
	t.Helper()
	dir := t.TempDir()
	p := &tlsPKI{Dir: dir, CA: filepath.Join(dir, "ca.pem"), RogueCA: filepath.Join(dir, "rogue-ca.pem")}
	ca, rogue := testpki.NewCA(t, "applog test CA"), testpki.NewCA(t, "applog rogue CA")
	ca.WriteCA(t, p.CA)
	rogue.WriteCA(t, p.RogueCA)
	p.caPool = ca.Pool

	server := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "localhost"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.IPv6loopback},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	p.ServerCert, p.ServerKey = tlsIssue(t, dir, "server", ca, server)
	client := &x509.Certificate{
		Subject:     pkix.Name{CommonName: tlsClientName},
		DNSNames:    []string{tlsClientName},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	p.ClientCert, p.ClientKey = tlsIssue(t, dir, "client", ca, client)
	// The rogue certificate carries the very same name: only its issuer
	// differs, so a refusal proves the chain is checked.
	rogueClient := *client
	p.RogueCert, p.RogueKey = tlsIssue(t, dir, "rogue-client", rogue, &rogueClient)
	return p
}

// tlsIssue signs tmpl with ca and writes <name>.pem and <name>-key.pem.
func tlsIssue(t testing.TB, dir, name string, ca *testpki.CA, tmpl *x509.Certificate) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	testpki.WriteFiles(t, ca.IssueTemplate(t, tmpl), certFile, keyFile)
	return certFile, keyFile
}

// ClientConfig is a crypto/tls client configuration that trusts the test
// CA and presents the given certificate (none when certFile is "").
func (p *tlsPKI) ClientConfig(t testing.TB, certFile, keyFile string) *tls.Config {
	t.Helper()
	cfg := &tls.Config{RootCAs: p.caPool, ServerName: "localhost", MinVersion: tls.VersionTLS12}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		// Presented whatever CAs the server asks for (Go's default
		// would send nothing when the issuer is not among them), so a
		// server must judge the rogue certificate itself.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	}
	return cfg
}
