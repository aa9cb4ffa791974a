// Package ts handles TSO-style timestamps: physical milliseconds shifted left by 18 bits plus a
// logical counter. Checkpoints, start points and the ts ranges dispatchers process are all ts
// values. Pure functions; callers pass the time in.
package ts
