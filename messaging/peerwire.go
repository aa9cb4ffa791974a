package messaging

import (
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/metadata"
)

// PeerCodec is the codec every stream between nodes is forced to. It is exported for tools that
// must speak the wire exactly as a node does (tests/wireclient, which plays a hostile peer).
func PeerCodec() encoding.Codec { return gogoCodec{} }

// PeerMetadata is the stream metadata a node sends when it dials: its cluster, its own node ID
// (from) and the node it wants (to). The acceptor checks it (checkInbound).
func PeerMetadata(cluster, from, to string) metadata.MD {
	return metadata.Pairs(mdCluster, cluster, mdFrom, from, mdTo, to)
}

// PeerNodeHeader is the response header key in which an acceptor names itself.
const PeerNodeHeader = mdNode
