package integration

// syslogAttacks are the attacks on the syslog receiver's framing and parsing.
var syslogAttacks = []attack{}
