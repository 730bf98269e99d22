package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The kafka writer's peer: a kfake cluster (franz-go's fake Kafka, the
// real protocol on loopback ports) whose brokers the test can take
// down and bring back on their ports, a load of keyed records posted to
// Caddy, and a franz-go consumer that reads them back.

// kafkaTopics are the topics `logs.{app}` fills, one per app of the
// sender, each with kafkaPartitions partitions.
var kafkaTopics = []string{"logs.shop", "logs.cart"}

const kafkaPartitions = 4

// kafkaCluster is a kfake cluster of three brokers on ports of the
// test's own.
type kafkaCluster struct {
	t     *testing.T
	c     *kfake.Cluster
	ports []int // node i listens on ports[i], also once it was added back

	mu  sync.Mutex
	lns map[string]*kafkaListener // by address, the current listener of each broker
}

// kafkaStartCluster starts three brokers with kafkaTopics; the cluster
// is closed when t ends.
func kafkaStartCluster(t *testing.T) *kafkaCluster {
	t.Helper()
	kc := &kafkaCluster{t: t, lns: map[string]*kafkaListener{}}
	ports := []int{freePort(t), freePort(t), freePort(t)}
	c, err := kfake.NewCluster(
		kfake.Ports(ports...),
		kfake.ListenFn(kc.listen),
		kfake.SeedTopics(kafkaPartitions, kafkaTopics...),
	)
	if err != nil {
		t.Fatal(err)
	}
	kc.c, kc.ports = c, ports
	t.Cleanup(c.Close)
	return kc
}

