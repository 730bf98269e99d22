package forward

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-applog/caddy-applog/module/status"
)

// A spool is a queue on disk: a folder of append-only segment files and
// a cursor file saying where the oldest undelivered record starts.
//
//	segment-00000000000000000001.spool   records, appended in order
//	segment-00000000000000000002.spool   (a new one every segSize bytes)
//	cursor                               seg(8) off(8) crc32c(4)
//
// Each record is framed as
//
//	length(4) crc32c(4) unix-nanos(8) payload(length)
//
// all big-endian, the CRC covering the time and the payload. Framing
// lets a restart find where a write torn by a crash ends (the frame that
// fails its check, and everything after it in the last segment, is cut
// off: that record's Write had not returned) and lets the sender verify
// what it reads back.
//
// The cursor is rewritten in place after each commit without fsync: a
// killed process loses nothing (the page cache survives it), and after
// an OS crash the cursor may lag by up to a second, so that much may be
// sent again. Segments wholly before the cursor are deleted.
type spool struct {
	dir     string
	maxSize int64
	onFull  string
	// fsyncEvery is 0 to fsync before each put returns, else the longest
	// time (in nanoseconds) a written record waits for its fsync.
	fsyncEvery atomic.Int64
	segSize    int64
	meter      *status.Writer
	log        *zap.Logger

	mu      sync.Mutex
	segs    []*segment // segs[0] holds the head; the last is appended to
	hd      pos        // the oldest record held
	used    int64      // bytes of frames from hd to the end
	count   int64      // records from hd to the end
	changed chan struct{}
	freed   chan struct{}
	closed  bool
	lost    []*segment // segments before hd, to delete (by the sender)

	syncMu      sync.Mutex
	written     atomic.Uint64 // puts written
	synced      atomic.Uint64 // puts known to be on stable storage
	stopSync    chan struct{}
	policy      chan struct{} // fsyncEvery changed
	syncDone    chan struct{}
	cursor      *os.File
	cursorDirty atomic.Bool
}

type segment struct {
	seq  uint64
	f    *os.File
	size int64
}

