package testdaemon

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMain makes the test binary a stand-in daemon when asked: it
// prints a line, then listens on $TESTDAEMON_LISTEN (after a delay, so
// that Start has to wait) until killed, or exits at once with status 3.
func TestMain(m *testing.M) {
	switch mode := os.Getenv("TESTDAEMON_MODE"); mode {
	case "listen":
		os.Stdout.WriteString("stand-in up\n")
		time.Sleep(200 * time.Millisecond)
		l, err := net.Listen("tcp", "127.0.0.1:"+os.Getenv("TESTDAEMON_LISTEN"))
		if err != nil {
			os.Exit(2)
		}
		for {
			c, err := l.Accept()
			if err != nil {
				os.Exit(2)
			}
			c.Close()
		}
	case "exit":
		os.Stderr.WriteString("bad config\n")
		os.Exit(3)
	}
	os.Exit(m.Run())
}

func standIn(mode string, port int) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "TESTDAEMON_MODE="+mode, "TESTDAEMON_LISTEN="+strconv.Itoa(port))
	return cmd
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestStartWaitsAndStops(t *testing.T) {
	port := freePort(t)
	d, err := Start(context.Background(), "stand-in", standIn("listen", port), port)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatalf("Start returned before the port accepted: %v", err)
	}
	c.Close()
	if !strings.Contains(d.Output(), "stand-in up") {
		t.Errorf("output %q lacks the daemon's line", d.Output())
	}
	d.Stop()
	select {
	case <-d.Done():
	default:
		t.Fatal("Stop returned before the process ended")
	}
	d.Stop() // a second Stop does nothing
	if _, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second); err == nil {
		t.Error("the port still accepts after Stop")
	}
}

func TestStartReportsExit(t *testing.T) {
	port := freePort(t)
	_, err := Start(context.Background(), "stand-in", standIn("exit", port), port)
	if err == nil || !strings.Contains(err.Error(), "exited during start-up") || !strings.Contains(err.Error(), "bad config") {
		t.Fatalf("err = %v, want the exit and the daemon's output", err)
	}
}

func TestStartBounded(t *testing.T) {
	port := freePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	// The stand-in listens on another port than the one awaited.
	d, err := Start(ctx, "stand-in", standIn("listen", freePort(t)), port)
	if err == nil {
		d.Stop()
		t.Fatal("Start returned a daemon that never listened on its port")
	}
	if !strings.Contains(err.Error(), "did not listen on port") {
		t.Fatalf("err = %v", err)
	}
}
