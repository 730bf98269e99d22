package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-applog/caddy-applog/internal/forward"
	"github.com/caddy-applog/caddy-applog/internal/forward/forwardtest"
	"github.com/caddy-applog/caddy-applog/internal/testpki"
)

// startWriter provisions w as Caddy does, the config's life the test's,
// and returns its hub, the writer Caddy would write entries to, and
// what it logged.
func startWriter(t *testing.T, w *Writer) (*forward.Hub, io.Writer, *observer.ObservedLogs) {
	t.Helper()
	if w.BackoffMin == 0 {
		w.BackoffMin, w.BackoffMax = caddy.Duration(50*time.Millisecond), caddy.Duration(200*time.Millisecond)
	}
	core, logs := observer.New(zap.InfoLevel)
	log := zap.New(zapcore.NewTee(core, testLogger(t).Core()))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := w.provision(ctx, log); err != nil {
		t.Fatal(err)
	}
	out, err := w.OpenWriter()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = out.Close() })
	return w.hub, out, logs
}

func put(t *testing.T, out io.Writer, entry string) {
	t.Helper()
	if _, err := out.Write([]byte(entry + "\n")); err != nil {
		t.Fatal(err)
	}
}

func emptied(t *testing.T, h *forward.Hub, limit time.Duration) {
	t.Helper()
	forwardtest.WaitFor(t, limit, "the queue to empty", func() bool { return h.Depth() == 0 })
}

func entry(app string, n int) string { return fmt.Sprintf(`{"app":%q,"n":%d}`, app, n) }

// putEntries writes n entries of app, and returns them.
func putEntries(t *testing.T, out io.Writer, app string, n int) []string {
	t.Helper()
	var want []string
	for i := range n {
		put(t, out, entry(app, i))
		want = append(want, entry(app, i))
	}
	return want
}

// putWithBig writes n entries of which those at big are 8000 bytes of
// message, and returns the others.
func putWithBig(t *testing.T, out io.Writer, n int, big ...int) []string {
	t.Helper()
	var want []string
	for i := range n {
		if slices.Contains(big, i) {
			put(t, out, `{"app":"shop","msg":"`+strings.Repeat("x", 8000)+`"}`)
			continue
		}
		put(t, out, entry("shop", i))
		want = append(want, entry("shop", i))
	}
	return want
}

// checkRefused checks that w's sessions fail and its entry waits.
func checkRefused(t *testing.T, w *Writer) {
	t.Helper()
	h, out, _ := startWriter(t, w)
	put(t, out, entry("stranger", 0))
	forwardtest.WaitFor(t, 10*time.Second, "a failed session", func() bool { return h.Meter().Errors.Load() > 0 })
	if h.Depth() != 1 {
		t.Errorf("%d records held, want 1", h.Depth())
	}
}

// checkValues checks that got is want, in order.
func checkValues(t *testing.T, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d records consumed, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("record %d is %q, want %q", i, got[i], want[i])
		}
	}
}

// TestTooLarge: an entry larger than max_message_bytes is refused for
// good: counted dropped, logged once however many, the others delivered
// in order, the session not broken.
func TestTooLarge(t *testing.T) {
	c := startCluster(t, kfake.SeedTopics(1, "logs"))
	cons := consume(t, c, []string{"logs"})
	h, out, logs := startWriter(t, &Writer{Brokers: c.ListenAddrs(), Topic: "logs", MaxMessageBytes: 4096})
	want := putWithBig(t, out, 300, 100, 200)
	emptied(t, h, 10*time.Second)
	checkValues(t, cons.values(), want)
	m := h.Meter()
	if m.Dropped.Load() != 2 || m.Entries.Load() != 298 || m.Errors.Load() != 0 {
		t.Errorf("meter: dropped %d (want 2), delivered %d (want 298), errors %d (want 0: the session goes on)",
			m.Dropped.Load(), m.Entries.Load(), m.Errors.Load())
	}
	if n := logs.FilterMessage("Kafka refused a log entry for good; it is dropped").Len(); n != 1 {
		t.Errorf("the refusals were logged %d times, want once", n)
	}
}

