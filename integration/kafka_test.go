package integration

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The kafka writer end to end: the built Caddy takes records of apps
// shop and cart through log_ingest, six keys each posting its own
// sequence, and produces them with `output kafka` (topic logs.{app},
// key {attrs.user}, a spool) to a three-broker kfake cluster in this
// process; a franz-go consumer reads them back. Every test asserts that
// no accepted record is lost, that each key's records sit in one
// partition in the order Caddy accepted them, and reports duplicates,
// which at-least-once delivery allows.

// TestKafkaWriterFaults runs the load through kfake's faults: every
// partition's leader changing (twice, and one moved by hand), produce
// requests failing for 3 s (NOT_LEADER_FOR_PARTITION, refused, and
// REQUEST_TIMED_OUT, written and then answered as failed, so the client
// sends again), and broker 1 dying (its port refusing connections, its
// connections cut, its partitions led by the others) for 4 s before it
// comes back on its port.
func TestKafkaWriterFaults(t *testing.T) {
	r := kafkaStart(t, "kafkafaults", 2*time.Millisecond)
	kc, load := r.kc, r.load

	time.Sleep(2 * time.Second)
	kc.c.ShufflePartitionLeaders()
	time.Sleep(500 * time.Millisecond)
	leader := kc.c.LeaderFor("logs.shop", 0)
	if err := kc.c.MoveTopicPartition("logs.shop", 0, (leader+1)%3); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	kc.c.ShufflePartitionLeaders()
	t.Logf("leaders changed; %d accepted so far", load.acceptedNow())

	// For 3 s, two of logs.shop's partitions refuse every produce
	// (NOT_LEADER_FOR_PARTITION), and half the produce requests to
	// logs.cart are written but answered REQUEST_TIMED_OUT, so the
	// client sends them again and the idempotent producer's sequence
	// numbers keep the copies out. The other partitions flow meanwhile.
	half := func(kmsg.Request) bool { return rand.IntN(2) == 0 }
	faults := kc.c.Fault(
		kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "logs.shop", Partitions: []int32{0, 1}, Err: kerr.NotLeaderForPartition, Count: -1},
		kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "logs.cart", Err: kerr.RequestTimedOut, Count: -1, When: half},
	)
	time.Sleep(3 * time.Second)
	faults.Remove()
	if faults.Hits() == 0 {
		t.Fatal("no produce request was faulted: the writer sent nothing for 3 s")
	}
	t.Logf("%d produce requests failed; %d accepted so far", faults.Hits(), load.acceptedNow())

	port := kc.removeBroker(1)
	time.Sleep(4 * time.Second)
	kc.addBroker(1, port)
	t.Logf("broker 1 back; %d accepted so far", load.acceptedNow())
	time.Sleep(2 * time.Second)

	accepted := load.stopAnswered(t)
	r.verify(t, r.a, accepted, kafkaTotal(accepted))
}

// TestKafkaWriterClusterDown makes the whole cluster unreachable for
// 10 s under load (every port refusing connections, every connection
// cut; the brokers keep their logs), twice the delivery_timeout. The
// spool holds the backlog, which the status page and the metrics show
// with the failed sessions, and once the cluster is back it drains:
// nothing accepted is missing. (While franz-go counted the delivery
// timeout from a record's timestamp, when it was queued, a backlog older
// than the timeout failed every session at once and never drained.)
func TestKafkaWriterClusterDown(t *testing.T) {
	// Parallel: most of it is waiting out an outage under a light load.
	t.Parallel()
	r := kafkaStart(t, "kafkadown", 5*time.Millisecond)
	kc, a, load := r.kc, r.a, r.load
	name := kafkaWriterName(r.brokers)

	time.Sleep(2 * time.Second)
	kc.down()
	atDown := load.acceptedNow()
	time.Sleep(10 * time.Second)
	t.Logf("%d accepted before the cluster went down, %d during the 10 s it was down", atDown, load.acceptedNow()-atDown)
	// The outage shows: what waits and since when, and the sessions
	// given up (a record not acknowledged within delivery_timeout) or
	// not begun (no broker answering).
	if ws, ok := writerStatus(t, a, "kafka", name); !ok || ws.SpoolDepth == 0 || ws.OldestAge < 5 || ws.Errors == 0 {
		t.Errorf("status during the outage: %+v (found %v), want a spool depth, its oldest entry 5 s old or more, and errors", ws, ok)
	} else {
		t.Logf("status during the outage: %d held, the oldest %.1f s old, %d session errors", ws.SpoolDepth, ws.OldestAge, ws.Errors)
	}
	for _, metric := range []string{"caddy_applog_spool_depth", "caddy_applog_spool_oldest_age_seconds"} {
		if v, ok := writerMetric(t, a, metric, "kafka", name); !ok || v == 0 {
			t.Errorf("%s during the outage: %v (found %v), want the backlog", metric, v, ok)
		}
	}
	kc.up()
	time.Sleep(2 * time.Second)

	accepted := load.stopAnswered(t)
	r.verify(t, r.a, accepted, kafkaTotal(accepted))
}

