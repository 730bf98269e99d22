// Package kafka is the kafka log writer: it produces log entries to
// Apache Kafka (or a cluster that speaks its protocol: Redpanda, WarpStream,
// Amazon MSK) with franz-go, through the forwarding core's spool.
package kafka

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"go.uber.org/zap"

	"github.com/caddy-applog/caddy-applog/internal/entrytmpl"
	"github.com/caddy-applog/caddy-applog/internal/forward"
	"github.com/caddy-applog/caddy-applog/internal/ratelog"
	"github.com/caddy-applog/caddy-applog/internal/tlsconfig"
	"github.com/caddy-applog/caddy-applog/module/status"
)

func init() {
	caddy.RegisterModule(Writer{})
}

// Writer produces log entries to Kafka topics: each entry is one Kafka
// record, its value the entry as the log's encoder wrote it (without the
// newline), its timestamp when Caddy queued it. The topic may be fixed
// or filled from the entry's fields (`logs.{app}`), and a key
// (`{host}`, `{app}`) keeps each key's records in one partition, in
// order. By default every in-sync replica must have a record before it
// counts (`acks all`) and the producer is idempotent. With a `spool`,
// each entry is on disk before the write returns and leaves it only once
// the brokers acknowledged it, at least once, across broker outages,
// reloads, restarts and crashes.
type Writer struct {
	// The brokers the client first asks for the cluster's metadata,
	// as host:port. Required.
	Brokers []string `json:"brokers,omitempty"`

	// The topic: a name, or a template filled from each entry's JSON
	// fields such as `logs.{app}` or `{app}.{facility:root}` (values
	// become topic-safe: other bytes than letters, digits, '.', '_'
	// and '-' are written '_'). Required.
	Topic string `json:"topic,omitempty"`

	// With a topic template, the topic of entries it cannot place (not
	// JSON, a field missing without a default). Default: the template
	// with each placeholder replaced by its default or `unplaced`.
	FallbackTopic string `json:"fallback_topic,omitempty"`

	// The record key, a template such as `{host}` or `{app}`: records
	// with one key go to one partition, in order. An entry without the
	// fields gets no key. Default: none (records are spread over the
	// partitions).
	Key string `json:"key,omitempty"`

	// How many replicas must have a record before the broker
	// acknowledges it: all (every in-sync replica), leader, or none.
	// Default: all.
	Acks string `json:"acks,omitempty"`

	// Turns off the idempotent producer, which keeps retries from
	// writing a record twice and needs acks all (it is off with other
	// acks).
	DisableIdempotence bool `json:"disable_idempotence,omitempty"`

	// zstd, lz4, snappy, gzip or none; a broker too old for the codec
	// gets the batch uncompressed. Default: snappy.
	Compression string `json:"compression,omitempty"`

	// The client ID brokers see. Default: caddy-applog.
	ClientID string `json:"client_id,omitempty"`

	// Connect over TLS (implied by any of the TLS options below).
	TLS bool `json:"tls,omitempty"`

	// How the brokers are verified and which client certificate is
	// presented: ca, client_certificate and client_key,
	// client_certificate_automate, server_name.
	tlsconfig.Client

	// SASL authentication. Default: none.
	SASL *SASL `json:"sasl,omitempty"`

	// The largest batch of records (and so record) the client sends to
	// one partition; a record that cannot fit is dropped and counted.
	// Default: 1000012 bytes, Kafka's max.message.bytes.
	MaxMessageBytes int `json:"max_message_bytes,omitempty"`

	// Ask the brokers to create a topic that does not exist (if they
	// allow it) rather than waiting for it. Default: off.
	AutoCreateTopics bool `json:"auto_create_topics,omitempty"`

	// How long to wait for a broker to answer when connecting.
	// Default: 10s.
	DialTimeout caddy.Duration `json:"dial_timeout,omitempty"`

	// How long a record may wait for the brokers before the session
	// is given up and begun again (a reconnect with backoff, the record
	// sent again). Default: 30s.
	DeliveryTimeout caddy.Duration `json:"delivery_timeout,omitempty"`

	// Where entries wait until delivered (spool, buffer) and the waits
	// between failed sessions (backoff_min, backoff_max).
	forward.Options

	hub *forward.Hub
	cfg *forward.Config
}

// SASL is how the client authenticates to the brokers.
type SASL struct {
	// plain, scram-sha-256 or scram-sha-512.
	Mechanism string `json:"mechanism,omitempty"`
	// May use placeholders known at provisioning ({env.X}).
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Writer) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "caddy.logging.writers.kafka",
		New: func() caddy.Module { return new(Writer) },
	}
}

