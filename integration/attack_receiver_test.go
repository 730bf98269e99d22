package integration

// receiverAttacks are the attacks on the network receivers' connections.
var receiverAttacks = []attack{}
