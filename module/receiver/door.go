package receiver

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-applog/caddy-applog/internal/lifecycle"
	"github.com/caddy-applog/caddy-applog/module/intake"
)

// A door is the process-wide state of one listening address across
// config reloads. Caddy starts the new config before stopping the old,
// and its listeners are pooled, so both configs briefly listen on the
// same socket. Connections belong to the door, not to a config: each
// submits to the intake of the newest config that listens there, and is
// closed only when no config listens there any more. Clients with
// long-lived connections (Python's SocketHandler, rsyslog forwarding over
// TCP) therefore lose nothing on reload.
type door struct {
	key     string
	current atomic.Pointer[intakeRef]
	logger  atomic.Pointer[zap.Logger] // of the config that released it last
	mu      sync.Mutex
	conns   map[net.Conn]*peer
	peers   map[string]*peer
	// refused throttles the log lines of connections refused because
	// the door is full, whoever their peer.
	refused logLimiter
	// served counts the connections' goroutines, so that the last
	// release can wait for them: a connection outlives the config that
	// accepted it, not the door.
	served sync.WaitGroup
	swept  time.Time // when idle peers were last swept
}

// A peer is one sender's share of a door: its connections, and the
// limiter of the warnings about them, shared by all of them so that a
// peer with many connections gets no more log lines than one with one.
type peer struct {
	key   string
	conns int
	lim   logLimiter
}

type intakeRef struct{ intake.Intake }

// doors holds the door of every address some loaded config listens on.
var doors = lifecycle.NewPool[*door]()

// Refusals of a new connection.
var (
	errDoorFull = errors.New("max_connections reached")
	errPeerFull = errors.New("max_connections_per_peer reached")
)

// releaseWait bounds how long the last release waits for connections to
// end once they are closed; a connection can only outlast it inside a
// Submit that does not return.
const releaseWait = 5 * time.Second

// acquireDoor returns the door of key, now feeding in.
func acquireDoor(key string, in intake.Intake) *door {
	d, _ := doors.Acquire(key, func() (*door, error) {
		return &door{key: key, conns: map[net.Conn]*peer{}, peers: map[string]*peer{}}, nil
	})
	d.current.Store(&intakeRef{in})
	return d
}

// release drops one config's use of the door; the last one deletes its
// key and, through Destruct, closes the connections still open and waits
// (at most releaseWait) for them to end.
func (d *door) release(logger *zap.Logger) {
	d.logger.Store(logger)
	_ = doors.Release(d.key)
}

// Destruct closes the connections still open and waits (at most
// releaseWait) for them to end: no config listens on the door's address
// any more, or Caddy is exiting.
func (d *door) Destruct() error {
	d.mu.Lock()
	for c := range d.conns {
		_ = c.Close()
	}
	d.mu.Unlock()
	done := make(chan struct{})
	go func() { d.served.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(releaseWait):
		logger := d.logger.Load()
		if logger == nil {
			logger = zap.NewNop()
		}
		logger.Warn("connections still being served after their listener stopped",
			zap.String("receiver", d.key), zap.Duration("waited", releaseWait))
	}
	return nil
}

func (d *door) intake() intake.Intake { return d.current.Load().Intake }

// add registers a connection from the peer key, unless max are open
// already or perPeer from that peer. An empty key counts against max
// only, until rekey names the peer (a trusted proxy's connection, whose
// client is known once its PROXY header is read). A registered
// connection counts as served until done.
func (d *door) add(c net.Conn, key string, max, perPeer int) (*peer, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.conns) >= max {
		return nil, errDoorFull
	}
	p, err := d.join(key, perPeer)
	if err != nil {
		return p, err
	}
	d.conns[c] = p
	d.served.Add(1)
	return p, nil
}

// join counts one more connection of the peer key, unless it has
// perPeer already. The caller holds d.mu.
func (d *door) join(key string, perPeer int) (*peer, error) {
	if key == "" {
		return nil, nil
	}
	p := d.peers[key]
	if p == nil {
		p = &peer{key: key}
		d.peers[key] = p
	}
	if p.conns >= perPeer {
		return p, errPeerFull
	}
	p.conns++
	return p, nil
}

// leave counts one connection of p less. The caller holds d.mu.
//
// A peer without connections is forgotten, unless it was warned about
// within the last interval: a client that connects, sends garbage and
// reconnects must find its limiter again. Such peers are swept once the
// map holds maxIdlePeers more than those with connections.
func (d *door) leave(p *peer) {
	if p == nil {
		return
	}
	if p.conns--; p.conns > 0 {
		return
	}
	if !p.lim.recent() {
		delete(d.peers, p.key)
	}
	if len(d.peers) > len(d.conns)+maxIdlePeers && time.Since(d.swept) >= logInterval {
		d.swept = time.Now()
		for k, q := range d.peers {
			if q.conns == 0 && !q.lim.recent() {
				delete(d.peers, k)
			}
		}
	}
}

// maxIdlePeers is how many peers without connections a door keeps before
// sweeping them.
const maxIdlePeers = 1024

// rekey counts c, added with an empty key, against the peer key.
func (d *door) rekey(c net.Conn, key string, perPeer int) (*peer, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p, err := d.join(key, perPeer)
	if err != nil {
		return p, err
	}
	if _, ok := d.conns[c]; ok {
		d.conns[c] = p
	}
	return p, nil
}

// done unregisters a connection added by add.
func (d *door) done(c net.Conn) {
	d.mu.Lock()
	p, ok := d.conns[c]
	delete(d.conns, c)
	if ok {
		d.leave(p)
	}
	d.mu.Unlock()
	if ok {
		d.served.Done()
	}
}
