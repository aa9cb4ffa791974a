package ts

import "time"

// LogicalBits is how many low bits hold the logical counter.
const LogicalBits = 18

// MaxLogical is the largest logical counter value.
const MaxLogical = 1<<LogicalBits - 1

// Compose builds a ts from physical milliseconds since the Unix epoch and a logical counter.
func Compose(physicalMs int64, logical int64) uint64 {
	return uint64(physicalMs)<<LogicalBits | uint64(logical&MaxLogical)
}

// PhysicalMs returns the physical part of t in milliseconds since the Unix epoch.
func PhysicalMs(t uint64) int64 { return int64(t >> LogicalBits) }

// FromTime returns the ts of wall time w with logical counter 0.
func FromTime(w time.Time) uint64 { return Compose(w.UnixMilli(), 0) }

// ToTime returns the wall time of t's physical part.
func ToTime(t uint64) time.Time { return time.UnixMilli(PhysicalMs(t)) }

// Lag returns how far t is behind now; 0 when t is ahead of now.
func Lag(t uint64, now time.Time) time.Duration {
	d := now.Sub(ToTime(t))
	if d < 0 {
		return 0
	}
	return d
}
