package applog

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// replayCache remembers signatures until their timestamp leaves the
// replay window, in memory and in a journal file, so that a signed
// request is accepted at most once. It is shared across config reloads
// (see App.Provision), so a reload does not reopen the window for
// replays, and the journal carries it across restarts.
//
// Each accepted signature is appended to the journal with one write(2)
// before its records are emitted, so once Caddy has emitted a record,
// the kernel has its signature: a crash of the process (kill -9) loses
// nothing. The journal is synced to disk when Caddy stops; after a crash
// of the machine, entries written since may be lost, so a journal that
// was not closed cleanly under an earlier boot (Linux's boot id) is not
// trusted, and signatures made before Caddy started are refused for one
// replay window. A journal that cannot be written refuses the signed
// request (503) rather than accepting it unrecorded. The journal belongs
// to one running Caddy: two servers sharing a data directory would each
// see only their own signatures.
//
// The journal is a header and 40-byte entries: a MAC and the Unix
// second it expires at, big-endian. Entries are only appended, each
// accepted signature's in one write(2); the file is rewritten with the
// live entries alone when it is opened and when it has grown to twice
// their number. Closing it appends a clean-close mark (a zero MAC) and
// syncs it.
type replayCache struct {
	mu        sync.Mutex
	seen      map[[sha256.Size]byte]int64 // MAC → expiry, Unix seconds
	next      time.Time                   // when to sweep expired entries
	dir       string                      // the journal's folder; "" keeps it in memory only
	journal   *os.File                    // nil until opened
	openErr   error                       // why the journal could not be opened
	written   int                         // entries in the journal file
	notBefore int64                       // signatures made before this Unix second are refused
}

// maxReplayEntries bounds the cache's memory (~100 bytes an entry).
const maxReplayEntries = 1 << 20

const (
	journalName  = "replay.journal"
	entrySize    = sha256.Size + 8
	journalMagic = "applogR1"
	// The header: magic, 24 bytes of a hash of the boot id of the
	// system that wrote the journal, and notBefore.
	headerSize = entrySize
)

var (
	errReplayed   = errors.New("signature already used")
	errUnproven   = errors.New("signature made before an unclean restart")
	errReplayFull = errors.New("replay cache full")
)

func newReplayCache(dir string) *replayCache {
	return &replayCache{seen: make(map[[sha256.Size]byte]int64), dir: dir}
}

// open loads and rewrites the journal, once. Called with c.mu held.
func (c *replayCache) open(now time.Time) error {
	if c.journal != nil || c.dir == "" {
		return nil
	}
	if c.openErr != nil {
		return c.openErr
	}
	c.openErr = c.load(now)
	return c.openErr
}

func (c *replayCache) load(now time.Time) error {
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return fmt.Errorf("replay journal: %w", err)
	}
	path := filepath.Join(c.dir, journalName)
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("replay journal: %w", err)
	}
	// What a crash while compacting left.
	if stale, err := filepath.Glob(path + ".*"); err == nil {
		for _, f := range stale {
			_ = os.Remove(f)
		}
	}
	boot := bootHash()
	if len(data) >= headerSize {
		if string(data[:len(journalMagic)]) != journalMagic {
			return fmt.Errorf("replay journal %s: not a journal of this version; remove it to start afresh (and refuse replays only from then on)", path)
		}
		c.notBefore = int64(binary.BigEndian.Uint64(data[headerSize-8:]))
		sameBoot := bytes.Equal(data[len(journalMagic):headerSize-8], boot[:])
		clean := false
		// A torn last entry is what a crash during its write(2) leaves.
		entries := data[headerSize : headerSize+(len(data)-headerSize)/entrySize*entrySize]
		for len(entries) > 0 {
			var mac [sha256.Size]byte
			copy(mac[:], entries)
			exp := int64(binary.BigEndian.Uint64(entries[sha256.Size:]))
			entries = entries[entrySize:]
			if mac == ([sha256.Size]byte{}) {
				clean = len(entries) == 0
				continue
			}
			if exp >= now.Unix() {
				c.seen[mac] = exp
			}
		}
		if !clean && !sameBoot {
			// Written under another boot and not closed: the machine
			// went down with Caddy running, and the entries it wrote
			// last may not have reached the disk.
			c.notBefore = max(c.notBefore, now.Unix())
		}
	} else if len(data) > 0 {
		// A header cut short: the journal's first write was lost.
		c.notBefore = now.Unix()
	}
	return c.rewrite()
}

