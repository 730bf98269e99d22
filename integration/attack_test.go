package integration

import "testing"

// The adversarial suite: what an anonymous sender can try against each
// door of the built binary, and what the door must do about it. Each
// door's attacks are listed in its own file (attack_<door>_test.go) as a
// table a reader can scan: the attack, the outcome, and the test that
// performs it. Every attack is bounded in time and uses loopback only.

// attack is one row of the suite.
type attack struct {
	// Name says what the attacker does.
	Name string
	// Outcome says what the door must do.
	Outcome string
	// Run performs the attack against a Caddy it starts itself and
	// fails the test unless the outcome holds.
	Run func(t *testing.T)
}

// attackTables are the tables of every door, in the data flow's order.
func attackTables() map[string][]attack {
	return map[string][]attack{
		"http":     httpAttacks,
		"app":      appAttacks,
		"syslog":   syslogAttacks,
		"receiver": receiverAttacks,
		"encoder":  encoderAttacks,
	}
}

// TestAttacks runs the adversarial suite: `go test ./integration -run
// TestAttacks/http` runs one door's attacks, `-run TestAttacks/http/slow`
// one attack.
func TestAttacks(t *testing.T) {
	for door, table := range attackTables() {
		t.Run(door, func(t *testing.T) {
			for _, a := range table {
				t.Run(a.Name, func(t *testing.T) {
					t.Logf("outcome: %s", a.Outcome)
					a.Run(t)
				})
			}
		})
	}
}