// TestBrokerLimitBelow: brokers whose limit is below max_message_bytes
// refuse whole batches of small records; they are sent again in smaller
// batches rather than dropped, and only the record too large for the
// brokers alone is.
func TestBrokerLimitBelow(t *testing.T) {
	c := startCluster(t, kfake.SeedTopics(1, "logs"), kfake.BrokerConfigs(map[string]string{"message.max.bytes": "4096"}))
	cons := consume(t, c, []string{"logs"})
	h, out, logs := startWriter(t, &Writer{Brokers: c.ListenAddrs(), Topic: "logs", Compression: "none"})
	want := putWithBig(t, out, 300, 100)
	emptied(t, h, 20*time.Second)
	checkValues(t, cons.values(), want)
	if m := h.Meter(); m.Dropped.Load() != 1 || m.Entries.Load() != 299 {
		t.Errorf("meter: dropped %d (want 1), delivered %d (want 299)", m.Dropped.Load(), m.Entries.Load())
	}
	if logs.FilterMessageSnippet("sending smaller batches").Len() == 0 {
		t.Error("no warning that max_message_bytes is above the brokers' limit")
	}
}

// TestTemplatedTopicMissing: entries whose topic (from their fields)
// does not exist are dropped and counted, and do not hold up the records
// of the topics that do.
func TestTemplatedTopicMissing(t *testing.T) {
	c := startCluster(t, kfake.SeedTopics(1, "logs.shop"))
	cons := consume(t, c, []string{"logs.shop"})
	h, out, _ := startWriter(t, &Writer{Brokers: c.ListenAddrs(), Topic: "logs.{app}"})
	var want []string
	ghosts := 0
	start := time.Now()
	for i := range 200 {
		if i%10 == 5 {
			put(t, out, entry("ghost", i))
			ghosts++
			continue
		}
		put(t, out, entry("shop", i))
		want = append(want, entry("shop", i))
	}
	forwardtest.WaitFor(t, 5*time.Second, "the shop's records", func() bool { return len(cons.values()) == len(want) })
	t.Logf("the shop's records arrived after %v", time.Since(start))
	emptied(t, h, 30*time.Second)
	t.Logf("the ghosts were dropped after %v", time.Since(start))
	checkValues(t, cons.values(), want)
	if m := h.Meter(); m.Dropped.Load() != int64(ghosts) || m.Entries.Load() != int64(len(want)) || m.Errors.Load() != 0 {
		t.Errorf("meter: dropped %d (want %d), delivered %d (want %d), errors %d (want 0)",
			m.Dropped.Load(), ghosts, m.Entries.Load(), len(want), m.Errors.Load())
	}
}

// TestAutoCreateTopics: with auto_create_topics, brokers that allow it
// create the topics entries name.
func TestAutoCreateTopics(t *testing.T) {
	c := startCluster(t, kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(1))
	cons := consume(t, c, []string{"logs.shop", "logs.cart"})
	h, out, _ := startWriter(t, &Writer{Brokers: c.ListenAddrs(), Topic: "logs.{app}", AutoCreateTopics: true})
	want := append(putEntries(t, out, "shop", 50), putEntries(t, out, "cart", 50)...)
	emptied(t, h, 10*time.Second)
	got := map[string]bool{}
	for _, v := range cons.values() {
		got[v] = true
	}
	for _, w := range want {
		if !got[w] {
			t.Fatalf("%s did not arrive", w)
		}
	}
	if m := h.Meter(); m.Dropped.Load() != 0 {
		t.Errorf("%d dropped", m.Dropped.Load())
	}
}

// TestFixedTopicMissing: entries for a fixed topic that does not exist
// wait (the session fails and is retried with backoff), and flow once
// the topic is created.
func TestFixedTopicMissing(t *testing.T) {
	c := startCluster(t)
	cons := consume(t, c, []string{"logs"})
	h, out, _ := startWriter(t, &Writer{Brokers: c.ListenAddrs(), Topic: "logs"})
	want := putEntries(t, out, "shop", 100)
	start := time.Now()
	forwardtest.WaitFor(t, 30*time.Second, "a failed session", func() bool { return h.Meter().Errors.Load() > 0 })
	t.Logf("the first session failed after %v: %s", time.Since(start), h.LastError())
	if d := h.Depth(); d != 100 || h.Meter().Dropped.Load() != 0 {
		t.Fatalf("%d records held, %d dropped; want all held", d, h.Meter().Dropped.Load())
	}
	if err := c.CreateTopic("logs", 1, nil); err != nil {
		t.Fatal(err)
	}
	emptied(t, h, 30*time.Second)
	t.Logf("delivered %v after the topic was created", time.Since(start))
	checkValues(t, cons.values(), want)
}

