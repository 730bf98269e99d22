package receiver

import (
	"time"

	"github.com/caddy-applog/caddy-applog/module/intake"
	"github.com/caddy-applog/caddy-applog/module/status"
)

// oneRecord is the batch a read loop submits each message in. Submit
// works synchronously and keeps no reference to the batch, its records'
// attributes or their strings once it has returned, so each loop reuses
// one, with room for a syslog record's attributes: with the message
// decoded in place as well, the receiver allocates nothing per message.
type oneRecord struct {
	batch intake.Batch
	recs  [1]intake.Record
	attrs [8]intake.Attr
}

// handle decodes and submits one message; a bad one is logged (at most
// once a second per connection) and counted, and the next one is read.
func (s *Server) handle(msg []byte, now time.Time, peer string, d *door, source string, lim *logLimiter, one *oneRecord) {
	rec, err := s.proto.Decode(msg, now, one.attrs[:0])
	if err != nil {
		status.Source(source).Rejected.Add(1)
		lim.warn(s.logger, "rejected message", source, peer, err)
		return
	}
	rec.Host = peer
	if s.App != "" {
		rec.App = s.App
	}
	one.recs[0] = rec
	one.batch = intake.Batch{Records: one.recs[:], Source: source, Peer: peer, Received: now}
	_, err = d.intake().Submit(s.submitCtx, &one.batch)
	// Keep no message alive until the next one.
	one.recs[0] = intake.Record{}
	clear(one.attrs[:])
	if err != nil {
		lim.warn(s.logger, "rejected record", source, peer, err)
	}
}
