package heartbeatpb

// The orders below are the ones every sorted listing, report and restore uses, so two peers
// (and two runs of one seed) list dispatchers and operators alike.

// Less orders dispatcher IDs by Hi, then Lo.
func (id DispatcherID) Less(o DispatcherID) bool {
	if id.Hi != o.Hi {
		return id.Hi < o.Hi
	}
	return id.Lo < o.Lo
}

// Less orders operator IDs by the epoch that issued them, then by their sequence in it: the
// order in which one maintainer after another started them.
func (id OperatorID) Less(o OperatorID) bool {
	if id.Epoch != o.Epoch {
		return id.Epoch < o.Epoch
	}
	return id.Seq < o.Seq
}
