package syslog

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// TestWriterTLSKeepsOneConnection checks that TLS records a server sends
// after the handshake are not taken for the server closing the
// connection (which would reconnect for every entry). OpenSSL and
// GnuTLS servers (syslog-ng, rsyslog) send TLS 1.3 session tickets only
// after the client's Finished, so they arrive while the writer is
// connected; Go's server sends them with its handshake, so this server
// sends a record of its own instead.
func TestWriterTLSKeepsOneConnection(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"localhost"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		MinVersion:   tls.VersionTLS13,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var accepted atomic.Int32
	frames := make(chan []string, 1)
	go func() {
		var got []string
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() {
				c.Write([]byte("hello"))
				got = append(got, readFrames(t, c, 20, true)...)
				frames <- got
			}()
		}
	}()
	w := openWriter(t, &Writer{Address: "tls/" + l.Addr().String(), TLS: &TLSConfig{CA: caFile, ServerName: "localhost"}})
	defer w.Close()
	for i := range 20 {
		fmt.Fprintf(w, "<14>1 - - - - - message %d\n", i)
		time.Sleep(2 * time.Millisecond) // let tickets arrive between entries
	}
	select {
	case got := <-frames:
		if got[19] != "<14>1 - - - - - message 19" {
			t.Fatalf("frames %q", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("20 frames did not arrive on one connection (%d connections)", accepted.Load())
	}
	if n := accepted.Load(); n != 1 {
		t.Errorf("%d connections for 20 entries, want 1", n)
	}
}