// TestKafkaWriterCrash SIGKILLs Caddy under load and starts it again on
// the same spool: no record it accepted is lost.
func TestKafkaWriterCrash(t *testing.T) {
	r := kafkaStart(t, "kafkacrash", 2*time.Millisecond)
	time.Sleep(3 * time.Second)
	r.a.d.Kill()
	atKill := r.load.acceptedNow()
	a2 := startCaddy(t, r.caddyfile(""))
	r.load.retarget(a2.URL(""))
	time.Sleep(2 * time.Second)

	accepted := r.load.stop()
	t.Logf("%d accepted before SIGKILL, %d in all; %d requests failed while Caddy was down", atKill, kafkaTotal(accepted), r.load.failed)
	r.verify(t, a2, accepted, 0)
}

// TestKafkaWriterReload reloads Caddy three times under load through the
// admin API, each changing the writer's settings (so each makes a new
// producer that takes over the spool): compression, the key template
// (`{attrs.user:nouser}`: the same key bytes, so each key keeps its
// partition), acks. Every record arrives exactly once.
func TestKafkaWriterReload(t *testing.T) {
	r := kafkaStart(t, "kafkareload", 2*time.Millisecond)
	a, load := r.a, r.load
	cfg := r.caddyfile("\t\t\tcompression zstd")
	for i, change := range []func(string) string{
		func(c string) string { return c },
		func(c string) string { return strings.Replace(c, "key {attrs.user}", "key {attrs.user:nouser}", 1) },
		func(c string) string {
			return strings.Replace(c, "compression zstd", "compression lz4\n\t\t\tacks leader", 1)
		},
	} {
		time.Sleep(time.Second)
		next := change(cfg)
		if i > 0 && next == cfg {
			t.Fatalf("reload %d: the change was not made to the config", i+1)
		}
		cfg = next
		a.reload(cfg)
		t.Logf("reload %d done, %d accepted so far", i+1, load.acceptedNow())
	}
	time.Sleep(time.Second)

	accepted := load.stop()
	if load.refused > 0 {
		t.Errorf("%d requests refused: %v", load.refused, load.lastErr)
	}
	t.Logf("%d requests unanswered across the reloads (%v)", load.failed, load.lastErr)
	// The old session hands over once what it sent is acknowledged
	// (internal/forward's hub), so nothing is sent twice.
	if v := r.verify(t, a, accepted, kafkaTotal(accepted)); v.extra > 0 {
		t.Errorf("%d records arrived twice across the reloads (%d extra copies)", v.duplicated, v.extra)
	}
}

// kafkaCheckSettled waits (bounded) until the writer's spool is empty
// on the status page, and checks that it dropped nothing and counted at
// least entries delivered.
func kafkaCheckSettled(t *testing.T, s *server, brokers []string, entries int) {
	t.Helper()
	name := kafkaWriterName(brokers)
	var ws tlsWriterSnap
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		var ok bool
		if ws, ok = writerStatus(t, s, "kafka", name); ok && ws.SpoolDepth == 0 || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if ws.SpoolDepth != 0 || ws.Dropped != 0 || ws.Entries < int64(entries) {
		t.Errorf("status once delivered: %+v, want %d entries or more, none held or dropped", ws, entries)
	}
	t.Logf("status: %d entries delivered, %d sessions failed", ws.Entries, ws.Errors)
}
