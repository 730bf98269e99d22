package receiver

import (
	"bufio"
	"context"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-applog/caddy-applog/module/intake"
)

// lineProtocol is a Protocol of LF-terminated messages.
type lineProtocol struct{}

func (lineProtocol) Split(int) bufio.SplitFunc { return bufio.ScanLines }

func (lineProtocol) Datagram(p []byte, _ int) ([]byte, error) { return p, nil }

func (lineProtocol) Decode(msg []byte, now time.Time, attrs []intake.Attr) (intake.Record, error) {
	return intake.Record{Time: now, App: "test", Message: string(msg), Attrs: attrs}, nil
}

// blockingIntake holds the Submit of a message "block" until unblock is
// closed.
type blockingIntake struct {
	blocked  chan struct{} // closed once a Submit is held
	unblock  chan struct{}
	returned atomic.Bool // the held Submit returned
}

func (b *blockingIntake) Submit(_ context.Context, batch *intake.Batch) (intake.Result, error) {
	if batch.Records[0].Message == "block" {
		close(b.blocked)
		<-b.unblock
		b.returned.Store(true)
	}
	return intake.Result{}, nil
}

func (*blockingIntake) KnowsApp(string) bool { return true }

func (*blockingIntake) DeclareApp(string) {}

// receiverGoroutines lists the goroutines of this package's read loops
// still running.
func receiverGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var found []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		for _, fn := range []string{"serveConn", "serveStreams", "serveDatagrams"} {
			if strings.Contains(g, "receiver.(*Server)."+fn+"(") {
				found = append(found, fn)
			}
		}
	}
	return found
}

// TestStopWaitsForConnections checks that when the last config listening
// on an address stops, no goroutine it started outlives Stop: idle
// connections, one in the middle of a message and one inside a Submit
// are all closed and waited for.
func TestStopWaitsForConnections(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	s := &Server{Listen: []string{"tcp/127.0.0.1:0", "udp/127.0.0.1:0"}}
	if err := s.Provision(ctx, "stoptest", lineProtocol{}); err != nil {
		t.Fatal(err)
	}
	in := &blockingIntake{blocked: make(chan struct{}), unblock: make(chan struct{})}
	if err := s.Start(in); err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			close(in.unblock)
			_ = s.Stop()
		}
	}()
	addr := s.listeners[0].Addr().String()
	const idle = 20
	var clients []net.Conn
	for range idle + 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
	}
	if _, err := clients[idle].Write([]byte("half a mess")); err != nil {
		t.Fatal(err)
	}
	if _, err := clients[idle+1].Write([]byte("block\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-in.blocked:
	case <-time.After(5 * time.Second):
		t.Fatal("the blocking message was not submitted")
	}
	d := s.doors[0]
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		d.mu.Lock()
		live := d.live
		d.mu.Unlock()
		if live == idle+2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d connections served", live, idle+2)
		}
	}

	// Stop must wait for the held Submit, which returns a moment later.
	timer := time.AfterFunc(100*time.Millisecond, func() { close(in.unblock) })
	defer timer.Stop()
	stopped = true
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if !in.returned.Load() {
		t.Fatal("Stop returned while a connection was still inside Submit")
	}
	if left := receiverGoroutines(); len(left) > 0 {
		t.Fatalf("goroutines outlived Stop: %v", left)
	}
	// Every connection was closed: the clients read the end of stream.
	for i, c := range clients {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatalf("client %d: connection still open", i)
		}
	}
}
