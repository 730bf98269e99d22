package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddy-applog/caddy-applog/internal/forward"
	"github.com/caddy-applog/caddy-applog/internal/forward/forwardtest"
)

// startCluster starts a kfake cluster of three brokers (a real Kafka
// protocol server in the test process) that closes at the test's end.
func startCluster(t testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(3)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// consumer reads topics from their start with a franz-go client, from
// a goroutine it owns that stops at the test's end (before the cluster
// it reads closes: cleanups run last registered first).
type consumer struct {
	c      *kfake.Cluster
	topics []string

	mu   sync.Mutex
	recs []*kgo.Record
	next map[kfakePartition]int64 // the offset after the last record consumed
}

type kfakePartition struct {
	topic     string
	partition int32
}

func consume(t testing.TB, c *kfake.Cluster, topics []string, opts ...kgo.Opt) *consumer {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(c.ListenAddrs()...),
		kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100 * time.Millisecond),
		// Find a topic created during the test soon.
		kgo.MetadataMinAge(50 * time.Millisecond),
		kgo.MetadataMaxAge(250 * time.Millisecond),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	cons := &consumer{c: c, topics: topics, next: map[kfakePartition]int64{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			n := 0
			fs.EachRecord(func(r *kgo.Record) {
				n++
				cons.mu.Lock()
				defer cons.mu.Unlock()
				// After a leader change the consumer may fetch again
				// what it had: a record is the producer's duplicate
				// only at a new offset.
				tp := kfakePartition{r.Topic, r.Partition}
				if next, ok := cons.next[tp]; ok && r.Offset < next {
					return
				}
				cons.recs = append(cons.recs, r)
				cons.next[tp] = r.Offset + 1
			})
			if n == 0 && len(fs.Errors()) > 0 {
				// A broker down or a topic not there yet: do not spin.
				select {
				case <-ctx.Done():
				case <-time.After(50 * time.Millisecond):
				}
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		cl.Close()
	})
	return cons
}

// records returns the records of its topics the cluster holds, in the
// order fetched (each partition in order): it waits (bounded) until the
// consumer has read up to each partition's high watermark, as a broker
// that acknowledged a record has it.
func (c *consumer) records() []*kgo.Record {
	deadline := time.Now().Add(10 * time.Second)
	for !c.caughtUp() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*kgo.Record(nil), c.recs...)
}

func (c *consumer) caughtUp() bool {
	for _, topic := range c.topics {
		for _, pi := range c.c.PartitionInfos(topic) {
			c.mu.Lock()
			next := c.next[kfakePartition{topic, pi.Partition}]
			c.mu.Unlock()
			if next < pi.HighWatermark {
				return false
			}
		}
	}
	return true
}

func (c *consumer) values() []string {
	recs := c.records()
	vals := make([]string, len(recs))
	for i, r := range recs {
		vals[i] = string(r.Value)
	}
	return vals
}

// testLogger logs to t until the test ends, and then nowhere: a
// client's goroutines may still say something while the hub that owns
// it winds down after the test (zaptest's logger would panic then).
func testLogger(t testing.TB) *zap.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	enc := zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig())
	return zap.New(zapcore.NewCore(enc, w, zapcore.DebugLevel))
}

type testWriter struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testWriter) Sync() error { return nil }

// peerTopic is the topic of the conformance suite's peers: one
// partition, so that the order of the records consumed is the order
// produced.
const peerTopic = "logs"

var peers atomic.Int64

// peer is a kfake cluster as forwardtest's peer. It can be down (its
// brokers close every connection that asks for metadata or produces) and
// break a session (it answers a produce request with an error franz-go
// does not retry and the writer does not take as a refusal for good).
type peer struct {
	c    *kfake.Cluster
	name string
	cons *consumer

	down atomic.Bool

	mu         sync.Mutex // guards breakAfter and produced, which the cluster's goroutine reads
	breakAfter int
	produced   int
}

var errPeerDown = errors.New("the peer is down")

func startPeer(t *testing.T) forwardtest.Peer {
	p := &peer{c: startCluster(t, kfake.SeedTopics(1, peerTopic))}
	p.name = fmt.Sprintf("kfake-%d %v", peers.Add(1), p.c.ListenAddrs())
	p.cons = consume(t, p.c, []string{peerTopic})
	// Down: a broker that is not there answers nothing; closing the
	// connection fails Connect's ping and a produce in flight.
	p.c.ControlKey(int16(kmsg.Metadata), func(kmsg.Request) (kmsg.Response, error, bool) {
		if p.down.Load() {
			p.c.KeepControl()
			return nil, errPeerDown, true
		}
		return nil, nil, false
	})
	p.c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		if p.down.Load() {
			p.c.KeepControl()
			return nil, errPeerDown, true
		}
		if resp := p.breakProduce(req.(*kmsg.ProduceRequest)); resp != nil {
			p.c.KeepControl()
			return resp, nil, true
		}
		return nil, nil, false
	})
	return p
}

// breakProduce counts the records of a produce request, and once the
// count reaches breakAfter answers the request with an
// UNKNOWN_SERVER_ERROR for each of its partitions.
func (p *peer) breakProduce(req *kmsg.ProduceRequest) kmsg.Response {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.breakAfter == 0 {
		return nil
	}
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			var b kmsg.RecordBatch
			if err := b.ReadFrom(rp.Records); err == nil {
				p.produced += int(b.NumRecords)
			}
		}
	}
	if p.produced < p.breakAfter {
		return nil
	}
	p.breakAfter = 0
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.ErrorCode = kerr.UnknownServerError.Code
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// writer is the kafka writer of the suite, prepared as Provision does.
func (p *peer) writer(log *zap.Logger) (*Writer, error) {
	w := &Writer{Brokers: p.c.ListenAddrs(), Topic: peerTopic}
	return w, w.prepare(log)
}

func (p *peer) Transport(t testing.TB) forward.Transport {
	w, err := p.writer(testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return w.cfg.Transport
}

// Configure sets the window and batch size the module sets.
func (p *peer) Configure(cfg *forward.Config) {
	w, err := p.writer(zap.NewNop())
	if err != nil {
		panic(err) // Transport, called first, has checked the settings
	}
	cfg.MaxInflight, cfg.BatchBytes = w.cfg.MaxInflight, w.cfg.BatchBytes
}

func (p *peer) Name() string       { return p.name }
func (p *peer) Received() []string { return p.cons.values() }
func (p *peer) SetDown(down bool)  { p.down.Store(down) }

func (p *peer) BreakAfter(n int) {
	p.mu.Lock()
	p.breakAfter, p.produced = n, 0
	p.mu.Unlock()
}

// TestForward runs internal/forward's conformance suite against a kfake
// cluster. Rejected is skipped: Kafka refuses a whole batch, not chosen
// records in it, so no broker answer refuses exactly the marked records
// (session_test.go has the refusals that are Kafka's own).
func TestForward(t *testing.T) {
	forwardtest.Run(t, startPeer)
}
