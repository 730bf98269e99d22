package integration

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	goproxy "github.com/pires/go-proxyproto"
)

// accessIPCaddyfile runs four servers that differ only in how they
// decide who the client is; each logs every request with the access
// encoder (the client address in several forms) and with Caddy's json
// encoder, to compare the two. STRICT, UNTRUSTED and V6 are replaced by
// ports before the template is rendered.
const accessIPCaddyfile = `{
	admin 127.0.0.1:{{.AdminPort}}
	servers 127.0.0.1:{{.HTTPPort}} {
		trusted_proxies static 127.0.0.1/32 10.0.0.0/8
		client_ip_headers X-Forwarded-For
		listener_wrappers {
			proxy_protocol {
				timeout 5s
				allow 127.0.0.1/32
			}
		}
	}
	servers 127.0.0.1:STRICT {
		trusted_proxies static 127.0.0.1/32 10.0.0.0/8
		trusted_proxies_strict
		client_ip_headers X-Forwarded-For
	}
	servers [::1]:V6 {
		trusted_proxies static ::1/128
		client_ip_headers X-Forwarded-For
		listener_wrappers {
			proxy_protocol {
				timeout 5s
				allow ::1/128
			}
		}
	}
}

(logs) {
	log {args[0]}_ip {
		output file {{.Dir}}/{args[0]}.log
		format access apache ` + "`" + `%h %a %{c}a "%{X-Forwarded-For}i" "%r" %>s` + "`" + `
	}
	log {args[0]}_combined {
		output file {{.Dir}}/{args[0]}-combined.log
		format access combined
	}
	log {args[0]}_json {
		output file {{.Dir}}/{args[0]}.json
		format json
	}
}

http://127.0.0.1:{{.HTTPPort}} {
	bind 127.0.0.1
	import logs trusted
	log trusted_gunicorn {
		output file {{.Dir}}/trusted-gunicorn.log
		format access gunicorn ` + "`" + `%(h)s "%({x-forwarded-for}i)s" "%(r)s" %(s)s` + "`" + `
	}
	respond "ok"
}

http://127.0.0.1:UNTRUSTED {
	bind 127.0.0.1
	import logs untrusted
	respond "ok"
}

http://127.0.0.1:STRICT {
	bind 127.0.0.1
	import logs strict
	respond "ok"
}

http://[::1]:V6 {
	bind ::1
	import logs ipv6
	respond "ok"
}
`

// accessRequest is one request of TestAccessClientIP and the line the
// access encoder must write for it: %h %a %{c}a "%{X-Forwarded-For}i" "%r" %>s.
type accessRequest struct {
	server string // trusted, untrusted, strict, ipv6
	proxy  *goproxy.Header
	xff    string
	path   string
	want   string
}

func proxyHeader(version byte, src, dst string) *goproxy.Header {
	s, err := net.ResolveTCPAddr("tcp", src)
	if err != nil {
		panic(err)
	}
	d, err := net.ResolveTCPAddr("tcp", dst)
	if err != nil {
		panic(err)
	}
	return goproxy.HeaderProxyFromAddrs(version, s, d)
}

