// Package span owns key-range arithmetic for tidemark: how a table's key range is encoded, how
// spans compare, overlap and touch, how a span is cut into pieces by key, whether a set of
// spans covers a table exactly once, and how people write spans and tables: a span Name
// ("TABLE" or "TABLE:STARTHEX-ENDHEX", ParseName and FormatName) and a table list element
// ("N" or "LO-HI", ParseTableRange), read the same by the CLI, the server and etcdutil.
//
// A table with ID n owns [t<n>, t<n+1>) where t<n> is the byte 't' followed by n as 8 big-endian
// bytes, so byte order equals table order. A span is a sub-range [start, end) of one table.
//
// Everything here is pure: no I/O, no clock, no goroutines.
package span
