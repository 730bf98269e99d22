package applog

import (
	"context"
	"encoding/binary"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-applog/caddy-applog/module/intake"
)

// TestInterleavedAppsKeepTheirNames: every unknown app shares one set of
// rules and its caches; each record is still emitted under its own app.
func TestInterleavedAppsKeepTheirNames(t *testing.T) {
	a := &App{AcceptUnknown: true, Facilities: map[string]*Facility{"known": {}}}
	logs := newApp(t, a)
	apps := []string{"appa", "appb", "known", "appa", "appc", "appb", "known"}
	for round := range 3 {
		for _, app := range apps {
			for _, logger := range []string{"web.requests", "", "root"} {
				if _, err := submit(t, a, rec(app, logger, 20, app)); err != nil {
					t.Fatal(err)
				}
			}
		}
		_ = round
	}
	for _, e := range logs.All() {
		app := e.Message
		want := "applog." + app
		if f := e.ContextMap()["facility"]; f != "" {
			want += "." + f.(string)
		}
		if e.LoggerName != want || e.ContextMap()["app"] != app {
			t.Fatalf("record of %s emitted as %s, app %v", app, e.LoggerName, e.ContextMap()["app"])
		}
	}
	if n := len(logs.All()); n != 3*len(apps)*3 {
		t.Fatalf("%d entries", n)
	}
}

// TestRecordBound: a record is cut to the bytes it arrived in (times
// intake.MaxAmplification) and to max_record_size, inherited; the entry
// and the result say so.
func TestRecordBound(t *testing.T) {
	a := &App{Facilities: map[string]*Facility{
		"shop":       {MaxRecordSize: 2000},
		"shop:small": {},
	}}
	logs := newApp(t, a)
	big := strings.Repeat("x", 600)
	amplified := rec("shop", "web", 20, "expanded")
	amplified.Wire = 1000
	for range 10 {
		amplified.Attrs = append(amplified.Attrs, intake.Attr{Key: "ref", Value: intake.String(big)})
	}
	plain := rec("shop", "web", 20, "fits")
	plain.Wire = 1000
	plain.Attrs = []intake.Attr{{Key: "k", Value: intake.String(big)}}
	unknownWire := rec("shop", "small", 20, strings.Repeat("y", 1000))
	unknownWire.Attrs = amplified.Attrs
	res, err := submit(t, a, amplified, plain, unknownWire)
	if err != nil {
		t.Fatal(err)
	}
	if res.Truncated != 2 || res.Accepted != 3 {
		t.Fatalf("result %+v", res)
	}
	entries := logs.All()
	for i, limit := range []int{3000, 0, 2000} {
		e := entries[i]
		m := e.ContextMap()
		if (limit > 0) != (m["truncated"] == true) {
			t.Errorf("entry %d: truncated %v", i, m["truncated"])
		}
		r := intake.Record{Message: e.Message, Logger: m["logger_name"].(string), LevelName: m["level_name"].(string), Facility: m["facility"].(string)}
		for k, v := range m["attrs"].(map[string]any) {
			r.Attrs = append(r.Attrs, intake.Attr{Key: k, Value: intake.String(v.(string))})
		}
		if limit > 0 && r.Size() > limit {
			t.Errorf("entry %d: %d bytes of content over %d", i, r.Size(), limit)
		}
	}
}

func TestSecretPlaceholders(t *testing.T) {
	t.Setenv("APPLOG_TEST_SECRET", "from-env")
	file := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]string{
		"plain-secret":                 "plain-secret",
		"{env.APPLOG_TEST_SECRET}":     "from-env",
		"{file." + file + "}":          "from-file",
		"abc{def}":                     "error: a secret has braces",
		"{system.hostname}":            "error: a secret has braces",
		"key-{env.APPLOG_TEST_SECRET}": "error: a secret has braces",
		"{env.APPLOG_TEST_UNSET}":      "error: secret is empty",
		"{file./nonexistent/secret}":   "error: secret is empty",
	} {
		got, err := secretValue(in)
		if err != nil {
			got = "error: " + err.Error()
			if strings.Contains(got, in) && !strings.HasPrefix(in, "{") {
				t.Errorf("%q: the error shows the secret: %v", in, err)
			}
		}
		if !strings.HasPrefix(got, want) {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
}

func TestReservedAppNames(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	err := (&App{Facilities: map[string]*Facility{"receivers": {}}}).Provision(ctx)
	if !errors.Is(err, intake.ErrReservedApp) {
		t.Fatalf("facility receivers: %v", err)
	}
	a := &App{AcceptUnknown: true}
	logs := newApp(t, a)
	for _, app := range []string{"receivers", "Receivers"} {
		_, err := submit(t, a, rec(app, "syslog", 40, "imitation"))
		if intake.StatusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "reserved app name") {
			t.Errorf("%s: %v", app, err)
		}
	}
	if len(logs.All()) != 0 {
		t.Fatal("a reserved app's record was emitted")
	}
}

func TestReceivedWhenClocksDisagree(t *testing.T) {
	a := &App{Facilities: map[string]*Facility{"shop": {}}}
	logs := newApp(t, a)
	now := time.Now()
	for _, claim := range []time.Time{time.Unix(0, 0), now.Add(-4 * time.Minute), now.AddDate(73, 0, 0)} {
		r := rec("shop", "", 20, "m")
		r.Time = claim
		if _, err := a.Submit(context.Background(), &intake.Batch{Records: []intake.Record{r}, Received: now}); err != nil {
			t.Fatal(err)
		}
	}
	e := logs.All()
	if got, _ := e[0].ContextMap()["received"].(time.Time); !got.Equal(now) || !e[0].Time.Equal(time.Unix(0, 0)) {
		t.Errorf("1970: received %v, ts %v", got, e[0].Time)
	}
	if _, ok := e[1].ContextMap()["received"]; ok {
		t.Errorf("4 minutes off (within max_clock_skew) got received")
	}
	if got, _ := e[2].ContextMap()["received"].(time.Time); !got.Equal(now) {
		t.Errorf("2099: received %v", got)
	}
}