// keyedHosts is how many hosts, and so keys, the keyed tests' entries
// name.
const keyedHosts = 7

// keyedEntry is entry i of host i%keyedHosts, whose name differs in case
// only from its key.
func keyedEntry(i int) string { return fmt.Sprintf(`{"host":"Web-%d","n":%d}`, i%keyedHosts, i) }

// checkKeyed checks that recs hold keyedEntry 0..n-1, each once, under
// its host's key, each key in one partition, in order; it returns how
// many partitions the keys used.
func checkKeyed(t *testing.T, recs []*kgo.Record, n int) int {
	t.Helper()
	partition := map[string]int32{}
	last := map[string]int{}
	used := map[int32]bool{}
	for _, r := range recs {
		var i int
		if _, err := fmt.Sscanf(string(r.Value), `{"host":"Web-%d","n":%d}`, new(int), &i); err != nil {
			t.Fatalf("%q: %v", r.Value, err)
		}
		key := string(r.Key)
		if want := fmt.Sprintf("web-%d", i%keyedHosts); key != want {
			t.Fatalf("record %d has key %q, want %q", i, key, want)
		}
		if p, ok := partition[key]; ok && p != r.Partition {
			t.Fatalf("key %s in partitions %d and %d", key, p, r.Partition)
		}
		partition[key] = r.Partition
		used[r.Partition] = true
		if l, ok := last[key]; ok && i <= l {
			t.Fatalf("key %s: record %d after %d (out of order, or twice)", key, i, l)
		}
		last[key] = i
	}
	if len(recs) != n {
		t.Fatalf("%d records consumed, want %d", len(recs), n)
	}
	return len(used)
}

// TestAcks: with acks leader and none, every record arrives.
func TestAcks(t *testing.T) {
	c := startCluster(t, kfake.SeedTopics(1, "leader", "none"))
	for _, acks := range []string{"leader", "none"} {
		t.Run(acks, func(t *testing.T) {
			cons := consume(t, c, []string{acks})
			h, out, _ := startWriter(t, &Writer{Brokers: c.ListenAddrs(), Topic: acks, Acks: acks})
			want := putEntries(t, out, acks, 1000)
			emptied(t, h, 10*time.Second)
			checkValues(t, cons.values(), want)
		})
	}
}

// TestReplicasShort: with acks all, while too few replicas are in sync
// the brokers answer NOT_ENOUGH_REPLICAS: the records wait, and arrive
// once, in order, when the replicas are back.
func TestReplicasShort(t *testing.T) {
	t.Parallel() // franz-go waits some seconds before it sends again
	c := startCluster(t, kfake.SeedTopics(1, "logs"))
	cons := consume(t, c, []string{"logs"})
	short := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.NotEnoughReplicas, Count: -1})
	h, out, _ := startWriter(t, &Writer{Brokers: c.ListenAddrs(), Topic: "logs"})
	want := putEntries(t, out, "shop", 1000)
	forwardtest.WaitFor(t, 10*time.Second, "a refused produce", func() bool { return short.Hits() > 0 })
	if h.Depth() != 1000 || len(cons.values()) != 0 {
		t.Fatalf("%d held, %d consumed while replicas were short; want all held", h.Depth(), len(cons.values()))
	}
	short.Remove()
	emptied(t, h, 15*time.Second)
	checkValues(t, cons.values(), want)
}