// Defaults.
const (
	defaultClientID        = "caddy-applog"
	defaultMaxMessageBytes = 1000012
	defaultDialTimeout     = 10 * time.Second
	defaultDeliveryTimeout = 30 * time.Second
	// batchBytes is about how much one Send hands the client.
	batchBytes = 256 << 10
)

// Provision checks the settings, loads the certificates, and opens (or
// joins) the writer's queue and sender for the config being loaded.
func (w *Writer) Provision(ctx caddy.Context) error {
	if w.Acks == "" {
		w.Acks = "all"
	}
	if w.Compression == "" {
		w.Compression = "snappy"
	}
	if w.ClientID == "" {
		w.ClientID = defaultClientID
	}
	if w.MaxMessageBytes == 0 {
		w.MaxMessageBytes = defaultMaxMessageBytes
	}
	if w.DialTimeout == 0 {
		w.DialTimeout = caddy.Duration(defaultDialTimeout)
	}
	if w.DeliveryTimeout == 0 {
		w.DeliveryTimeout = caddy.Duration(defaultDeliveryTimeout)
	}
	if err := w.Options.Provision(); err != nil {
		return fmt.Errorf("kafka writer: %w", err)
	}
	if err := w.Validate(); err != nil {
		return err
	}
	route, err := newTopicRoute(w.Topic, w.FallbackTopic)
	if err != nil {
		return fmt.Errorf("kafka writer: %w", err)
	}
	var key *entrytmpl.Template
	if w.Key != "" {
		if key, err = entrytmpl.Parse(w.Key, nil); err != nil {
			return fmt.Errorf("kafka writer: key %q: %w", w.Key, err)
		}
	}
	name := strings.Join(w.Brokers, ",") + " " + w.Topic
	log := ctx.Logger().With(zap.Strings("brokers", w.Brokers), zap.String("topic", w.Topic))
	opts, secret, err := w.clientOpts(log)
	if err != nil {
		return err
	}
	// The key holds every setting that makes a new session, the
	// credentials hashed.
	secretSum := sha256.Sum256([]byte(secret))
	connKey, _ := json.Marshal([]any{w.Brokers, w.Topic, w.FallbackTopic, w.Key, w.Acks, w.DisableIdempotence, w.Compression, w.ClientID, w.TLS, w.Client, secretSum[:], w.MaxMessageBytes, w.AutoCreateTopics, w.DialTimeout, w.DeliveryTimeout, w.BackoffMin, w.BackoffMax})
	w.cfg = &forward.Config{
		Key: string(connKey),
		Transport: &transport{
			opts:        opts,
			pingTimeout: time.Duration(w.DialTimeout),
			topic:       route,
			key:         key,
			meter:       status.WriterMeter("kafka", name),
			log:         log,
			dropLog:     new(ratelog.Limiter),
		},
		Name:        name,
		BatchBytes:  batchBytes,
		MaxInflight: maxInflight,
		Log:         log,
	}
	hubKey := w.Options.Apply(w.cfg)
	// The lease ends with the config's context (ctx.Context: a
	// caddy.Context value cannot be compared, the context inside can).
	w.hub, err = forward.Acquire(ctx.Context, "kafka", hubKey, w.cfg)
	return err
}

