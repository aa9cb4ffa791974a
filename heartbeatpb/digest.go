package heartbeatpb

// DigestEntry is one dispatcher's share of a SetDigest: a 64-bit mix of its ID and state. A set's
// hash is the XOR of its entries, so either side can add or drop one entry at a time and the
// order of the set does not matter; the count catches what XOR alone would not (an even number
// of identical entries cannot occur, IDs being unique in a set).
func DigestEntry(id DispatcherID, state ComponentState) uint64 {
	h := mix64(id.Hi ^ 0x9e3779b97f4a7c15)
	h = mix64(h ^ id.Lo)
	return mix64(h ^ uint64(state))
}

// mix64 is the splitmix64 finaliser: every input bit moves about half the output bits.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
