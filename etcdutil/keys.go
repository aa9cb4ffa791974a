package etcdutil

import (
	"fmt"
	"regexp"
)

// rootPrefix is the top of tidemark's key space; every cluster lives below it.
const rootPrefix = "/tidemark/"

// idPattern is the shape shared by cluster, node and changefeed IDs. IDs become path segments of
// etcd keys, so '/' and leading punctuation are excluded to keep prefixes unambiguous.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// ValidateID checks that id is usable as a key segment; kind names the ID in the error
// ("cluster", "node", "changefeed").
func ValidateID(kind, id string) error {
	if id == "" {
		return fmt.Errorf("etcdutil: %s id is empty", kind)
	}
	if !idPattern.MatchString(id) {
		return fmt.Errorf("etcdutil: invalid %s id %q: want 1-128 characters of [A-Za-z0-9_.-] starting with a letter or digit", kind, id)
	}
	return nil
}

// Keys builds every etcd key of one cluster. The methods only format strings; functions that take
// a Keys validate the cluster ID (Validate) and the IDs they are given before touching etcd.
type Keys struct{ Cluster string }

// Validate checks the cluster ID.
func (k Keys) Validate() error { return ValidateID("cluster", k.Cluster) }

// Root is /tidemark/<cluster>/; everything of the cluster is under it.
func (k Keys) Root() string { return rootPrefix + k.Cluster + "/" }

// NodesPrefix is the prefix of the node registry.
func (k Keys) NodesPrefix() string { return k.Root() + "nodes/" }

// Node is the leased registry key of one node; its value is NodeInfo JSON.
func (k Keys) Node(id string) string { return k.NodesPrefix() + id }

// ChangefeedsPrefix is the prefix of every changefeed's info, status and checkpoint keys.
func (k Keys) ChangefeedsPrefix() string { return k.Root() + "changefeeds/" }

// ChangefeedInfo is the key of a changefeed's definition (ChangefeedInfo JSON).
func (k Keys) ChangefeedInfo(cf string) string { return k.ChangefeedsPrefix() + cf + "/info" }

// ChangefeedStatus is the key of the maintainer's published status (ChangefeedStatus JSON).
func (k Keys) ChangefeedStatus(cf string) string { return k.ChangefeedsPrefix() + cf + "/status" }

// Checkpoint is the key of the persisted changefeed checkpoint ({"checkpoint_ts":N,...}).
func (k Keys) Checkpoint(cf string) string { return k.ChangefeedsPrefix() + cf + "/checkpoint" }

// ElectionPrefix is the election prefix of one changefeed, without a trailing slash (the
// concurrency package appends "/<lease hex>" for each candidate).
func (k Keys) ElectionPrefix(cf string) string { return k.Root() + "election/" + cf }

// AdminRequest is the key of one queued admin request (planned for the ops tooling).
func (k Keys) AdminRequest(id string) string { return k.Root() + "admin/requests/" + id }

// AdminResult is the key of one admin request's result (planned for the ops tooling).
func (k Keys) AdminResult(id string) string { return k.Root() + "admin/results/" + id }

// electionKeys is the prefix under which the candidates' keys of cf live.
func (k Keys) electionKeys(cf string) string { return k.ElectionPrefix(cf) + "/" }

// checkIDs validates the cluster and then each (kind, id) pair given.
func (k Keys) checkIDs(pairs ...string) error {
	if err := k.Validate(); err != nil {
		return err
	}
	for i := 0; i+1 < len(pairs); i += 2 {
		if err := ValidateID(pairs[i], pairs[i+1]); err != nil {
			return err
		}
	}
	return nil
}
