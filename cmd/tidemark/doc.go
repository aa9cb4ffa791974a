// Command tidemark is the one tidemark binary: a node (`server`), a local demo cluster
// (`playground`), the admin client (`ctl`) and the certificates of a TLS cluster (`certs`, on
// package pki).
//
// Exit codes: 0 success, 1 an error while running, 2 a usage error (unknown subcommand, bad flag,
// bad flag value). Every error names what was wrong and what to do about it.
package main