// TestAccessClientIP checks that the access encoder logs as the client
// exactly the address Caddy resolved: through trusted_proxies and
// client_ip_headers, right to left with trusted_proxies_strict, from
// PROXY protocol v1 and v2 headers (IPv4 and IPv6), and never a forged
// X-Forwarded-For from a peer that is not trusted.
func TestAccessClientIP(t *testing.T) {
	if l, err := net.Listen("tcp", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	} else {
		l.Close()
	}
	ports := map[string]int{"STRICT": freePort(t), "UNTRUSTED": freePort(t), "V6": freePort6(t)}
	cf := accessIPCaddyfile
	for k, v := range ports {
		cf = strings.ReplaceAll(cf, k, strconv.Itoa(v))
	}
	s := startCaddy(t, cf)
	addrs := map[string]string{
		"trusted":   fmt.Sprintf("127.0.0.1:%d", s.HTTPPort),
		"untrusted": fmt.Sprintf("127.0.0.1:%d", ports["UNTRUSTED"]),
		"strict":    fmt.Sprintf("127.0.0.1:%d", ports["STRICT"]),
		"ipv6":      fmt.Sprintf("[::1]:%d", ports["V6"]),
	}
	trusted, ipv6 := addrs["trusted"], addrs["ipv6"]

	requests := []accessRequest{
		// A trusted peer (127.0.0.1): the leftmost valid address of
		// X-Forwarded-For.
		{"trusted", nil, "203.0.113.7, 10.0.0.1", "/t1",
			`203.0.113.7 203.0.113.7 127.0.0.1 "203.0.113.7, 10.0.0.1" "GET /t1 HTTP/1.1" 200`},
		// PROXY v1 from a load balancer: the peer becomes the header's
		// source, which is not a trusted proxy, so its forged
		// X-Forwarded-For is ignored.
		{"trusted", proxyHeader(1, "198.51.100.20:4321", trusted), "1.2.3.4", "/t2",
			`198.51.100.20 198.51.100.20 198.51.100.20 "1.2.3.4" "GET /t2 HTTP/1.1" 200`},
		// PROXY v2 naming an internal proxy (10.0.0.0/8 is trusted):
		// its X-Forwarded-For is believed.
		{"trusted", proxyHeader(2, "10.1.2.3:5555", trusted), "203.0.113.50", "/t3",
			`203.0.113.50 203.0.113.50 10.1.2.3 "203.0.113.50" "GET /t3 HTTP/1.1" 200`},
		{"trusted", proxyHeader(2, "198.51.100.21:6000", trusted), "", "/t4",
			`198.51.100.21 198.51.100.21 198.51.100.21 "-" "GET /t4 HTTP/1.1" 200`},
		// Without trusted_proxies_strict Caddy takes the leftmost
		// address, which the client itself may have written.
		{"trusted", nil, "6.6.6.6, 203.0.113.9, 10.0.0.2", "/t5",
			`6.6.6.6 6.6.6.6 127.0.0.1 "6.6.6.6, 203.0.113.9, 10.0.0.2" "GET /t5 HTTP/1.1" 200`},
		// No trusted_proxies: the peer, whatever the header says.
		{"untrusted", nil, "6.6.6.6", "/u1",
			`127.0.0.1 127.0.0.1 127.0.0.1 "6.6.6.6" "GET /u1 HTTP/1.1" 200`},
		// trusted_proxies_strict: right to left, the first address that
		// is not a trusted proxy.
		{"strict", nil, "6.6.6.6, 203.0.113.9, 10.0.0.2", "/s1",
			`203.0.113.9 203.0.113.9 127.0.0.1 "6.6.6.6, 203.0.113.9, 10.0.0.2" "GET /s1 HTTP/1.1" 200`},
		{"strict", nil, "10.0.0.3, 10.0.0.2", "/s2",
			`127.0.0.1 127.0.0.1 127.0.0.1 "10.0.0.3, 10.0.0.2" "GET /s2 HTTP/1.1" 200`},
		// IPv6: a trusted ::1 with X-Forwarded-For, and PROXY v2 and v1
		// headers with IPv6 sources that are not trusted.
		{"ipv6", nil, "2001:db8::1", "/v1",
			`2001:db8::1 2001:db8::1 ::1 "2001:db8::1" "GET /v1 HTTP/1.1" 200`},
		{"ipv6", proxyHeader(2, "[2001:db8::beef]:5555", ipv6), "2001:db8::bad", "/v2",
			`2001:db8::beef 2001:db8::beef 2001:db8::beef "2001:db8::bad" "GET /v2 HTTP/1.1" 200`},
		{"ipv6", proxyHeader(1, "[2001:db8::cafe]:5555", ipv6), "", "/v3",
			`2001:db8::cafe 2001:db8::cafe 2001:db8::cafe "-" "GET /v3 HTTP/1.1" 200`},
	}
	want := map[string][]string{}
	for _, r := range requests {
		var hdr []string
		if r.xff != "" {
			hdr = []string{"X-Forwarded-For: " + r.xff}
		}
		if status := rawRequest(t, addrs[r.server], r.proxy, r.path, hdr); status != 200 {
			t.Fatalf("%s %s: status %d", r.server, r.path, status)
		}
		want[r.server] = append(want[r.server], r.want)
	}

	clf := regexp.MustCompile(`^(\S+) - - \[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] "GET (/\w+) HTTP/1\.1" 200 2 "-" "-"$`)
	for server, lines := range want {
		got := waitTextLines(t, filepath.Join(s.Dir, server+".log"), len(lines))
		if strings.Join(got, "\n") != strings.Join(lines, "\n") {
			t.Errorf("%s.log:\n got:\n%s\nwant:\n%s", server, strings.Join(got, "\n"), strings.Join(lines, "\n"))
		}
		// The combined line of the same request names the same client,
		// and so does Caddy's own JSON entry.
		combined := waitTextLines(t, filepath.Join(s.Dir, server+"-combined.log"), len(lines))
		entries := waitLines(t, filepath.Join(s.Dir, server+".json"), len(lines))
		for i, line := range lines {
			client := strings.Fields(line)[0]
			if i >= len(combined) || i >= len(entries) {
				t.Errorf("%s: missing combined or json line %d", server, i+1)
				continue
			}
			if m := clf.FindStringSubmatch(combined[i]); m == nil || m[1] != client {
				t.Errorf("%s-combined.log line %d = %q, want client %s in Combined Log Format", server, i+1, combined[i], client)
			}
			req, _ := entries[i]["request"].(map[string]any)
			if req["client_ip"] != client {
				t.Errorf("%s.json line %d: Caddy's client_ip = %v, the access encoder logged %s", server, i+1, req["client_ip"], client)
			}
		}
	}

	// gunicorn's %(h)s is the same resolved client.
	got := waitTextLines(t, filepath.Join(s.Dir, "trusted-gunicorn.log"), 5)
	for i, w := range []string{
		`203.0.113.7 "203.0.113.7, 10.0.0.1" "GET /t1 HTTP/1.1" 200`,
		`198.51.100.20 "1.2.3.4" "GET /t2 HTTP/1.1" 200`,
		`203.0.113.50 "203.0.113.50" "GET /t3 HTTP/1.1" 200`,
		`198.51.100.21 "-" "GET /t4 HTTP/1.1" 200`,
		`6.6.6.6 "6.6.6.6, 203.0.113.9, 10.0.0.2" "GET /t5 HTTP/1.1" 200`,
	} {
		if i >= len(got) || got[i] != w {
			t.Errorf("trusted-gunicorn.log line %d:\n got %q\nwant %q", i+1, strings.Join(got, "\n"), w)
			break
		}
	}
}