// rewrite replaces the journal with its live entries, durably, and
// opens it for appending. Called with c.mu held.
func (c *replayCache) rewrite() error {
	path := filepath.Join(c.dir, journalName)
	buf := make([]byte, headerSize, headerSize+entrySize*len(c.seen))
	copy(buf, journalMagic)
	boot := bootHash()
	copy(buf[len(journalMagic):], boot[:])
	binary.BigEndian.PutUint64(buf[headerSize-8:], uint64(c.notBefore))
	for mac, exp := range c.seen {
		buf = appendEntry(buf, mac[:], exp)
	}
	tmp, err := os.CreateTemp(c.dir, journalName+".*")
	if err != nil {
		return fmt.Errorf("replay journal: %w", err)
	}
	_, err = tmp.Write(buf)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("replay journal: %w", err)
	}
	if d, err := os.Open(c.dir); err == nil {
		_ = d.Sync() // the rename, where the system allows it
		_ = d.Close()
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("replay journal: %w", err)
	}
	if c.journal != nil {
		_ = c.journal.Close()
	}
	c.journal, c.written = f, len(c.seen)
	return nil
}

func appendEntry(buf, mac []byte, exp int64) []byte {
	buf = append(buf, mac...)
	return binary.BigEndian.AppendUint64(buf, uint64(exp))
}

// bootHash identifies the running boot of the system (Linux's boot id),
// or is all zeros where there is none.
func bootHash() (h [headerSize - 8 - len(journalMagic)]byte) {
	id, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil || len(bytes.TrimSpace(id)) == 0 {
		return h
	}
	sum := sha256.Sum256(bytes.TrimSpace(id))
	copy(h[:], sum[:])
	return h
}

// Destruct implements caddy.Destructor for the usage pool: the journal
// is closed cleanly.
func (c *replayCache) Destruct() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.journal == nil {
		return nil
	}
	_, err := c.journal.Write(make([]byte, entrySize))
	if err == nil {
		err = c.journal.Sync()
	}
	if cerr := c.journal.Close(); err == nil {
		err = cerr
	}
	c.journal = nil
	if err != nil {
		return fmt.Errorf("closing the replay journal: %w", err)
	}
	return nil
}

// remember records macs, signed at ts and expiring at expiry: in memory,
// then in the journal before it returns. It fails with errReplayed if any
// was seen before, errUnproven if ts is before what the journal can
// vouch for, errReplayFull if the cache is full of live entries (it
// fails closed), or the journal's error, in which case nothing is kept.
func (c *replayCache) remember(macs [][]byte, ts int64, expiry, now time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.open(now); err != nil {
		return err
	}
	if ts < c.notBefore {
		return errUnproven
	}
	if now.After(c.next) || len(c.seen) >= maxReplayEntries {
		for k, exp := range c.seen {
			if now.Unix() > exp {
				delete(c.seen, k)
			}
		}
		c.next = now.Add(10 * time.Second)
	}
	var room [2][sha256.Size]byte // most batches need one
	keys := room[:0]
	for _, mac := range macs {
		var k [sha256.Size]byte
		copy(k[:], mac)
		keys = append(keys, k)
	}
	for i := range keys {
		if _, dup := c.seen[keys[i]]; dup {
			return errReplayed
		}
	}
	if len(c.seen)+len(macs) > maxReplayEntries {
		return errReplayFull
	}
	exp := expiry.Unix()
	if c.journal != nil {
		var buf [len(room) * entrySize]byte
		b := buf[:0]
		for i := range keys {
			b = appendEntry(b, keys[i][:], exp)
		}
		if _, err := c.journal.Write(b); err != nil {
			return fmt.Errorf("appending to the replay journal: %w", err)
		}
		c.written += len(macs)
	}
	for i := range keys {
		c.seen[keys[i]] = exp
	}
	if c.journal != nil && c.written > max(4096, 2*len(c.seen)) {
		// The entries are in the journal already: if compacting
		// fails, the journal just stays longer until the next try.
		if err := c.rewrite(); err != nil {
			c.written = len(c.seen)
		}
	}
	return nil
}

// openNow opens the journal if it is not open yet.
func (c *replayCache) openNow() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.open(time.Now())
}