func TestNoAppErrorNamesTheDoor(t *testing.T) {
	a := &App{AcceptUnknown: true}
	newApp(t, a)
	for source, want := range map[string]string{
		"log_ingest":        "`app` query parameter",
		"python_socket/tcp": "python_socket receiver",
		"syslog/udp":        "syslog receiver",
	} {
		_, err := a.Submit(context.Background(), &intake.Batch{Records: []intake.Record{rec("", "", 20, "m")}, Source: source})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", source, err)
		}
		if source != "log_ingest" && strings.Contains(err.Error(), "query parameter") {
			t.Errorf("%s names HTTP settings: %v", source, err)
		}
	}
}

// TestReplayJournal: a used signature stays used across a clean close,
// a process crash (the cache dropped without closing), a torn last
// entry, and compaction; after a machine crash, signatures made before
// the restart are refused.
func TestReplayJournal(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	exp := now.Add(time.Minute)
	mac := func(b byte) [][]byte { m := make([]byte, 32); m[0] = b; return [][]byte{m} }
	c := newReplayCache(dir)
	if err := c.remember(mac(1), now.Unix(), exp, now); err != nil {
		t.Fatal(err)
	}
	if err := c.Destruct(); err != nil {
		t.Fatal(err)
	}
	c = newReplayCache(dir) // clean restart
	if err := c.remember(mac(1), now.Unix(), exp, now); !errors.Is(err, errReplayed) {
		t.Fatalf("after a clean restart: %v", err)
	}
	if err := c.remember(mac(2), now.Unix(), exp, now); err != nil {
		t.Fatal(err)
	}
	c = newReplayCache(dir) // kill -9: never closed
	for _, m := range []byte{1, 2} {
		if err := c.remember(mac(m), now.Unix(), exp, now); !errors.Is(err, errReplayed) {
			t.Fatalf("MAC %d after a crash: %v", m, err)
		}
	}
	// A torn entry at the end is ignored.
	path := filepath.Join(dir, journalName)
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	_, _ = f.Write([]byte{9, 9, 9})
	f.Close()
	c = newReplayCache(dir)
	if err := c.remember(mac(2), now.Unix(), exp, now); !errors.Is(err, errReplayed) {
		t.Fatalf("after a torn entry: %v", err)
	}
	// Expired entries are not carried over.
	later := exp.Add(time.Second)
	c = newReplayCache(dir)
	if err := c.remember(mac(3), later.Unix(), later.Add(time.Minute), later); err != nil || len(c.seen) != 1 {
		t.Fatalf("expired entries kept: %d, %v", len(c.seen), err)
	}
	// A journal of another boot, not closed: the machine crashed.
	data, _ := os.ReadFile(path)
	data[len(journalMagic)] ^= 0xff
	binary.BigEndian.PutUint64(data[headerSize-8:], 0)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	restart := later.Add(time.Second)
	c = newReplayCache(dir)
	if err := c.remember(mac(4), later.Unix(), later.Add(time.Minute), restart); !errors.Is(err, errUnproven) {
		t.Fatalf("signed before a machine crash: %v", err)
	}
	if err := c.remember(mac(5), restart.Unix(), restart.Add(time.Minute), restart); err != nil {
		t.Fatalf("signed after the restart: %v", err)
	}
	// ... and stays refused after a process crash that follows.
	c = newReplayCache(dir)
	if err := c.remember(mac(4), later.Unix(), later.Add(time.Minute), restart); !errors.Is(err, errUnproven) {
		t.Fatalf("signed before a machine crash, then a process crash: %v", err)
	}
	// Compaction keeps the file near the live entries.
	for i := range 10000 {
		m := make([]byte, 32)
		binary.BigEndian.PutUint32(m, uint32(i))
		m[31] = 0xee
		if err := c.remember([][]byte{m}, restart.Unix(), restart.Add(time.Duration(i%2)*time.Hour), restart.Add(time.Duration(i)*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
	}
	if st, _ := os.Stat(path); st.Size() > int64(entrySize*(2*len(c.seen)+4096+2)) {
		t.Fatalf("journal of %d bytes for %d live entries", st.Size(), len(c.seen))
	}
}

// BenchmarkRemember: the cost of one signed request's replay check, in
// memory only and with the journal.
func BenchmarkRemember(b *testing.B) {
	for _, dir := range []string{"", b.TempDir()} {
		name := "memory"
		if dir != "" {
			name = "journal"
		}
		b.Run(name, func(b *testing.B) {
			c := newReplayCache(dir)
			defer c.Destruct()
			start := time.Now()
			m := make([]byte, 32)
			binary.BigEndian.PutUint64(m[8:], uint64(start.UnixNano())) // unlike earlier runs'
			i := uint64(0)
			b.ReportAllocs()
			for b.Loop() {
				i++
				binary.BigEndian.PutUint64(m, i)
				// A signature a millisecond, each used for a second.
				now := start.Add(time.Duration(i) * time.Millisecond)
				if err := c.remember([][]byte{m}, now.Unix(), now.Add(time.Second), now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
