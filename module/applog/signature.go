package applog

import (
	"crypto/hmac"
	"crypto/sha256"
	"net/http"
	"sync"
	"time"

	"github.com/caddy-applog/caddy-applog/module/intake"
)

// verify checks b's signature against every secret its records need.
// needed holds the distinct rules that have secrets. On success the
// signature is remembered, so that the same signed request is refused
// if it comes again within the replay window.
func (a *App) verify(b *intake.Batch, needed []*rules, now time.Time) error {
	if len(needed) == 0 {
		return nil
	}
	sig := b.Signature
	if sig == nil {
		return intake.Errorf(http.StatusUnauthorized, "facility %s requires a signed request (%s header)", needed[0].name, intake.SignatureHeader)
	}
	window := time.Duration(a.ReplayWindow)
	age := now.Sub(time.Unix(sig.Timestamp, 0))
	if age > window || age < -window {
		return intake.Errorf(http.StatusForbidden, "signature timestamp is %s away from server time, outside the %s replay window", age.Round(time.Second).Abs(), window)
	}
	var used [][]byte
	for _, r := range needed {
		mac := matchingMAC(r.secrets, sig)
		if mac == nil {
			return intake.Errorf(http.StatusForbidden, "bad signature for facility %s", r.name)
		}
		used = append(used, mac)
	}
	if !a.replay.remember(used, time.Unix(sig.Timestamp, 0).Add(window), now) {
		return intake.Errorf(http.StatusForbidden, "replayed request: this signature was already used")
	}
	return nil
}

// matchingMAC returns the MAC in sig that one of secrets produced.
func matchingMAC(secrets [][]byte, sig *intake.Signature) []byte {
	for _, secret := range secrets {
		h := hmac.New(sha256.New, secret)
		h.Write(sig.Payload)
		want := h.Sum(nil)
		for _, mac := range sig.MACs {
			if hmac.Equal(mac, want) {
				return mac
			}
		}
	}
	return nil
}

// replayCache remembers signatures until their timestamp leaves the
// replay window. It is shared across config reloads (see App.Provision),
// so a reload does not reopen the window for replays.
type replayCache struct {
	mu   sync.Mutex
	seen map[[sha256.Size]byte]time.Time // MAC → expiry
	next time.Time                       // when to sweep expired entries
}

// maxReplayEntries bounds the cache's memory (~100 bytes an entry).
const maxReplayEntries = 1 << 20

func newReplayCache() *replayCache {
	return &replayCache{seen: make(map[[sha256.Size]byte]time.Time)}
}

// Destruct implements caddy.Destructor for the usage pool.
func (*replayCache) Destruct() error { return nil }

// remember records macs, reporting false if any was seen before (or the
// cache is full of live entries, in which case it fails closed).
func (c *replayCache) remember(macs [][]byte, expiry, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.After(c.next) || len(c.seen) >= maxReplayEntries {
		for k, exp := range c.seen {
			if now.After(exp) {
				delete(c.seen, k)
			}
		}
		c.next = now.Add(10 * time.Second)
	}
	var keys [][sha256.Size]byte
	for _, mac := range macs {
		var k [sha256.Size]byte
		copy(k[:], mac)
		if _, dup := c.seen[k]; dup {
			return false
		}
		keys = append(keys, k)
	}
	if len(c.seen)+len(keys) > maxReplayEntries {
		return false
	}
	for _, k := range keys {
		c.seen[k] = expiry
	}
	return true
}