const (
	frameHeader   = 16
	maxRecordSize = 16 << 20 // anything claiming more is corruption
	cursorName    = "cursor"
	cursorSize    = 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func segmentName(seq uint64) string { return fmt.Sprintf("segment-%020d.spool", seq) }

// openSpool opens (creating if need be) the spool in dir, checks what it
// holds, and cuts off a torn last record.
func openSpool(dir string, maxSize int64, onFull string, fsyncEvery time.Duration, meter *status.Writer, log *zap.Logger) (*spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating spool folder: %w", err)
	}
	s := &spool{
		dir: dir, maxSize: maxSize, onFull: onFull,
		segSize: min(max(maxSize/16, 1<<20), 64<<20),
		meter:   meter, log: log,
		changed: make(chan struct{}), freed: make(chan struct{}),
		stopSync: make(chan struct{}), syncDone: make(chan struct{}), policy: make(chan struct{}, 1),
	}
	s.fsyncEvery.Store(int64(fsyncEvery))
	var err error
	s.cursor, err = os.OpenFile(filepath.Join(dir, cursorName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening spool cursor: %w", err)
	}
	if err := s.load(); err != nil {
		s.closeFiles()
		return nil, err
	}
	go s.syncLoop()
	return s, nil
}

// load finds the segments and the cursor, and counts what is held.
func (s *spool) load() error {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("reading spool folder: %w", err)
	}
	var seqs []uint64
	for _, e := range entries {
		var seq uint64
		if _, err := fmt.Sscanf(e.Name(), "segment-%020d.spool", &seq); err == nil && strings.HasSuffix(e.Name(), ".spool") {
			seqs = append(seqs, seq)
		}
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })

	var buf [cursorSize]byte
	cur, haveCursor := pos{}, false
	if n, _ := s.cursor.ReadAt(buf[:], 0); n == cursorSize &&
		crc32.Checksum(buf[:16], castagnoli) == binary.BigEndian.Uint32(buf[16:]) {
		cur = pos{binary.BigEndian.Uint64(buf[:8]), int64(binary.BigEndian.Uint64(buf[8:16]))}
		haveCursor = true
	}
	for _, seq := range seqs {
		path := filepath.Join(s.dir, segmentName(seq))
		if haveCursor && seq < cur.seg {
			if err := os.Remove(path); err != nil {
				return fmt.Errorf("removing delivered spool segment: %w", err)
			}
			continue
		}
		f, err := os.OpenFile(path, os.O_RDWR, 0o600)
		if err != nil {
			return fmt.Errorf("opening spool segment: %w", err)
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return fmt.Errorf("opening spool segment: %w", err)
		}
		s.segs = append(s.segs, &segment{seq: seq, f: f, size: st.Size()})
	}
	if len(s.segs) == 0 {
		next := uint64(1)
		if haveCursor {
			next = cur.seg + 1
		}
		if err := s.addSegment(next); err != nil {
			return err
		}
	}
	s.hd = pos{s.segs[0].seq, 0}
	if haveCursor && cur.seg == s.segs[0].seq {
		s.hd.off = cur.off
	}
	// Count what is held from the head on, and check every frame: one
	// that fails ends its segment (a torn write, or damage: the rest of
	// that segment cannot be framed any more).
	for i, sg := range s.segs {
		off := int64(0)
		if i == 0 {
			off = s.hd.off
		}
		end, n, err := scanSegment(sg.f, off, sg.size)
		if err != nil {
			return fmt.Errorf("reading spool segment %s: %w", sg.f.Name(), err)
		}
		if end < sg.size {
			s.log.Warn("cutting off a damaged or torn record in the spool",
				zap.String("segment", sg.f.Name()), zap.Int64("offset", end), zap.Int64("bytes_cut", sg.size-end))
			if err := sg.f.Truncate(end); err != nil {
				return fmt.Errorf("truncating spool segment: %w", err)
			}
			sg.size = end
		}
		if off > end {
			s.hd.off = end // a cursor past the data: nothing held there
			off = end
		}
		s.used += end - off
		s.count += n
	}
	s.normalizeHeadLocked()
	s.updateGauges()
	return nil
}

// scanSegment walks the frames of f from off, returning where the last
// whole, valid one ends and how many there are.
func scanSegment(f *os.File, off, size int64) (int64, int64, error) {
	r := io.NewSectionReader(f, off, size-off)
	var hdr [frameHeader]byte
	var payload []byte
	var n int64
	for off+frameHeader <= size {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return off, n, nil
		}
		l := int64(binary.BigEndian.Uint32(hdr[:4]))
		if l > maxRecordSize || off+frameHeader+l > size {
			return off, n, nil
		}
		if int64(cap(payload)) < l {
			payload = make([]byte, l)
		}
		payload = payload[:l]
		if _, err := io.ReadFull(r, payload); err != nil {
			return off, n, nil
		}
		crc := crc32.Update(crc32.Checksum(hdr[8:16], castagnoli), castagnoli, payload)
		if crc != binary.BigEndian.Uint32(hdr[4:8]) {
			return off, n, nil
		}
		off += frameHeader + l
		n++
	}
	return off, n, nil
}

func (s *spool) addSegment(seq uint64) error {
	f, err := os.OpenFile(filepath.Join(s.dir, segmentName(seq)), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("creating spool segment: %w", err)
	}
	s.segs = append(s.segs, &segment{seq: seq, f: f})
	return nil
}

