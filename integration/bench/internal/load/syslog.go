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
func SyslogMessage(seq, size int) []byte {
	b := make([]byte, 0, size)
	b = append(b, syslogHeader...)
	b = append(b, "bench seq="...)
	b = appendSeq(b, seq)
	b = append(b, " payload "...)
	for i := 0; len(b) < size; i++ {
		b = append(b, "abcdefghijklmnopqrstuvwxyz0123456789"[i%36])
	}
	return b
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
	if spec.Size < MinSyslogSize {
		return SyslogResult{}, fmt.Errorf("syslog load: message size %d is below the minimum of %d", spec.Size, MinSyslogSize)
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

	// One frame, rewritten in place: only the sequence number changes.
	msg := SyslogMessage(from, spec.Size)
	frame := append(strconv.AppendInt(nil, int64(len(msg)), 10), ' ')
	seqAt := len(frame) + len(syslogHeader) + len("bench seq=")
	frame = append(frame, msg...)
	w := bufio.NewWriterSize(conn, 64<<10)
	for seq := from; seq < to; seq++ {
		appendSeq(frame[:seqAt], seq)
		if _, err := w.Write(frame); err != nil {
			return sent, written, fmt.Errorf("syslog load: after %d messages: %w", sent, err)
		}
		sent++
		written += int64(len(frame))
	}
	if err := w.Flush(); err != nil {
		return sent, written, fmt.Errorf("syslog load: flushing: %w", err)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	return sent, written, nil
}
