package receiver

import (
	"net"
	"sync"
	"sync/atomic"

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
	mu      sync.Mutex
	refs    int
	conns   map[net.Conn]struct{}
}

type intakeRef struct{ intake.Intake }

var (
	doorsMu sync.Mutex
	doors   = map[string]*door{}
)

// acquireDoor returns the door of key, now feeding in.
func acquireDoor(key string, in intake.Intake) *door {
	doorsMu.Lock()
	defer doorsMu.Unlock()
	d := doors[key]
	if d == nil {
		d = &door{key: key, conns: map[net.Conn]struct{}{}}
		doors[key] = d
	}
	d.refs++
	d.current.Store(&intakeRef{in})
	return d
}

// release drops one config's use of the door; the last one closes the
// connections still open.
func (d *door) release() {
	doorsMu.Lock()
	d.refs--
	last := d.refs == 0
	if last {
		delete(doors, d.key)
	}
	doorsMu.Unlock()
	if !last {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for c := range d.conns {
		_ = c.Close()
	}
}

func (d *door) intake() intake.Intake { return d.current.Load().Intake }

// add registers a connection, unless max are open already.
func (d *door) add(c net.Conn, max int) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.conns) >= max {
		return false
	}
	d.conns[c] = struct{}{}
	return true
}

func (d *door) remove(c net.Conn) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.conns, c)
}