// listen is kfake's ListenFn: each broker's listener is a kafkaListener.
func (kc *kafkaCluster) listen(network, addr string) (net.Listener, error) {
	ln, err := net.Listen(network, addr)
	if err != nil {
		return nil, err
	}
	l := &kafkaListener{network: network, addr: ln.Addr(), ln: ln, up: closedChan(), done: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	kc.mu.Lock()
	kc.lns[ln.Addr().String()] = l
	kc.mu.Unlock()
	return l, nil
}

// Brokers is the seed list of the cluster: every broker it started with.
func (kc *kafkaCluster) Brokers() []string {
	kc.mu.Lock()
	defer kc.mu.Unlock()
	var out []string
	for addr := range kc.lns {
		out = append(out, addr)
	}
	sort.Strings(out)
	return out
}

// removeBroker takes broker node out of the cluster as a broker that
// died: its port refuses connections, its open connections are cut, and
// its partitions get other leaders. It returns the broker's port, for
// addBroker.
func (kc *kafkaCluster) removeBroker(node int32) int {
	kc.t.Helper()
	if err := kc.c.RemoveNode(node); err != nil {
		kc.t.Fatal(err)
	}
	return kc.ports[node]
}

// addBroker brings node back on port; partitions get new leaders.
func (kc *kafkaCluster) addBroker(node int32, port int) {
	kc.t.Helper()
	var err error
	for range 50 { // the port may still be held for a moment
		if _, _, err = kc.c.AddNode(node, port); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	kc.t.Fatalf("adding broker %d back on port %d: %v", node, port, err)
}

// down makes the whole cluster unreachable: every port refuses
// connections and every open connection is cut. The brokers keep their
// logs.
func (kc *kafkaCluster) down() {
	kc.mu.Lock()
	defer kc.mu.Unlock()
	for _, l := range kc.lns {
		l.down()
	}
}

// up listens again on every port down closed.
func (kc *kafkaCluster) up() {
	kc.t.Helper()
	kc.mu.Lock()
	defer kc.mu.Unlock()
	for addr, l := range kc.lns {
		if err := l.bringUp(); err != nil {
			kc.t.Fatalf("listening again on %s: %v", addr, err)
		}
	}
}

// kafkaListener is a broker's listener that can go down (its port
// closed, its connections cut) and come back on the same port, which a
// plain listener cannot: kfake's broker stops accepting when Accept
// fails, so Accept waits here while the listener is down.
type kafkaListener struct {
	network string
	addr    net.Addr

	mu     sync.Mutex
	ln     net.Listener  // nil while down
	up     chan struct{} // closed while up
	done   chan struct{} // closed by Close
	closed bool
	conns  map[net.Conn]struct{}
}

func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

func (l *kafkaListener) Accept() (net.Conn, error) {
	for {
		l.mu.Lock()
		ln, up := l.ln, l.up
		l.mu.Unlock()
		select {
		case <-l.done:
			return nil, net.ErrClosed
		case <-up:
		}
		if ln == nil {
			continue // came up: read the new listener
		}
		c, err := ln.Accept()
		l.mu.Lock()
		switch {
		case l.closed:
			l.mu.Unlock()
			if c != nil {
				c.Close()
			}
			return nil, net.ErrClosed
		case err != nil && l.ln != ln:
			l.mu.Unlock()
			continue // taken down; wait until it is up again
		case err != nil:
			l.mu.Unlock()
			return nil, err
		case l.ln != ln:
			l.mu.Unlock()
			c.Close()
			continue
		}
		tc := &kafkaConn{Conn: c, l: l}
		l.conns[tc] = struct{}{}
		l.mu.Unlock()
		return tc, nil
	}
}

// down closes the port and cuts the open connections.
func (l *kafkaListener) down() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ln != nil {
		l.ln.Close()
		l.ln = nil
		l.up = make(chan struct{})
	}
	l.cutLocked()
}

// bringUp listens on the port again.
func (l *kafkaListener) bringUp() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ln != nil || l.closed {
		return nil
	}
	var err error
	for range 50 {
		var ln net.Listener
		if ln, err = net.Listen(l.network, l.addr.String()); err == nil {
			l.ln = ln
			close(l.up)
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return err
}

// Close is kfake's: RemoveNode and Cluster.Close. The broker is gone, so
// its connections go too (a plain listener's Close would leave them).
func (l *kafkaListener) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	close(l.done)
	if l.ln != nil {
		l.ln.Close()
	}
	l.cutLocked()
	return nil
}

func (l *kafkaListener) cutLocked() {
	for c := range l.conns {
		c.(*kafkaConn).Conn.Close()
		delete(l.conns, c)
	}
}

func (l *kafkaListener) Addr() net.Addr { return l.addr }

// kafkaConn is an accepted connection, forgotten by its listener once
// closed.
type kafkaConn struct {
	net.Conn
	l *kafkaListener
}

func (c *kafkaConn) Close() error {
	c.l.mu.Lock()
	delete(c.l.conns, c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

// kafkaRun is one test's cluster, the Caddy producing to it and the
// load posted to that Caddy.
type kafkaRun struct {
	kc      *kafkaCluster
	brokers []string
	spool   string
	a       *server
	marker  string
	load    *kafkaLoad
}

// kafkaStart starts a cluster, a Caddy producing to it through a spool
// of its own (kafkaSenderCaddyfile), and a load of records marked with
// name, each key pausing pause between requests.
func kafkaStart(t *testing.T, name string, pause time.Duration) *kafkaRun {
	t.Helper()
	kc := kafkaStartCluster(t)
	r := &kafkaRun{kc: kc, brokers: kc.Brokers(), spool: t.TempDir(), marker: tlsMarker(name)}
	r.a = startCaddy(t, r.caddyfile(""))
	r.load = kafkaStartLoad(r.a.URL(""), r.marker, pause)
	t.Cleanup(func() { r.load.stop() })
	return r
}

// caddyfile is the sending Caddy's config with extra lines in the
// writer's block.
func (r *kafkaRun) caddyfile(extra string) string {
	return kafkaSenderCaddyfile(r.brokers, r.spool, extra)
}

// verify reads the records back and checks them (kafkaCheck), then the
// writer on s's status page (kafkaCheckSettled).
func (r *kafkaRun) verify(t *testing.T, s *server, accepted map[string][]int, entries int) kafkaVerdict {
	t.Helper()
	v := kafkaCheck(t, kafkaRead(t, r.brokers, r.marker, accepted, 60*time.Second), accepted)
	kafkaCheckSettled(t, s, r.brokers, entries)
	return v
}

// kafkaSenderCaddyfile is a Caddy whose log_ingest takes records of
// apps shop and cart and whose kafka writer produces them to brokers,
// topic logs.{app}, keyed by the record's `user` attribute, through a
// spool; extra lines go into the writer's block.
func kafkaSenderCaddyfile(brokers []string, spool, extra string) string {
	return `{
	admin 127.0.0.1:{{.AdminPort}}
	log tokafka {
		include applog
		level DEBUG
		output kafka ` + strings.Join(brokers, " ") + ` {
			topic logs.{app}
			key {attrs.user}
			dial_timeout 2s
			delivery_timeout 5s
			spool ` + spool + `
			backoff 100ms 1s
` + extra + `
		}
		format json
	}
}

http://127.0.0.1:{{.HTTPPort}} {
	bind 127.0.0.1
	handle /_applog/shop {
		log_ingest shop
	}
	handle /_applog/cart {
		log_ingest cart
	}
	handle /status {
		log_status
	}
}
`
}

// kafkaWriterName is the kafka writer's name on the status page.
func kafkaWriterName(brokers []string) string {
	return strings.Join(brokers, ",") + " logs.{app}"
}

// kafkaKeys are the record keys the load posts, by app: each key's
// records have their own sequence numbers, posted one request after
// the other, so that their order is the order Caddy accepted them in.
var kafkaKeys = map[string][]string{
	"shop": {"shop-ann", "shop-bob", "shop-cy"},
	"cart": {"cart-dee", "cart-eve", "cart-fay"},
}

// kafkaBatch is how many records of one key a request carries.
const kafkaBatch = 5

// kafkaLoad posts records to a Caddy, a goroutine per key, until
// stopped, and remembers which it accepted.
type kafkaLoad struct {
	marker   string
	client   *http.Client
	stopping chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup

	mu       sync.Mutex
	base     string
	accepted map[string][]int // by key, in the order accepted
	failed   int              // requests without a 2xx
	refused  int              // of which answered with another status
	lastErr  error
}

func kafkaStartLoad(base, marker string, pause time.Duration) *kafkaLoad {
	l := &kafkaLoad{marker: marker, base: base, client: &http.Client{Timeout: time.Minute},
		stopping: make(chan struct{}), accepted: map[string][]int{}}
	for app, keys := range kafkaKeys {
		for _, key := range keys {
			l.wg.Add(1)
			go l.work(app, key, pause)
		}
	}
	return l
}

// kafkaRecordMsg is the message of record seq of key.
func kafkaRecordMsg(marker, key string, seq int) string {
	return fmt.Sprintf("%s key=%s seq=%07d", marker, key, seq)
}

func (l *kafkaLoad) work(app, key string, pause time.Duration) {
	defer l.wg.Done()
	for seq := 0; ; seq += kafkaBatch {
		select {
		case <-l.stopping:
			return
		default:
		}
		var body bytes.Buffer
		for i := range kafkaBatch {
			b, _ := json.Marshal(map[string]any{"msg": kafkaRecordMsg(l.marker, key, seq+i), "level": "info", "user": key})
			body.Write(b)
			body.WriteByte('\n')
		}
		l.mu.Lock()
		url := l.base + "/_applog/" + app
		l.mu.Unlock()
		resp, err := l.client.Post(url, "application/x-ndjson", &body)
		status := 0
		if err == nil {
			status = resp.StatusCode
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if status/100 != 2 {
				err = fmt.Errorf("%s: %s", resp.Status, b)
			}
		}
		l.mu.Lock()
		if err == nil {
			for i := range kafkaBatch {
				l.accepted[key] = append(l.accepted[key], seq+i)
			}
		} else { // the records of an unanswered request may arrive or not
			l.failed++
			if status != 0 {
				l.refused++
			}
			l.lastErr = err
		}
		l.mu.Unlock()
		if err != nil {
			time.Sleep(20 * time.Millisecond) // Caddy is down; do not spin
		}
		time.Sleep(pause)
	}
}

// retarget sends further requests to another Caddy.
func (l *kafkaLoad) retarget(base string) {
	l.mu.Lock()
	l.base = base
	l.mu.Unlock()
}

// acceptedNow is how many records were accepted so far.
func (l *kafkaLoad) acceptedNow() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, seqs := range l.accepted {
		n += len(seqs)
	}
	return n
}

// stop ends the load and returns the accepted records by key.
func (l *kafkaLoad) stop() map[string][]int {
	l.stopOnce.Do(func() { close(l.stopping) })
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string][]int{}
	for k, v := range l.accepted {
		out[k] = slices.Clone(v)
	}
	return out
}

// stopAnswered is stop for a load whose Caddy was up throughout: every
// request must have been accepted.
func (l *kafkaLoad) stopAnswered(t *testing.T) map[string][]int {
	t.Helper()
	accepted := l.stop()
	if l.failed > 0 {
		t.Errorf("%d requests to Caddy failed: %v", l.failed, l.lastErr)
	}
	return accepted
}

// kafkaRecord is one record read back.
type kafkaRecord struct {
	topic     string
	partition int32
	offset    int64
	key       string // the record's key
	app, user string // from its value, the JSON entry
	seqKey    string // from its message
	seq       int
	skew      time.Duration // the record's timestamp less the entry's ts
}

// kafkaRead reads every run's record of marker from kafkaTopics with a
// franz-go consumer, until each of want (by key) has arrived and a poll
// then brings nothing more for a second, or until limit.
func kafkaRead(t *testing.T, brokers []string, marker string, want map[string][]int, limit time.Duration) []kafkaRecord {
	t.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ConsumeTopics(kafkaTopics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	re := regexp.MustCompile(regexp.QuoteMeta(marker) + ` key=(\S+) seq=(\d+)`)
	var recs []kafkaRecord
	seen := map[string]map[int]bool{}
	complete := func() bool {
		for key, seqs := range want {
			for _, seq := range seqs {
				if !seen[key][seq] {
					return false
				}
			}
		}
		return true
	}
	deadline := time.Now().Add(limit)
	var quietSince time.Time
	var lastErr error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				lastErr = fmt.Errorf("%s[%d]: %w", topic, p, err)
			}
		})
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			var e struct {
				TS    float64 `json:"ts"`
				App   string  `json:"app"`
				Msg   string  `json:"msg"`
				Attrs struct {
					User string `json:"user"`
				} `json:"attrs"`
			}
			if err := json.Unmarshal(r.Value, &e); err != nil {
				t.Errorf("%s[%d]@%d: the value is not the JSON entry: %v: %.200s", r.Topic, r.Partition, r.Offset, err, r.Value)
				return
			}
			m := re.FindStringSubmatch(e.Msg)
			if m == nil {
				return // another run's or test's record
			}
			seq, _ := strconv.Atoi(m[2])
			recs = append(recs, kafkaRecord{topic: r.Topic, partition: r.Partition, offset: r.Offset, key: string(r.Key),
				app: e.App, user: e.Attrs.User, seqKey: m[1], seq: seq,
				skew: r.Timestamp.Sub(time.Unix(0, int64(e.TS*1e9)))})
			if seen[m[1]] == nil {
				seen[m[1]] = map[int]bool{}
			}
			seen[m[1]][seq] = true
			n++
		})
		switch {
		case n > 0 || !complete():
			quietSince = time.Time{}
		case quietSince.IsZero():
			quietSince = time.Now()
		case time.Since(quietSince) >= time.Second:
			return recs
		}
	}
	if lastErr != nil {
		t.Logf("consumer: last error %v", lastErr)
	}
	return recs
}

