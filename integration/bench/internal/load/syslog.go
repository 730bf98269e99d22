// Package load generates the load of the benchmark suite: octet-counted
// RFC 5424 syslog over TCP, NDJSON batches and single-record form posts
// over HTTP. Every message carries a sequence number ("seq=N") so that
// a Verifier can tell, from the file a daemon wrote, that each one
// arrived exactly once.
package load

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// SyslogSpec describes a syslog load: Total messages of Size bytes each
// (the RFC 5424 message, without its octet count), spread over Conns TCP
// connections to Addr.
type SyslogSpec struct {
	Addr  string
	Total int
	Conns int
	Size  int
	// Programs, if set, are the APP-NAMEs of the messages in turn:
	// message seq names Programs[seq%len(Programs)], so each connection
	// sends a mix of them (the receiver reads "app.facility" from it).
	// Default: "benchapp" for every message.
	Programs []string
}

// SyslogResult is what the sender saw.
type SyslogResult struct {
	Sent    int           // messages written to the sockets
	Bytes   int64         // bytes written, framing included
	Elapsed time.Duration // until the last connection was closed
}

// seqDigits is the width of the zero-padded sequence number in syslog
// messages, so every message of a run has the same size.
const seqDigits = 10

// syslogHeader is an RFC 5424 header as an application's syslog library
// writes it: facility local0, severity info, APP-NAME "benchapp" (the
// applog app of the records), no structured data.
const syslogHeader = "<134>1 2026-11-21T10:00:00.123456Z benchhost benchapp 4242 - - "

// SyslogMessage returns message seq of a load with messages of size
// bytes: the header, "bench seq=<seq> ", and padding.
func SyslogMessage(seq, size int) []byte { return SyslogMessageFrom("benchapp", seq, size) }

// SyslogMessageFrom is SyslogMessage with another APP-NAME.
func SyslogMessageFrom(program string, seq, size int) []byte {
	b := make([]byte, 0, size)
	b = append(b, header(program)...)
	b = append(b, "bench seq="...)
	b = appendSeq(b, seq)
	b = append(b, " payload "...)
	for i := 0; len(b) < size; i++ {
		b = append(b, "abcdefghijklmnopqrstuvwxyz0123456789"[i%36])
	}
	return b
}

func header(program string) string {
	return strings.Replace(syslogHeader, " benchapp ", " "+program+" ", 1)
}

// MinSyslogSize is the smallest message size SyslogMessage can honour.
var MinSyslogSize = len(syslogHeader) + len("bench seq= payload ") + seqDigits

func appendSeq(b []byte, seq int) []byte {
	s := strconv.Itoa(seq)
	for range seqDigits - len(s) {
		b = append(b, '0')
	}
	return append(b, s...)
}

// SendSyslog sends spec's messages as fast as the receiver takes them,
// octet-counted (RFC 6587 3.4.1), connection c sending a contiguous
// range of sequence numbers. It returns when every connection has been
// written and closed, or ctx ends.
func SendSyslog(ctx context.Context, spec SyslogSpec) (SyslogResult, error) {
	if spec.Conns < 1 || spec.Total < spec.Conns {
		return SyslogResult{}, fmt.Errorf("syslog load: need 1 <= conns (%d) <= total (%d)", spec.Conns, spec.Total)
	}
	if len(spec.Programs) == 0 {
		spec.Programs = []string{"benchapp"}
	}
	for _, p := range spec.Programs {
		if need := MinSyslogSize - len("benchapp") + len(p); spec.Size < need {
			return SyslogResult{}, fmt.Errorf("syslog load: message size %d is below the minimum of %d (APP-NAME %q)", spec.Size, need, p)
		}
		if p == "" || strings.ContainsAny(p, " \t\n") {
			return SyslogResult{}, fmt.Errorf("syslog load: APP-NAME %q: want a word without spaces", p)
		}
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		res   SyslogResult
		first error
	)
	start := time.Now()
	per := spec.Total / spec.Conns
	for c := range spec.Conns {
		from, to := c*per, (c+1)*per
		if c == spec.Conns-1 {
			to = spec.Total
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sent, n, err := sendRange(ctx, spec, from, to)
			mu.Lock()
			defer mu.Unlock()
			res.Sent += sent
			res.Bytes += n
			if err != nil && first == nil {
				first = err
			}
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	return res, first
}

// sendRange writes messages [from, to) on one connection.
func sendRange(ctx context.Context, spec SyslogSpec, from, to int) (sent int, written int64, err error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", spec.Addr)
	if err != nil {
		return 0, 0, fmt.Errorf("syslog load: %w", err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetWriteDeadline(time.Now()) })
	defer stop()

	// One frame per program, rewritten in place: only the sequence
	// number changes.
	type frame struct {
		b     []byte
		seqAt int
	}
	frames := make([]frame, len(spec.Programs))
	for i, p := range spec.Programs {
		msg := SyslogMessageFrom(p, from, spec.Size)
		b := append(strconv.AppendInt(nil, int64(len(msg)), 10), ' ')
		frames[i] = frame{b: append(b, msg...), seqAt: len(b) + len(header(p)) + len("bench seq=")}
	}
	w := bufio.NewWriterSize(conn, 64<<10)
	for seq := from; seq < to; seq++ {
		f := &frames[seq%len(frames)]
		appendSeq(f.b[:f.seqAt], seq)
		if _, err := w.Write(f.b); err != nil {
			return sent, written, fmt.Errorf("syslog load: after %d messages: %w", sent, err)
		}
		sent++
		written += int64(len(f.b))
	}
	if err := w.Flush(); err != nil {
		return sent, written, fmt.Errorf("syslog load: flushing: %w", err)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	return sent, written, nil
}
