// Package api holds the JSON bodies of the nodes' HTTP status API (/api/v1/...) that more than
// one side reads or writes: the server encodes them, tidemark ctl and the test clients decode
// them, and the maintainer core answers its listings in them. Data only: no I/O, no logic.
package api
