package integration

// appAttacks are the attacks on the applog app's rules (routing, signatures, record bounds).
var appAttacks = []attack{}