// kafkaVerdict is what the records read back show.
type kafkaVerdict struct {
	records    int // read back, copies included
	distinct   int
	duplicated int // records read more than once
	extra      int // copies beyond the first
}

// kafkaCheck checks the records read back against the accepted ones:
// every accepted record is there; each in topic logs.<its app>, its key
// the entry's `user`; each key's records in one partition, in the order
// accepted (by first appearance: a copy sent again comes later); its
// timestamp when Caddy queued it. It
// counts duplicates, which at-least-once delivery allows.
func kafkaCheck(t *testing.T, recs []kafkaRecord, accepted map[string][]int) kafkaVerdict {
	t.Helper()
	sort.SliceStable(recs, func(i, j int) bool {
		a, b := recs[i], recs[j]
		if a.topic != b.topic {
			return a.topic < b.topic
		}
		if a.partition != b.partition {
			return a.partition < b.partition
		}
		return a.offset < b.offset
	})
	v := kafkaVerdict{records: len(recs)}
	byKey := map[string][]kafkaRecord{}
	bad := 0
	for _, r := range recs {
		// The record's timestamp is when Caddy queued the entry, also
		// when it was sent again after an outage or a restart.
		if (r.skew < -time.Second || r.skew > time.Second) && bad < 5 {
			bad++
			t.Errorf("record %s seq %d: its timestamp is %v from the entry's ts; want when it was queued", r.seqKey, r.seq, r.skew)
		}
		if (r.topic != "logs."+r.app || r.key != r.user || r.user != r.seqKey) && bad < 5 {
			bad++
			t.Errorf("record %s seq %d: topic %q, key %q, app %q, user %q; want topic logs.<app> and key = user = %s",
				r.seqKey, r.seq, r.topic, r.key, r.app, r.user, r.seqKey)
		}
		byKey[r.seqKey] = append(byKey[r.seqKey], r)
	}
	for key, rs := range byKey {
		first := map[int]bool{}
		last := -1
		for _, r := range rs {
			if r.topic != rs[0].topic || r.partition != rs[0].partition {
				t.Errorf("key %s: records in %s[%d] and %s[%d]; one key must keep one partition",
					key, rs[0].topic, rs[0].partition, r.topic, r.partition)
				break
			}
			if first[r.seq] {
				v.extra++
				continue
			}
			first[r.seq] = true
			if r.seq <= last {
				t.Errorf("key %s: record %d first appears at offset %d, after record %d: out of order", key, r.seq, r.offset, last)
			}
			last = r.seq
		}
		v.distinct += len(first)
		copies := map[int]int{}
		for _, r := range rs {
			copies[r.seq]++
		}
		for _, n := range copies {
			if n > 1 {
				v.duplicated++
			}
		}
	}
	lost := 0
	for key, seqs := range accepted {
		var miss []int
		have := map[int]bool{}
		for _, r := range byKey[key] {
			have[r.seq] = true
		}
		for _, seq := range seqs {
			if !have[seq] {
				miss = append(miss, seq)
			}
		}
		if len(miss) > 0 {
			lost += len(miss)
			t.Errorf("key %s: lost %d of %d accepted records: %s", key, len(miss), len(seqs), tlsShort(miss))
		}
	}
	t.Logf("%d records accepted, %d read back (%d distinct), %d lost, %d duplicated (%d extra copies)",
		kafkaTotal(accepted), v.records, v.distinct, lost, v.duplicated, v.extra)
	return v
}

// kafkaTotal is how many records accepted holds.
func kafkaTotal(accepted map[string][]int) int {
	n := 0
	for _, seqs := range accepted {
		n += len(seqs)
	}
	return n
}