// TestCompression: each codec's batches arrive compressed with it and
// read back as written.
func TestCompression(t *testing.T) {
	codecs := map[string]int8{"gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4, "none": 0}
	var topics []string
	for name := range codecs {
		topics = append(topics, "logs."+name)
	}
	c := startCluster(t, kfake.SeedTopics(1, topics...))
	// Produce v13 names topics by ID.
	names := map[[16]byte]string{}
	for _, topic := range topics {
		names[c.TopicInfo(topic).TopicID] = topic
	}
	var mu sync.Mutex
	seen := map[string]map[int8]int{} // topic: codec: batches
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		mu.Lock()
		defer mu.Unlock()
		for _, rt := range req.(*kmsg.ProduceRequest).Topics {
			for _, rp := range rt.Partitions {
				var b kmsg.RecordBatch
				if b.ReadFrom(rp.Records) == nil {
					topic := rt.Topic
					if topic == "" {
						topic = names[rt.TopicID]
					}
					if seen[topic] == nil {
						seen[topic] = map[int8]int{}
					}
					seen[topic][int8(b.Attributes&7)]++
				}
			}
		}
		return nil, nil, false
	})
	for name, id := range codecs {
		t.Run(name, func(t *testing.T) {
			topic := "logs." + name
			cons := consume(t, c, []string{topic})
			h, out, _ := startWriter(t, &Writer{Brokers: c.ListenAddrs(), Topic: topic, Compression: name})
			var want []string
			for i := range 500 {
				e := fmt.Sprintf(`{"app":"shop","n":%d,"msg":"%s"}`, i, strings.Repeat("compress me ", 20))
				put(t, out, e)
				want = append(want, e)
			}
			emptied(t, h, 10*time.Second)
			checkValues(t, cons.values(), want)
			mu.Lock()
			defer mu.Unlock()
			if got := seen[topic]; len(got) != 1 || got[id] == 0 {
				t.Errorf("batches by codec: %v, want all %d", got, id)
			}
		})
	}
}

// TestSASL: the writer authenticates with each mechanism (the password
// from the environment); a wrong password fails its sessions, the
// records held.
func TestSASL(t *testing.T) {
	c := startCluster(t, kfake.EnableSASL(), kfake.SeedTopics(1, "logs"),
		kfake.Superuser("PLAIN", "reader", "reader-pw"),
		kfake.Superuser("PLAIN", "plain-user", "plain-pw"),
		kfake.Superuser("SCRAM-SHA-256", "scram256-user", "scram256-pw"),
		kfake.Superuser("SCRAM-SHA-512", "scram512-user", "scram512-pw"))
	cons := consume(t, c, []string{"logs"}, kgo.SASL(plain.Auth{User: "reader", Pass: "reader-pw"}.AsMechanism()))
	var want []string
	for _, tc := range []struct{ mech, user, pass string }{
		{"plain", "plain-user", "plain-pw"},
		{"scram-sha-256", "scram256-user", "scram256-pw"},
		{"scram-sha-512", "scram512-user", "scram512-pw"},
	} {
		mech, user := tc.mech, tc.user
		t.Run(mech, func(t *testing.T) {
			t.Setenv("KAFKA_TEST_PASSWORD", tc.pass)
			h, out, _ := startWriter(t, &Writer{Brokers: c.ListenAddrs(), Topic: "logs",
				SASL: &SASL{Mechanism: mech, Username: user, Password: "{env.KAFKA_TEST_PASSWORD}"}})
			want = append(want, putEntries(t, out, mech, 100)...)
			emptied(t, h, 10*time.Second)
			if h.Meter().Errors.Load() != 0 {
				t.Errorf("%d failed sessions: %s", h.Meter().Errors.Load(), h.LastError())
			}
		})
	}
	checkValues(t, cons.values(), want)

	t.Run("wrong password", func(t *testing.T) {
		// Another topic: a writer of the same brokers and topic would
		// share the hub (the queue) of the writers above.
		checkRefused(t, &Writer{Brokers: c.ListenAddrs(), Topic: "intruders",
			SASL: &SASL{Mechanism: "scram-sha-256", Username: "scram256-user", Password: "wrong"}})
	})
	checkValues(t, cons.values(), want)
}

