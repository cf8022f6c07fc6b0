package memlink

// QueueOfPacket is queueOf, for tests.
var QueueOfPacket = queueOf
