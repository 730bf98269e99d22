package integration

// encoderAttacks are the attacks on the encoders and the status page.
var encoderAttacks = []attack{}