// put appends a record, applying the on_full policy when the spool
// holds max_size bytes already.
func (s *spool) put(p []byte) error {
	p = trimEntry(p)
	size := int64(frameHeader + len(p))
	if len(p) > maxRecordSize {
		s.meter.Dropped.Add(1)
		return fmt.Errorf("spool %s: entry of %d bytes is larger than %d bytes, dropped", s.dir, len(p), maxRecordSize)
	}
	frame := make([]byte, size)
	now := time.Now().UnixNano()
	binary.BigEndian.PutUint32(frame[:4], uint32(len(p)))
	binary.BigEndian.PutUint64(frame[8:16], uint64(now))
	copy(frame[16:], p)
	binary.BigEndian.PutUint32(frame[4:8], crc32.Checksum(frame[8:], castagnoli))

	s.mu.Lock()
	for !s.closed && s.used+size > s.maxSize && s.used > 0 {
		switch s.onFull {
		case "drop_newest":
			s.mu.Unlock()
			s.meter.Dropped.Add(1)
			return fmt.Errorf("spool %s is full (max_size %d bytes), entry dropped", s.dir, s.maxSize)
		case "drop_oldest":
			if err := s.dropOldestLocked(size); err != nil {
				s.mu.Unlock()
				s.meter.Errors.Add(1)
				return err
			}
		default: // block until the sender frees room
			freed := s.freed
			s.mu.Unlock()
			<-freed
			s.mu.Lock()
		}
	}
	if s.closed {
		s.mu.Unlock()
		return errClosed
	}
	sg := s.segs[len(s.segs)-1]
	if sg.size > 0 && sg.size+size > s.segSize {
		// Seal the segment: sync it now, so that everything written
		// to it counts as synced.
		if err := sg.f.Sync(); err != nil {
			s.mu.Unlock()
			s.meter.Errors.Add(1)
			return fmt.Errorf("syncing spool segment: %w", err)
		}
		s.synced.Store(s.written.Load())
		if err := s.addSegment(sg.seq + 1); err != nil {
			s.mu.Unlock()
			s.meter.Errors.Add(1)
			return err
		}
		sg = s.segs[len(s.segs)-1]
	}
	if _, err := sg.f.WriteAt(frame, sg.size); err != nil {
		// Nothing is counted: the next put overwrites whatever part of
		// the frame reached the file.
		s.mu.Unlock()
		s.meter.Errors.Add(1)
		return fmt.Errorf("writing to spool %s: %w", s.dir, err)
	}
	sg.size += size
	s.used += size
	s.count++
	if s.count == 1 {
		s.meter.SpoolOldest.Store(now)
	}
	s.meter.SpoolDepth.Store(s.count)
	n := s.written.Add(1)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()

	if s.fsyncEvery.Load() == 0 {
		if err := s.syncTo(n); err != nil {
			s.meter.Errors.Add(1)
			return err
		}
	}
	return nil
}

// syncTo returns once put number n is on stable storage. Concurrent
// callers share one fsync: while one runs, the others queue on syncMu
// and find their puts covered when it ends (group commit).
func (s *spool) syncTo(n uint64) error {
	if s.synced.Load() >= n {
		return nil
	}
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	if s.synced.Load() >= n {
		return nil
	}
	s.mu.Lock()
	w := s.written.Load()
	f := s.segs[len(s.segs)-1].f
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil // close synced everything
	}
	// Puts up to w went to f or to segments sealed (and synced) before.
	if err := f.Sync(); err != nil {
		return fmt.Errorf("syncing spool %s: %w", s.dir, err)
	}
	for {
		old := s.synced.Load()
		if old >= w || s.synced.CompareAndSwap(old, w) {
			return nil
		}
	}
}

// dropOldestLocked forgets the oldest records until size more bytes
// fit. Records a sender already has in flight may be among them: they
// count as dropped even if they arrive.
func (s *spool) dropOldestLocked(size int64) error {
	var hdr [frameHeader]byte
	for s.used+size > s.maxSize && s.count > 0 {
		s.normalizeHeadLocked()
		sg := s.segs[0]
		if _, err := sg.f.ReadAt(hdr[:], s.hd.off); err != nil {
			return fmt.Errorf("reading spool %s: %w", s.dir, err)
		}
		l := frameHeader + int64(binary.BigEndian.Uint32(hdr[:4]))
		s.hd.off += l
		s.used -= l
		s.count--
		s.meter.Dropped.Add(1)
	}
	s.normalizeHeadLocked()
	s.writeCursorLocked()
	s.updateGauges()
	return nil
}

// normalizeHeadLocked queues the segments before the head for deletion
// and moves a head that sits at the end of a sealed segment to the start
// of the next.
func (s *spool) normalizeHeadLocked() {
	for len(s.segs) > 1 && (s.segs[0].seq < s.hd.seg || s.segs[0].seq == s.hd.seg && s.hd.off >= s.segs[0].size) {
		s.lost = append(s.lost, s.segs[0])
		s.segs = s.segs[1:]
		if s.hd.seg < s.segs[0].seq {
			s.hd = pos{s.segs[0].seq, 0}
		}
	}
}