// clientOpts builds the franz-go client's options, and returns the
// credentials it uses (for the connection key).
func (w *Writer) clientOpts(log *zap.Logger) ([]kgo.Opt, string, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(w.Brokers...),
		kgo.ClientID(w.ClientID),
		kgo.DialTimeout(time.Duration(w.DialTimeout)),
		kgo.RecordDeliveryTimeout(time.Duration(w.DeliveryTimeout)),
		kgo.ProducerBatchMaxBytes(int32(w.MaxMessageBytes)),
		// Sized past the sender's window and one batch of the
		// smallest entries, so that TryProduce never finds it full.
		kgo.MaxBufferedRecords(maxInflight + batchBytes),
		kgo.WithLogger(zapLogger{log: log.Named("franz-go")}),
	}
	switch w.Acks {
	case "all":
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case "leader":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()))
	case "none":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()))
	}
	if w.Acks != "all" || w.DisableIdempotence {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	codec := map[string]kgo.CompressionCodec{
		"zstd": kgo.ZstdCompression(), "lz4": kgo.Lz4Compression(), "snappy": kgo.SnappyCompression(),
		"gzip": kgo.GzipCompression(), "none": kgo.NoCompression(),
	}[w.Compression]
	opts = append(opts, kgo.ProducerBatchCompression(codec, kgo.NoCompression()))
	if w.AutoCreateTopics {
		opts = append(opts, kgo.AllowAutoTopicCreation())
	}
	if w.TLS || w.Client != (tlsconfig.Client{}) {
		host := w.Brokers[0]
		if i := strings.LastIndexByte(host, ':'); i >= 0 {
			host = strings.Trim(host[:i], "[]")
		}
		// With several brokers, each is verified against its own name
		// unless server_name fixes one (franz-go sets ServerName per
		// broker when the config leaves it empty).
		cfg, err := w.Client.Config(host)
		if err != nil {
			return nil, "", fmt.Errorf("kafka writer: %w", err)
		}
		if w.ServerName == "" {
			cfg.ServerName = ""
		}
		opts = append(opts, kgo.DialTLSConfig(cfg))
	}
	secret := ""
	if s := w.SASL; s != nil {
		repl := caddy.NewReplacer()
		user, pass := repl.ReplaceKnown(s.Username, ""), repl.ReplaceKnown(s.Password, "")
		secret = user + "\x00" + pass
		var mech sasl.Mechanism
		switch s.Mechanism {
		case "plain":
			mech = plain.Auth{User: user, Pass: pass}.AsMechanism()
		case "scram-sha-256":
			mech = scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()
		case "scram-sha-512":
			mech = scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()
		}
		opts = append(opts, kgo.SASL(mech))
	}
	return opts, secret, nil
}

// Validate checks the writer's settings.
func (w *Writer) Validate() error {
	if len(w.Brokers) == 0 {
		return errors.New("kafka writer: brokers are required (host:port)")
	}
	for _, b := range w.Brokers {
		if i := strings.LastIndexByte(b, ':'); i <= 0 || i == len(b)-1 {
			return fmt.Errorf("kafka writer: broker %q: want host:port", b)
		}
	}
	if w.Topic == "" {
		return errors.New("kafka writer: topic is required")
	}
	switch w.Acks {
	case "", "all", "leader", "none":
	default:
		return fmt.Errorf("kafka writer: acks %q: want all, leader or none", w.Acks)
	}
	switch w.Compression {
	case "", "zstd", "lz4", "snappy", "gzip", "none":
	default:
		return fmt.Errorf("kafka writer: compression %q: want zstd, lz4, snappy, gzip or none", w.Compression)
	}
	if s := w.SASL; s != nil {
		switch s.Mechanism {
		case "plain", "scram-sha-256", "scram-sha-512":
		default:
			return fmt.Errorf("kafka writer: sasl mechanism %q: want plain, scram-sha-256 or scram-sha-512", s.Mechanism)
		}
		if s.Username == "" {
			return errors.New("kafka writer: sasl needs a username")
		}
	}
	if w.MaxMessageBytes < 0 || w.MaxMessageBytes > 1<<30 {
		return fmt.Errorf("kafka writer: max_message_bytes %d: want up to 1GiB", w.MaxMessageBytes)
	}
	if w.DialTimeout < 0 || w.DeliveryTimeout < 0 {
		return errors.New("kafka writer: dial_timeout and delivery_timeout must not be negative")
	}
	if err := w.Client.Validate(); err != nil {
		return fmt.Errorf("kafka writer: %w", err)
	}
	if err := w.Options.Validate(); err != nil {
		return fmt.Errorf("kafka writer: %w", err)
	}
	return nil
}

func (w *Writer) String() string { return "kafka " + strings.Join(w.Brokers, ",") + " " + w.Topic }

// WriterKey identifies the writer for Caddy's pool. It holds every
// option, so a reload with new options gets a new writer; both write
// into the same queue (see internal/forward's hub.go).
func (w *Writer) WriterKey() string {
	opts, _ := json.Marshal(w)
	return "applog-kafka:" + string(opts)
}

// OpenWriter returns the writer's end of its queue.
func (w *Writer) OpenWriter() (io.WriteCloser, error) {
	if w.hub == nil {
		return nil, errors.New("kafka writer: not provisioned")
	}
	return w.hub.Writer(w.cfg), nil
}

// Interface guards
var (
	_ caddy.WriterOpener = (*Writer)(nil)
	_ caddy.Provisioner  = (*Writer)(nil)
	_ caddy.Validator    = (*Writer)(nil)
)