// freePort6 is freePort on ::1.
func freePort6(t *testing.T) int {
	t.Helper()
	return freeTCPPort(t, "[::1]:0")
}

// rawRequest sends a GET over a new connection to addr, after a PROXY
// header if proxy is not nil, and returns the status. It reads until
// the server closes the connection, which Caddy does only after the
// handler returned and the access log entry was written, so entries
// land in the order of the requests.
func rawRequest(t *testing.T, addr string, proxy *goproxy.Header, path string, headers []string) int {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if proxy != nil {
		if _, err := proxy.WriteTo(conn); err != nil {
			t.Fatalf("writing the PROXY header: %v", err)
		}
	}
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\n"
	for _, h := range headers {
		req += h + "\r\n"
	}
	req += "Connection: close\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("%s %s: %v", addr, path, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	_, _ = io.Copy(io.Discard, br)
	return resp.StatusCode
}

// waitTextLines polls until path has at least n lines (bounded wait)
// and returns them.
func waitTextLines(t *testing.T, path string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		data, err := os.ReadFile(path)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		var lines []string
		if s := strings.TrimRight(string(data), "\n"); s != "" {
			lines = strings.Split(s, "\n")
		}
		if len(lines) >= n || time.Now().After(deadline) {
			return lines
		}
		time.Sleep(20 * time.Millisecond)
	}
}