// read returns records from `from` on. Only the sender calls it, so it
// may read files without holding mu: segments are deleted only by the
// sender (in gc) and only appended to by put.
func (s *spool) read(from pos, maxBytes int, wake <-chan struct{}, timeout time.Duration) ([]record, error) {
	s.gc()
	var timer *time.Timer
	defer stopTimer(&timer)
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, errClosed
		}
		if from.before(s.hd) {
			from = s.hd
		}
		// Find from's segment; step over ends of sealed segments.
		i := sort.Search(len(s.segs), func(i int) bool { return s.segs[i].seq >= from.seg })
		for i < len(s.segs)-1 && s.segs[i].seq == from.seg && from.off >= s.segs[i].size {
			i++
			from = pos{s.segs[i].seq, 0}
		}
		if i == len(s.segs) || s.segs[i].seq != from.seg {
			s.mu.Unlock()
			return nil, fmt.Errorf("spool %s: read position %d:%d is not held", s.dir, from.seg, from.off)
		}
		sg := s.segs[i]
		avail := sg.size - from.off
		changed := s.changed
		s.mu.Unlock()
		if avail > 0 {
			return s.readFrames(sg, from, min(avail, int64(maxBytes)), avail)
		}
		if !awaitChange(changed, wake, &timer, timeout) {
			return nil, nil
		}
	}
}

// readFrames reads whole frames from sg at from: want bytes, or more if
// the first frame is larger.
func (s *spool) readFrames(sg *segment, from pos, want, avail int64) ([]record, error) {
	buf := make([]byte, want)
	if _, err := sg.f.ReadAt(buf, from.off); err != nil {
		return nil, fmt.Errorf("reading spool %s: %w", s.dir, err)
	}
	var recs []record
	off := int64(0)
	for {
		if off+frameHeader > int64(len(buf)) {
			break
		}
		l := int64(binary.BigEndian.Uint32(buf[off : off+4]))
		if l > maxRecordSize {
			return nil, fmt.Errorf("spool %s: damaged frame at %d:%d", s.dir, from.seg, from.off+off)
		}
		if off+frameHeader+l > int64(len(buf)) {
			if len(recs) > 0 {
				break
			}
			if frameHeader+l > avail {
				return nil, fmt.Errorf("spool %s: damaged frame at %d:%d", s.dir, from.seg, from.off+off)
			}
			// One frame larger than max: read just it.
			buf = make([]byte, frameHeader+l)
			if _, err := sg.f.ReadAt(buf, from.off); err != nil {
				return nil, fmt.Errorf("reading spool %s: %w", s.dir, err)
			}
		}
		frame := buf[off : off+frameHeader+l]
		if crc32.Checksum(frame[8:], castagnoli) != binary.BigEndian.Uint32(frame[4:8]) {
			return nil, fmt.Errorf("spool %s: damaged frame at %d:%d", s.dir, from.seg, from.off+off)
		}
		off += frameHeader + l
		recs = append(recs, record{
			data: frame[frameHeader:],
			end:  pos{from.seg, from.off + off},
			size: frameHeader + l,
			ts:   int64(binary.BigEndian.Uint64(frame[8:16])),
		})
	}
	return recs, nil
}

// commit forgets delivered records and frees their room.
func (s *spool) commit(recs []meta) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	for _, r := range recs {
		if !s.hd.before(r.end) {
			continue // dropped by drop_oldest meanwhile
		}
		s.hd = r.end
		s.used -= r.size
		s.count--
		if r.rejected {
			s.meter.Dropped.Add(1)
			continue
		}
		s.meter.Entries.Add(1)
		s.meter.Bytes.Add(r.size - frameHeader)
	}
	s.normalizeHeadLocked()
	s.writeCursorLocked()
	s.updateGauges()
	close(s.freed)
	s.freed = make(chan struct{})
}

