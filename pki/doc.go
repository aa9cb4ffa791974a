// Package pki owns how a tidemark certificate names its holder, and makes the certificates of a
// cluster.
//
// Identity: a node's certificate carries exactly one URI SAN of the form
//
//	tidemark://<cluster-id>/node/<node-id>
//
// and a certificate for a client that is not a node (ctl) carries tidemark://<cluster-id>/client/<name>.
// The cluster ID is part of the name so that a certificate issued for another cluster by the same
// CA cannot speak for a node here. NodeID reads the node ID out of a verified certificate; the
// transport (messaging) compares it with the node ID a peer claims, and the server checks at start
// that its own certificate names its own node ID. Host names and IPs stay in the usual DNS and IP
// SANs, so ordinary TLS host verification still works beside the identity check.
//
// Issuing: NewCA, (*CA).IssueNode and (*CA).IssueClient make ECDSA P-256 certificates with the
// standard library only; WriteCluster writes a CA and one certificate per node (and per client) as
// PEM files into a directory, refusing to overwrite unless asked. `tidemark certs` and the
// playground's --tls use it, and so do the tests that start TLS nodes.
//
// In: cluster and node IDs, host names, a validity period. Out: PEM files, *x509.Certificate
// values, node IDs, errors prefixed "pki:".
package pki
