package integration

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
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
	p := &tlsPKI{Dir: dir}
	ca, caKey := tlsMakeCA(t, "applog test CA")
	rogue, rogueKey := tlsMakeCA(t, "applog rogue CA")
	p.CA = tlsWriteCert(t, dir, "ca.pem", ca)
	p.RogueCA = tlsWriteCert(t, dir, "rogue-ca.pem", rogue)
	p.caPool = x509.NewCertPool()
	p.caPool.AddCert(ca)

	server := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "localhost"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.IPv6loopback},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	p.ServerCert, p.ServerKey = tlsIssue(t, dir, "server", server, ca, caKey)
	client := &x509.Certificate{
		Subject:     pkix.Name{CommonName: tlsClientName},
		DNSNames:    []string{tlsClientName},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	p.ClientCert, p.ClientKey = tlsIssue(t, dir, "client", client, ca, caKey)
	// The rogue certificate carries the very same name: only its issuer
	// differs, so a refusal proves the chain is checked.
	rogueClient := *client
	p.RogueCert, p.RogueKey = tlsIssue(t, dir, "rogue-client", &rogueClient, rogue, rogueKey)
	return p
}

// tlsSerial returns a random positive serial number.
func tlsSerial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		t.Fatal(err)
	}
	return n.Add(n, big.NewInt(1))
}

func tlsMakeCA(t testing.TB, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          tlsSerial(t),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"caddy-applog tests"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// tlsIssue signs tmpl with the CA and writes <name>.pem and <name>-key.pem.
func tlsIssue(t testing.TB, dir, name string, tmpl, ca *x509.Certificate, caKey *ecdsa.PrivateKey) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = tlsSerial(t)
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	certFile = tlsWriteCert(t, dir, name+".pem", cert)
	// PKCS#8 is read by Go, GnuTLS (rsyslog) and OpenSSL (syslog-ng) alike.
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyFile = filepath.Join(dir, name+"-key.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func tlsWriteCert(t testing.TB, dir, name string, cert *x509.Certificate) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
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