// updateGauges sets the spool depth and the time of its oldest record.
func (s *spool) updateGauges() {
	s.meter.SpoolDepth.Store(s.count)
	if s.count == 0 {
		s.meter.SpoolOldest.Store(0)
		return
	}
	var hdr [frameHeader]byte
	if _, err := s.segs[0].f.ReadAt(hdr[:], s.hd.off); err == nil {
		s.meter.SpoolOldest.Store(int64(binary.BigEndian.Uint64(hdr[8:16])))
	}
}

func (s *spool) writeCursorLocked() {
	var buf [cursorSize]byte
	binary.BigEndian.PutUint64(buf[:8], s.hd.seg)
	binary.BigEndian.PutUint64(buf[8:16], uint64(s.hd.off))
	binary.BigEndian.PutUint32(buf[16:], crc32.Checksum(buf[:16], castagnoli))
	if _, err := s.cursor.WriteAt(buf[:], 0); err != nil {
		s.meter.Errors.Add(1)
		s.log.Error("writing spool cursor", zap.String("spool", s.dir), zap.Error(err))
	}
	s.cursorDirty.Store(true)
}

// gc deletes segments that hold nothing undelivered any more.
func (s *spool) gc() {
	s.mu.Lock()
	lost := s.lost
	s.lost = nil
	s.mu.Unlock()
	for _, sg := range lost {
		sg.f.Close()
		if err := os.Remove(sg.f.Name()); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Error("removing delivered spool segment", zap.String("segment", sg.f.Name()), zap.Error(err))
		}
	}
}

// syncLoop fsyncs puts when the policy is an interval, and the cursor
// every second. It wakes only for those: with `fsync every`, once a
// second.
func (s *spool) syncLoop() {
	defer close(s.syncDone)
	cursorTick := time.NewTicker(time.Second)
	defer cursorTick.Stop()
	var fsyncTick *time.Ticker
	var fsyncC <-chan time.Time
	arm := func() {
		if fsyncTick != nil {
			fsyncTick.Stop()
		}
		fsyncTick, fsyncC = nil, nil
		if every := time.Duration(s.fsyncEvery.Load()); every > 0 {
			fsyncTick = time.NewTicker(every)
			fsyncC = fsyncTick.C
		}
	}
	arm()
	defer func() {
		if fsyncTick != nil {
			fsyncTick.Stop()
		}
	}()
	for {
		select {
		case <-s.stopSync:
			return
		case <-s.policy:
			arm()
		case <-fsyncC:
			if err := s.syncTo(s.written.Load()); err != nil {
				s.meter.Errors.Add(1)
				s.log.Error("syncing spool", zap.String("spool", s.dir), zap.Error(err))
			}
		case <-cursorTick.C:
			if s.cursorDirty.Swap(false) {
				if err := s.cursor.Sync(); err != nil {
					s.log.Error("syncing spool cursor", zap.String("spool", s.dir), zap.Error(err))
				}
			}
		}
	}
}

func (s *spool) head() pos {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hd
}

func (s *spool) depth() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}

// setPolicy applies options changed by a config reload.
func (s *spool) setPolicy(maxSize int64, onFull string, fsyncEvery time.Duration) {
	s.mu.Lock()
	s.maxSize, s.onFull = maxSize, onFull
	close(s.freed) // a blocked put re-checks against the new size
	s.freed = make(chan struct{})
	s.mu.Unlock()
	if s.fsyncEvery.Swap(int64(fsyncEvery)) != int64(fsyncEvery) {
		select {
		case s.policy <- struct{}{}:
		default: // a change is pending already; arm reads the newest
		}
	}
}

// close syncs and closes the spool's files; what is held stays for the
// next start.
func (s *spool) close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.freed)
	close(s.changed)
	s.mu.Unlock()
	close(s.stopSync)
	<-s.syncDone
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	var errs []error
	for _, sg := range s.segs {
		errs = append(errs, sg.f.Sync())
	}
	errs = append(errs, s.cursor.Sync())
	s.gc()
	s.closeFiles()
	return errors.Join(errs...)
}

func (s *spool) closeFiles() {
	for _, sg := range s.segs {
		sg.f.Close()
	}
	s.cursor.Close()
}
