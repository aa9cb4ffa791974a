#!/usr/bin/env bash
# Regenerates heartbeatpb from heartbeat.proto with the generators pinned in go.mod (go tool).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v protoc >/dev/null || { echo "genproto: protoc not found; install Debian's protobuf-compiler" >&2; exit 1; }
gogo=$(go list -m -f '{{.Dir}}' github.com/gogo/protobuf)
gogofaster=$(go tool -n protoc-gen-gogofaster)
gogrpc=$(go tool -n protoc-gen-go-grpc)
protoc \
  -I heartbeatpb -I "$gogo" -I "$gogo/protobuf" \
  --plugin=protoc-gen-gogofaster="$gogofaster" \
  --plugin=protoc-gen-go-grpc="$gogrpc" \
  --gogofaster_out=paths=source_relative,Mgoogle/protobuf/descriptor.proto=github.com/gogo/protobuf/protoc-gen-gogo/descriptor,Mgogoproto/gogo.proto=github.com/gogo/protobuf/gogoproto:heartbeatpb \
  --go-grpc_out=paths=source_relative,Mgoogle/protobuf/descriptor.proto=github.com/gogo/protobuf/protoc-gen-gogo/descriptor,Mgogoproto/gogo.proto=github.com/gogo/protobuf/gogoproto:heartbeatpb \
  heartbeatpb/heartbeat.proto
gofmt -w heartbeatpb/*.pb.go
