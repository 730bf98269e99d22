package kafka

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/caddy-applog/caddy-applog/internal/forward"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestUnmarshalCaddyfile(t *testing.T) {
	d := caddyfile.NewTestDispenser(`kafka 127.0.0.1:9092 127.0.0.1:9093 {
		topic logs.{app}
		fallback_topic logs.misc
		key {host}
		acks leader
		disable_idempotence
		compression zstd
		client_id edge-1
		tls
		ca /etc/ca.pem
		sasl scram-sha-512 caddy {env.KAFKA_PASSWORD}
		max_message_bytes 2MiB
		auto_create_topics
		dial_timeout 5s
		delivery_timeout 1m
		spool /var/spool/kafka {
			max_size 2GiB
		}
		buffer 5000
		backoff 1s 1m
	}`)
	var w Writer
	if err := w.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(&w)
	want := `{"brokers":["127.0.0.1:9092","127.0.0.1:9093"],"topic":"logs.{app}","fallback_topic":"logs.misc","key":"{host}","acks":"leader","disable_idempotence":true,"compression":"zstd","client_id":"edge-1","tls":true,"ca":"/etc/ca.pem","sasl":{"mechanism":"scram-sha-512","username":"caddy","password":"{env.KAFKA_PASSWORD}"},"max_message_bytes":2097152,"auto_create_topics":true,"dial_timeout":5000000000,"delivery_timeout":60000000000,"spool":{"dir":"/var/spool/kafka","max_size":2147483648},"buffer":5000,"backoff_min":1000000000,"backoff_max":60000000000}`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	for _, bad := range []string{
		`kafka`,
		"kafka a:1 {\ntopic\n}",
		"kafka a:1 {\ntls yes\n}",
		"kafka a:1 {\nsasl plain user\n}",
		"kafka a:1 {\nmax_message_bytes lots\n}",
		"kafka a:1 {\npartitions 3\n}",
	} {
		var w Writer
		if err := w.UnmarshalCaddyfile(caddyfile.NewTestDispenser(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := Writer{Brokers: []string{"k:9092"}, Topic: "logs"}
	ok.Buffer, ok.BackoffMin, ok.BackoffMax = 1, 1, 1
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		edit func(w *Writer)
		err  string
	}{
		{func(w *Writer) { w.Brokers = nil }, "brokers are required"},
		{func(w *Writer) { w.Brokers = []string{"k"} }, "want host:port"},
		{func(w *Writer) { w.Topic = "" }, "topic is required"},
		{func(w *Writer) { w.Acks = "some" }, "acks"},
		{func(w *Writer) { w.Compression = "brotli" }, "compression"},
		{func(w *Writer) { w.SASL = &SASL{Mechanism: "gssapi", Username: "u"} }, "sasl mechanism"},
		{func(w *Writer) { w.SASL = &SASL{Mechanism: "plain"} }, "username"},
		{func(w *Writer) { w.ClientCertificate = "c.pem" }, "client_cert"},
		{func(w *Writer) { w.Buffer = -1 }, "buffer"},
		{func(w *Writer) { w.MaxMessageBytes = 100 }, "max_message_bytes"},
		{func(w *Writer) { w.MaxMessageBytes = 200 << 20 }, "max_message_bytes"},
		{func(w *Writer) { w.DeliveryTimeout = caddy.Duration(500 * time.Millisecond) }, "delivery_timeout"},
		{func(w *Writer) { w.DialTimeout = -1 }, "dial_timeout"},
	} {
		w := ok
		tc.edit(&w)
		if err := w.Validate(); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%v, want %q", err, tc.err)
		}
	}
}

func TestTopicRoute(t *testing.T) {
	for _, tc := range []struct {
		topic, fallback, entry, want string
		unplaced                     bool
	}{
		{"logs", "", `{"app":"shop"}`, "logs", false},
		{"logs", "", `not json`, "logs", false},
		{"logs.{app}", "", `{"app":"shop"}`, "logs.shop", false},
		{"logs.{app}", "", `{"app":"my shop/../x"}`, "logs.my_shop_.._x", false},
		{"logs.{app}", "", `{"facility":"x"}`, "logs.unplaced", true},
		{"logs.{app}", "", `text`, "logs.unplaced", true},
		{"logs.{app:misc}", "", `{"facility":"x"}`, "logs.misc", false},
		{"logs.{app}", "strays", `{}`, "strays", true},
		{"{app}.{facility:root}", "", `{"app":"Shop","facility":"web.requests"}`, "Shop.web.requests", false},
		{"site.{request.host}", "", `{"request":{"host":"Shop.Example.com:443"}}`, "site.shop.example.com", false},
		{"{app}", "", `{"app":"."}`, "unplaced", true},
		{"logs.{app}", "", `{"app":"` + strings.Repeat("a", 300) + `"}`, "logs." + strings.Repeat("a", maxValueLen), false},
	} {
		r, err := newTopicRoute(tc.topic, tc.fallback)
		if err != nil {
			t.Fatalf("%s: %v", tc.topic, err)
		}
		got, unplaced := r.appendTopic([]byte("x"), []byte(tc.entry))
		if string(got) != "x"+tc.want || unplaced != tc.unplaced {
			t.Errorf("%s with %s: %q, %v; want %q, %v", tc.topic, tc.entry, got[1:], unplaced, tc.want, tc.unplaced)
		}
	}
	for topic, want := range map[string]string{
		"":                       "required",
		"logs/app":               "not allowed",
		"..":                     "are not topics",
		"logs/{app}":             "not allowed",
		"logs.{app:a/b}":         "part of a topic name",
		"logs.{app":              "not allowed",
		strings.Repeat("x", 250): "longer than",
	} {
		if _, err := newTopicRoute(topic, ""); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", topic, err, want)
		}
	}
	if _, err := newTopicRoute("logs", "other"); err == nil {
		t.Error("a fixed topic took a fallback")
	}
}

func TestKeyValue(t *testing.T) {
	if got := string(appendKeyValue(nil, []byte("Web-1.Example"), true)); got != "web-1.example" {
		t.Errorf("host key %q", got)
	}
	if got := string(appendKeyValue(nil, []byte("Shop"), false)); got != "Shop" {
		t.Errorf("key %q", got)
	}
}

// TestCarry: a session after a break skips exactly the records the
// broken one's brokers acknowledged, within that session's window.
func TestCarry(t *testing.T) {
	rec := func(ts int64, s string) forward.Record { return forward.Record{Time: ts, Data: []byte(s)} }
	var c carry
	ids := map[recordID]int{idOf(rec(2, "b")): 1, idOf(rec(4, "d")): 1}
	c.keep(ids, 4)
	for i, tc := range []struct {
		r    forward.Record
		want bool
	}{
		{rec(1, "a"), false},
		{rec(2, "b"), true},
		{rec(3, "x"), false}, // the queue changed: not the acknowledged one
		{rec(4, "dd"), false},
		{rec(4, "d"), false}, // past the window of 4
	} {
		if got := c.delivered(tc.r); got != tc.want {
			t.Errorf("%d: delivered %v, want %v", i, got, tc.want)
		}
	}
	c.keep(map[recordID]int{idOf(rec(2, "b")): 1}, 3)
	if !c.delivered(rec(2, "b")) || c.delivered(rec(2, "b")) {
		t.Error("a record acknowledged once was skipped twice or not at all")
	}
}