// TestTLS: the writer verifies the brokers with its ca and presents its
// client certificate; without the certificate the brokers refuse it.
func TestTLS(t *testing.T) {
	ca := testpki.NewCA(t, "kafka test CA")
	srv := ca.Issue(t, "localhost", x509.ExtKeyUsageServerAuth)
	cli := ca.Issue(t, "caddy", x509.ExtKeyUsageClientAuth)
	dir := t.TempDir()
	ca.WriteCA(t, filepath.Join(dir, "ca.pem"))
	testpki.WriteFiles(t, cli, filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key"))
	c := startCluster(t, kfake.SeedTopics(1, "logs"), kfake.TLS(&tls.Config{
		Certificates: []tls.Certificate{srv},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    ca.Pool,
		MinVersion:   tls.VersionTLS12,
	}))
	cons := consume(t, c, []string{"logs"}, kgo.DialTLSConfig(&tls.Config{
		RootCAs: ca.Pool, Certificates: []tls.Certificate{cli}, MinVersion: tls.VersionTLS12,
	}))

	w := &Writer{Brokers: c.ListenAddrs(), Topic: "logs"}
	w.CA = filepath.Join(dir, "ca.pem")
	w.ClientCertificate, w.ClientKey = filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key")
	h, out, _ := startWriter(t, w)
	want := putEntries(t, out, "shop", 100)
	emptied(t, h, 10*time.Second)
	checkValues(t, cons.values(), want)

	t.Run("no client certificate", func(t *testing.T) {
		w := &Writer{Brokers: c.ListenAddrs(), Topic: "strangers", TLS: true} // a hub of its own
		w.CA = filepath.Join(dir, "ca.pem")
		checkRefused(t, w)
	})
	checkValues(t, cons.values(), want)
}

// TestOutage: the brokers go away (each connection asking for metadata
// or producing is closed) for longer than delivery_timeout, with records
// held before the outage began (they age in the queue) or in flight
// when it began (the session gives them up and the next one sends them
// again); within delivery_timeout the client sends again by itself.
// Every record arrives, in order.
func TestOutage(t *testing.T) {
	t.Parallel() // with TestReplicasShort, after the others
	for _, tc := range []struct {
		name            string
		acks            string
		deliveryTimeout time.Duration
		inFlight        bool // records sent before the outage, else held from its start
		broken          bool // sessions given up
	}{
		{"held", "all", time.Second, false, true},
		{"in flight", "all", time.Second, true, true},
		{"in flight acks leader", "leader", time.Second, true, true},
		{"in flight within delivery_timeout", "all", 0, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // each waits out its outage
			p := startPeer(t).(*peer)
			if !tc.inFlight {
				p.SetDown(true)
			}
			h, out, _ := startWriter(t, &Writer{Brokers: p.c.ListenAddrs(), Topic: peerTopic, Acks: tc.acks, DeliveryTimeout: caddy.Duration(tc.deliveryTimeout)})
			const n = 600
			for i := range n / 2 {
				put(t, out, fmt.Sprintf("record %05d", i))
			}
			if tc.inFlight {
				emptied(t, h, 10*time.Second)
				p.SetDown(true)
			}
			for i := n / 2; i < n; i++ {
				put(t, out, fmt.Sprintf("record %05d", i))
			}
			time.Sleep(2 * time.Second)
			if h.Depth() == 0 {
				t.Fatal("records were delivered while the brokers were down")
			}
			p.SetDown(false)
			emptied(t, h, 20*time.Second)
			dups := forwardtest.CheckAllOnce(t, p.Received(), n)
			errs := h.Meter().Errors.Load()
			t.Logf("%d duplicates, %d failed sessions", dups, errs)
			if tc.broken != (errs > 0) {
				t.Errorf("%d failed sessions, want them %v", errs, tc.broken)
			}
		})
	}
}

// TestKeys: records with one key land in one partition, in order, also
// while partitions change leaders and a broker leaves (the idempotent
// producer sends to the new leader without writing a record twice).
func TestKeys(t *testing.T) {
	for _, tc := range []struct {
		name   string
		during func(c *kfake.Cluster, i, n int) error
	}{
		{"steady", nil},
		{"leaders move", func(c *kfake.Cluster, i, n int) error {
			switch i {
			case n / 4:
				c.ShufflePartitionLeaders()
			case n / 2:
				return c.MoveTopicPartition("keyed", 0, (c.LeaderFor("keyed", 0)+1)%3)
			case 3 * n / 4:
				return c.RemoveNode(1)
			}
			return nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := startCluster(t, kfake.SeedTopics(4, "keyed"))
			cons := consume(t, c, []string{"keyed"})
			h, out, _ := startWriter(t, &Writer{Brokers: c.ListenAddrs(), Topic: "keyed", Key: "{host}"})
			const n = 3000
			for i := range n {
				put(t, out, keyedEntry(i))
				if tc.during == nil {
					continue
				}
				if err := tc.during(c, i, n); err != nil {
					t.Fatal(err)
				}
				if i%100 == 0 {
					time.Sleep(10 * time.Millisecond) // let the records flow
				}
			}
			emptied(t, h, 20*time.Second)
			if used := checkKeyed(t, cons.records(), n); used < 2 {
				t.Errorf("%d keys all in one partition of 4", keyedHosts)
			}
		})
	}
}
