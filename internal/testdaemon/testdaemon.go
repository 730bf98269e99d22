// Package testdaemon runs the syslog daemons that tests and the
// benchmark driver use as real peers (rsyslogd, syslog-ng), and any
// other server process they start: in the foreground, on loopback
// ports, ready once every port accepts a connection, and stopped by
// whoever started it, which waits for the process to end.
//
// It is not test code, so that integration/bench/benchrun can use it;
// test helpers wrap it with t.Cleanup.
package testdaemon

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// StartTimeout bounds how long Start waits for a daemon to listen.
const StartTimeout = 30 * time.Second

// stopGrace is how long Stop waits after SIGTERM before SIGKILL.
const stopGrace = 15 * time.Second

// Daemon is a running server process.
type Daemon struct {
	Name string
	cmd  *exec.Cmd
	out  Buffer
	done chan struct{} // closed once cmd.Wait returned

	stopOnce sync.Once
}

// Start runs cmd, its output collected for Output, and waits (bounded
// by ctx and StartTimeout) until every TCP port in ports accepts a
// connection on 127.0.0.1. The daemon runs in its own process group,
// so that Stop ends whatever it started too, and is killed if the
// process that started it dies. A daemon that exits or does not listen
// in time is stopped and reported with its output.
func Start(ctx context.Context, name string, cmd *exec.Cmd, ports ...int) (*Daemon, error) {
	d := &Daemon{Name: name, cmd: cmd, out: Buffer{Limit: 1 << 20}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = &d.out, &d.out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	// Owned by d: Stop waits for it through done.
	go func() { _ = cmd.Wait(); close(d.done) }()
	ctx, cancel := context.WithTimeout(ctx, StartTimeout)
	defer cancel()
	for _, port := range ports {
		if err := d.waitListen(ctx, port); err != nil {
			d.Stop()
			return nil, err
		}
	}
	return d, nil
}

// waitListen polls port until it accepts, the daemon exits or ctx ends.
func (d *Daemon) waitListen(ctx context.Context, port int) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-d.done:
			return fmt.Errorf("%s exited during start-up:\n%s", d.Name, d.out.String())
		case <-ctx.Done():
			return fmt.Errorf("%s did not listen on port %d: %w:\n%s", d.Name, port, ctx.Err(), d.out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Pid is the daemon's process id.
func (d *Daemon) Pid() int { return d.cmd.Process.Pid }

// Done is closed once the daemon's process has ended.
func (d *Daemon) Done() <-chan struct{} { return d.done }

// Output is what the daemon wrote to stdout and stderr (its first MiB).
func (d *Daemon) Output() string { return d.out.String() }

// Stop ends the daemon gracefully: SIGTERM to its process group (a
// daemon's workers too: they would hold its output pipes open), then
// SIGKILL after 15s; it returns once the process has ended. Calling it
// again does nothing.
func (d *Daemon) Stop() {
	d.stopOnce.Do(func() {
		signalGroup(d.Pid(), syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(stopGrace):
			signalGroup(d.Pid(), syscall.SIGKILL)
			<-d.done
		}
	})
}

// Kill ends the daemon and its process group at once (SIGKILL), as a
// crash would, and returns once the process has ended.
func (d *Daemon) Kill() {
	signalGroup(d.Pid(), syscall.SIGKILL)
	<-d.done
}

// Buffer is a bytes.Buffer safe for a child's stdout and stderr at once.
type Buffer struct {
	// Limit, if not 0, is how many bytes to keep: the start-up output,
	// not a flood.
	Limit int

	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Limit > 0 && s.b.Len() > s.Limit {
		return len(p), nil
	}
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
