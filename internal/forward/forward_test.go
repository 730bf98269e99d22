package forward_test

import (
	"testing"

	"github.com/caddy-applog/caddy-applog/internal/forward/forwardtest"
)

// TestForward runs the conformance suite against the in-process fake
// peer.
func TestForward(t *testing.T) {
	forwardtest.Run(t, func(*testing.T) forwardtest.Peer { return forwardtest.NewFake() })
}
