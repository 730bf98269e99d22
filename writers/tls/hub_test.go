package tls

import (
	"context"
	"crypto/x509"
	"fmt"
	"testing"
	"time"

	"github.com/caddy-applog/caddy-applog/internal/testpki"
)

// TestHubReleased checks a hub's life across configs: two configs share
// it, the last one's end drains it and deletes its key, an entry written
// after that waits in the spool, and the next config to use the spool
// sends it; every record arrives once, in order.
func TestHubReleased(t *testing.T) {
	ca := testpki.NewCA(t, "ca")
	agg := startAggregator(t, ca.Issue(t, "localhost", x509.ExtKeyUsageServerAuth), ca.Pool)
	set := testSettings(t, agg.addr(), ca.Pool, ca.Issue(t, "client", x509.ExtKeyUsageClientAuth))
	dir := t.TempDir()
	key := "spool " + dir
	n := hubs.Len()
	provision := func() (*Writer, context.CancelFunc) {
		ctx, cancel := context.WithCancel(context.Background())
		w := &Writer{Address: agg.addr(), Spool: &Spool{Dir: dir, MaxSize: 1 << 30, OnFull: "block"}, set: set}
		w.hub = hubFor(key, w.Address)
		if err := w.hub.acquire(ctx, w); err != nil {
			t.Fatal(err)
		}
		return w, cancel
	}
	w1, cancel1 := provision()
	ew, err := w1.OpenWriter() // Caddy opens the key once and keeps the writer
	if err != nil {
		t.Fatal(err)
	}
	put := func(i int) {
		t.Helper()
		if _, err := ew.Write(fmt.Appendf(nil, "record %05d\n", i)); err != nil {
			t.Fatal(err)
		}
	}
	w2, cancel2 := provision()
	if w2.hub != w1.hub {
		t.Fatal("two configs on one spool got two hubs")
	}
	put(0)
	cancel1()
	put(1)
	cancel2()
	waitFor(t, 10*time.Second, "the last config's end to delete the hub's key", func() bool { return hubs.Len() == n })
	if got := len(agg.messages()); got < 2 {
		t.Fatalf("%d of 2 records sent before the hub closed", got)
	}
	put(2)
	if hubs.Len() != n {
		t.Fatal("an entry written while no config uses the spool left its key held")
	}
	_, cancel3 := provision()
	waitFor(t, 10*time.Second, "the spooled record to be sent", func() bool { return len(agg.messages()) >= 3 })
	if dups := checkAllOnce(t, agg.messages(), 3); dups != 0 {
		t.Errorf("%d duplicates", dups)
	}
	cancel3()
	waitFor(t, 10*time.Second, "the key to be deleted again", func() bool { return hubs.Len() == n })
}
