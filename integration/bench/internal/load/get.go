package load

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"
)

// GetSpec describes a keep-alive GET load, as wrk sends it: Conns
// connections to Addr, each sending one request after another for
// Duration, cycling through Hosts (name-based sites on one port).
type GetSpec struct {
	Addr     string
	Hosts    []string
	Path     string
	Conns    int
	Duration time.Duration
}

// GetResult is what a GET load saw: Requests answered 200 per host, in
// the order of GetSpec.Hosts.
type GetResult struct {
	Result
	PerHost []int
}

// Get sends spec's load and waits for every connection to finish. It
// speaks HTTP/1.1 itself, with a request built once per host and a
// response parser that only looks at the status, Content-Length and
// Connection: net/http's client costs several times what the server
// does for a small response, and on a shared machine the load
// generator's CPU is taken from the server measured. Each request
// carries the headers a browser sends, so that an access log has a
// user agent and a referer to write.
func Get(ctx context.Context, spec GetSpec) GetResult {
	reqs := make([][]byte, len(spec.Hosts))
	for i, h := range spec.Hosts {
		reqs[i] = GetRequest(h, spec.Path)
	}
	deadline := time.Now().Add(spec.Duration)
	type conn struct {
		res     Result
		perHost []int
	}
	conns := make([]*conn, spec.Conns)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range conns {
		c := &conn{perHost: make([]int, len(spec.Hosts))}
		conns[i] = c
		wg.Add(1)
		go func() {
			defer wg.Done()
			var cl getConn
			defer cl.close()
			for n := i; time.Now().Before(deadline) && ctx.Err() == nil; n++ {
				h := n % len(reqs)
				if err := cl.get(ctx, spec.Addr, reqs[h]); err != nil {
					c.res.Errors++
					if c.res.FirstErr == nil {
						c.res.FirstErr = fmt.Errorf("%s: %w", spec.Hosts[h], err)
					}
					cl.close()
					if c.res.Errors > 100 {
						return
					}
					continue
				}
				c.res.Requests++
				c.perHost[h]++
			}
		}()
	}
	wg.Wait()
	out := GetResult{Result: Result{Elapsed: time.Since(start)}, PerHost: make([]int, len(spec.Hosts))}
	for _, c := range conns {
		out.Requests += c.res.Requests
		out.Errors += c.res.Errors
		if out.FirstErr == nil {
			out.FirstErr = c.res.FirstErr
		}
		for h, n := range c.perHost {
			out.PerHost[h] += n
		}
	}
	out.Records = out.Requests
	return out
}

// GetRequest is the request Get sends to host.
func GetRequest(host, path string) []byte {
	return []byte("GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\n" +
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n" +
		"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n" +
		"Accept-Language: en-US,en;q=0.5\r\n" +
		"Referer: http://" + host + "/\r\n\r\n")
}

// getConn is one keep-alive connection, dialled on first use and
// again after an error or a "Connection: close".
type getConn struct {
	c net.Conn
	r *bufio.Reader
}

func (g *getConn) close() {
	if g.c != nil {
		g.c.Close()
		g.c = nil
	}
}

func (g *getConn) get(ctx context.Context, addr string, req []byte) error {
	if g.c == nil {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		g.c = c
		if g.r == nil {
			g.r = bufio.NewReaderSize(c, 16<<10)
		} else {
			g.r.Reset(c)
		}
	}
	// A stuck server ends the phase with an error rather than hanging it.
	if err := g.c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return err
	}
	if _, err := g.c.Write(req); err != nil {
		return err
	}
	line, err := g.r.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
		return fmt.Errorf("status line %q", bytes.TrimSpace(line))
	}
	length, closing := -1, false
	for {
		line, err := g.r.ReadSlice('\n')
		if err != nil {
			return err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return fmt.Errorf("header line %q", line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil {
				return fmt.Errorf("Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Connection")):
			closing = bytes.EqualFold(value, []byte("close"))
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return errors.New("chunked responses are not supported: respond with a fixed body")
		}
	}
	if length < 0 {
		return errors.New("response without Content-Length")
	}
	if _, err := g.r.Discard(length); err != nil {
		return err
	}
	if closing {
		g.close()
	}
	return nil
}
