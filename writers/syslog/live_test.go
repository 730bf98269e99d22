package syslog

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// TestSendersReleased checks the handover of a sender across configs:
// two configs with the same options share it, the last one to be
// unloaded closes it and deletes its key, a write after that still goes
// out, and a later config with the same options gets a new sender
// through the handle Caddy kept.
func TestSendersReleased(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	addr := "udp/" + pc.LocalAddr().String()
	recv := func(want string) {
		t.Helper()
		buf := make([]byte, 1000)
		_ = pc.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := pc.ReadFrom(buf)
		if err != nil || string(buf[:n]) != want {
			t.Fatalf("received %q, %v; want %q", buf[:n], err, want)
		}
	}
	n := senders.Len()
	provision := func() (*Writer, context.CancelFunc) {
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		w := &Writer{Address: addr}
		if err := w.Provision(ctx); err != nil {
			t.Fatal(err)
		}
		return w, cancel
	}
	w1, cancel1 := provision()
	h, err := w1.OpenWriter() // Caddy opens the key once and keeps the handle
	if err != nil {
		t.Fatal(err)
	}
	_, cancel2 := provision()
	s := senderOf(h)
	cancel1()
	if _, err := h.Write([]byte("one")); err != nil {
		t.Fatal(err)
	}
	recv("one")
	if senderOf(h) != s {
		t.Fatal("unloading one of two configs replaced their sender")
	}
	cancel2()
	waitFor(t, func() bool { return senders.Len() == n }, "the last config's end to delete the key")
	if senderOf(h) != nil {
		t.Fatal("a handle finds a sender after its key was released")
	}
	if _, err := h.Write([]byte("two")); err != nil {
		t.Fatal(err)
	}
	recv("two")
	_, cancel3 := provision()
	if _, err := h.Write([]byte("three")); err != nil {
		t.Fatal(err)
	}
	recv("three")
	if s3 := senderOf(h); s3 == nil || s3 == s {
		t.Fatal("a new config with the same options did not get a new sender")
	}
	cancel3()
	waitFor(t, func() bool { return senders.Len() == n }, "the key to be deleted again")
}

func waitFor(t *testing.T, ok func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for " + what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
