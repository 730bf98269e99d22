package integration

// httpAttacks are the attacks on the log_ingest handler.
var httpAttacks = []attack{}
