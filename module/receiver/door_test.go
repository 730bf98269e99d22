package receiver

import (
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
)

func TestDoorLimits(t *testing.T) {
	d := acquireDoor("test/limits", nil)
	// Released at the end, so that the next run (-count) gets a new door.
	t.Cleanup(func() { d.release(zap.NewNop()) })
	var conns []net.Conn
	add := func(key string) error {
		c, peerEnd := net.Pipe()
		t.Cleanup(func() { peerEnd.Close() })
		_, err := d.add(c, key, 5, 2)
		if err == nil {
			conns = append(conns, c)
			// What the connection's goroutine would do, before the
			// release (cleanups run last first), which waits for it.
			t.Cleanup(func() {
				d.done(c)
				d.exit()
			})
		}
		return err
	}
	for i, want := range []error{nil, nil, errPeerFull} {
		if err := add("a"); !errors.Is(err, want) {
			t.Fatalf("a's connection %d: %v, want %v", i+1, err, want)
		}
	}
	// A trusted proxy's connection counts against max only until rekeyed.
	if err := add(""); err != nil {
		t.Fatal(err)
	}
	if _, err := d.rekey(conns[2], "a", 2); !errors.Is(err, errPeerFull) {
		t.Fatalf("rekey to a full peer: %v", err)
	}
	if _, err := d.rekey(conns[2], "b", 2); err != nil {
		t.Fatal(err)
	}
	if err := add("c"); err != nil {
		t.Fatal(err)
	}
	if err := add("d"); err != nil {
		t.Fatal(err)
	}
	if err := add("e"); !errors.Is(err, errDoorFull) {
		t.Fatalf("a sixth connection: %v, want errDoorFull", err)
	}
	// Leaving frees the peer's slot (and one of the door's).
	d.done(conns[0])
	if err := add("a"); err != nil {
		t.Fatalf("after one of a's ended: %v", err)
	}
	if got := d.peers["a"].conns; got != 2 {
		t.Fatalf("a holds %d connections, want 2", got)
	}
}

// TestDoorReleaseWaits checks that the last release closes the
// connections and waits for their goroutines, and an earlier one does not.
func TestDoorReleaseWaits(t *testing.T) {
	d := acquireDoor("test/release", nil)
	acquireDoor("test/release", nil) // a second config on the same address
	var ended sync.WaitGroup
	var mu sync.Mutex
	finished := 0
	for range 20 {
		c, peerEnd := net.Pipe()
		defer peerEnd.Close()
		if _, err := d.add(c, "p", 100, 100); err != nil {
			t.Fatal(err)
		}
		ended.Add(1)
		go func() {
			defer ended.Done()
			_, _ = c.Read(make([]byte, 1)) // until closed
			time.Sleep(10 * time.Millisecond)
			mu.Lock()
			finished++
			mu.Unlock()
			d.done(c)
			d.exit()
		}()
	}
	d.release(zap.NewNop())
	mu.Lock()
	if finished != 0 {
		t.Fatalf("a release that was not the last ended %d connections", finished)
	}
	mu.Unlock()
	d.release(zap.NewNop())
	mu.Lock()
	defer mu.Unlock()
	if finished != 20 {
		t.Fatalf("the last release returned with %d of 20 connections ended", finished)
	}
	ended.Wait()
}

// TestDoorKeyDeleted checks that the last release deletes the door's key,
// and that a config listening there again gets a new door.
func TestDoorKeyDeleted(t *testing.T) {
	n := doors.Len()
	d := acquireDoor("test/deleted", nil)
	if acquireDoor("test/deleted", nil) != d {
		t.Fatal("two configs on one address got two doors")
	}
	d.release(zap.NewNop())
	if _, ok := doors.Load("test/deleted"); !ok {
		t.Fatal("a release that was not the last deleted the door")
	}
	d.release(zap.NewNop())
	if _, ok := doors.Load("test/deleted"); ok || doors.Len() != n {
		t.Fatalf("the last release left the door's key (%d keys, %d before)", doors.Len(), n)
	}
	d2 := acquireDoor("test/deleted", nil)
	defer d2.release(zap.NewNop())
	if d2 == d {
		t.Fatal("a released door was handed out again")
	}
}
