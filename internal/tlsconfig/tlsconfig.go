// Package tlsconfig builds the TLS settings of the project's TLS client
// (the tls writer) from PEM files or Caddy's certificate cache, serves
// the receivers' servers their certificate from that cache, and reads
// the CA files that clients and servers verify their peers with.
package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddytls"
)

// Client is how a TLS client verifies its server and which certificate
// it presents. Its JSON is that of the modules that embed it.
type Client struct {
	// PEM file of the CA certificates that may sign the server's
	// certificate. Default: the system's roots.
	CA string `json:"ca,omitempty"`

	// PEM files of the client certificate and its key, read again at each
	// connection. Default: none.
	ClientCertificate string `json:"client_certificate,omitempty"`
	ClientKey         string `json:"client_key,omitempty"`

	// Instead of files, the name of a certificate Caddy's tls app manages
	// (and is asked to manage if it does not yet). Default: none.
	ClientCertificateAutomate string `json:"client_certificate_automate,omitempty"`

	// The name the server's certificate must have, also sent as SNI.
	// Default: the host of the address.
	ServerName string `json:"server_name,omitempty"`
}

// Validate checks that the client certificate is given one way, whole.
func (c *Client) Validate() error {
	if (c.ClientCertificate == "") != (c.ClientKey == "") {
		return errors.New("client_cert needs both a certificate file and a key file")
	}
	if c.ClientCertificate != "" && c.ClientCertificateAutomate != "" {
		return errors.New("use client_cert or client_cert_automate, not both")
	}
	return nil
}

// Config builds the settings of a connection to a server at host: TLS
// 1.2 or newer, the server verified against CA (or the system's roots)
// and the client certificate, if any, taken at each handshake, so that
// renewed files or certificates are used without a reload. The files
// are read once now as well, so that a typo fails the config.
func (c *Client) Config(host string) (*tls.Config, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
	if c.ServerName != "" {
		cfg.ServerName = c.ServerName
	}
	if c.CA != "" {
		pool, err := CertPool(c.CA)
		if err != nil {
			return nil, fmt.Errorf("ca: %w", err)
		}
		cfg.RootCAs = pool
	}
	switch {
	case c.ClientCertificate != "":
		if _, err := tls.LoadX509KeyPair(c.ClientCertificate, c.ClientKey); err != nil {
			return nil, fmt.Errorf("client_cert: %w", err)
		}
		certFile, keyFile := c.ClientCertificate, c.ClientKey
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			cert, err := tls.LoadX509KeyPair(certFile, keyFile)
			if err != nil {
				return nil, fmt.Errorf("loading client certificate: %w", err)
			}
			return &cert, nil
		}
	case c.ClientCertificateAutomate != "":
		cfg.GetClientCertificate = automated(c.ClientCertificateAutomate)
	}
	return cfg, nil
}

// automated presents the certificate of name from Caddy's certificate
// cache. A module is provisioned before the apps start, so the running
// tls app is asked to manage name on first use, if its cache has none.
// The writer may dial before any tls app has been provisioned (the
// logs open first), when Caddy's cache does not exist yet: the running
// config must have a tls app before the cache is read.
func automated(name string) func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	// The app asked to manage name: a reload replaces the running tls
	// app, and one that was stopped right after it was asked never
	// delivers, so a newer app is asked again.
	var managedBy atomic.Pointer[caddytls.TLS]
	return func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
		app, err := runningTLS(name)
		if err != nil {
			return nil, err
		}
		if len(caddytls.AllMatchingCertificates(name)) == 0 && managedBy.Swap(app) != app {
			if err := app.Manage(map[string]struct{}{name: {}}); err != nil {
				managedBy.CompareAndSwap(app, nil)
				return nil, fmt.Errorf("client_cert_automate %q: %w", name, err)
			}
		}
		cert, err := cached(name, cri.SupportsCertificate)
		if err != nil {
			return nil, fmt.Errorf("client_cert_automate: %w", err)
		}
		return cert, nil
	}
}

// ServerCertificate is a server's GetCertificate for the certificate of
// name in Caddy's certificate cache, which the tls app (given to Manage
// by the module at its start) obtains and renews in place: each
// handshake takes the current certificate, so a renewal needs no reload.
// The name is fixed whatever SNI the client sends (none, for an IP
// address), as a log door has one identity.
func ServerCertificate(name string) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return func(chi *tls.ClientHelloInfo) (*tls.Certificate, error) {
		cert, err := cached(name, chi.SupportsCertificate)
		if err != nil {
			return nil, fmt.Errorf("certificate_automate: %w", err)
		}
		return cert, nil
	}
}

// Manage asks tlsApp, the one of the config being started, to obtain
// and keep renewed the certificate of name; it returns at once, the
// certificate arriving in the cache in the background.
func Manage(tlsApp *caddytls.TLS, name string) error {
	if err := tlsApp.Manage(map[string]struct{}{name: {}}); err != nil {
		return fmt.Errorf("certificate_automate %q: %w", name, err)
	}
	return nil
}

// cached returns the first certificate of name in Caddy's cache that
// the peer supports.
func cached(name string, supports func(*tls.Certificate) error) (*tls.Certificate, error) {
	var err error
	for _, c := range caddytls.AllMatchingCertificates(name) {
		if err = supports(&c.Certificate); err == nil {
			return &c.Certificate, nil
		}
	}
	if err == nil {
		err = fmt.Errorf("no certificate for %q in Caddy's certificate cache yet", name)
	}
	return nil, err
}

// runningTLS returns the running config's tls app, whose existence
// means Caddy's certificate cache exists too.
func runningTLS(name string) (*caddytls.TLS, error) {
	app, err := caddy.ActiveContext().AppIfConfigured("tls")
	if err != nil {
		return nil, fmt.Errorf("client_cert_automate %q: no running config with a tls app to get the certificate from (yet): %w", name, err)
	}
	return app.(*caddytls.TLS), nil
}

// CertPool reads a PEM file of CA certificates.
func CertPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificates found", file)
	}
	return pool, nil
}

// UnmarshalOption parses Client's options inside a writer's Caddyfile
// block, the dispenser at opt's arguments (args):
//
//	ca                   <pem-file>
//	client_cert          <cert-file> <key-file>
//	client_cert_automate <name>
//	server_name          <name>
//
// It reports false for an option that is not one of these.
func (c *Client) UnmarshalOption(d *caddyfile.Dispenser, opt string, args []string) (bool, error) {
	want := 1
	if opt == "client_cert" {
		want = 2
	}
	switch opt {
	case "ca", "client_cert", "client_cert_automate", "server_name":
		if len(args) != want {
			return true, d.ArgErr()
		}
	default:
		return false, nil
	}
	switch opt {
	case "ca":
		c.CA = args[0]
	case "client_cert":
		c.ClientCertificate, c.ClientKey = args[0], args[1]
	case "client_cert_automate":
		c.ClientCertificateAutomate = args[0]
	case "server_name":
		c.ServerName = args[0]
	}
	return true, nil
}
