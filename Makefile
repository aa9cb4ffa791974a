# tidemark build, test and tooling targets. `make help` lists them.

SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -ec

GO ?= go
# VERSION is stamped into the binary (`tidemark version`); git describe when there is a checkout.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
# Directories whose failpoint markers `make failpoint-enable` rewrites. Empty until packages add
# failpoints; listing them here keeps failpoint-ctl away from the rest of the tree.
FAILPOINT_PKGS ?=
# Output file of `make bench`.
BENCH_REPORT ?= bench.out
# Seeds for `make sim`.
SEEDS ?= 100
# Extra flags for `make run`, e.g. make run ARGS='--nodes 5 --tables 200'.
ARGS ?=

.PHONY: help build run test bench proto proto-check lint failpoint-enable failpoint-disable build-failpoint sim clean

help:
	@echo "build             bin/tidemark (version $(VERSION))"
	@echo "run               build, then bin/tidemark playground \$$ARGS"
	@echo "test              go test -race over every package"
	@echo "bench             benchmarks of every package that has some, also written to $(BENCH_REPORT)"
	@echo "proto             regenerate heartbeatpb from heartbeat.proto"
	@echo "proto-check       fail if heartbeatpb differs from what make proto generates"
	@echo "lint              gofmt and go vet"
	@echo "failpoint-enable  rewrite failpoint markers in FAILPOINT_PKGS ($(if $(strip $(FAILPOINT_PKGS)),$(FAILPOINT_PKGS),none yet))"
	@echo "failpoint-disable restore them"
	@echo "build-failpoint   bin/tidemark-failpoint with failpoints compiled in"
	@echo "sim               deterministic simulation over SEEDS=$(SEEDS) seeds"

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/tidemark ./cmd/tidemark

run: build
	bin/tidemark playground $(ARGS)

test:
	$(GO) test -race -count=1 -timeout 15m ./...

bench:
	@pkgs=$$(grep -rl --include='*_test.go' '^func Benchmark' . | xargs -r -n1 dirname | sort -u); \
	if [ -z "$$pkgs" ]; then echo "bench: no package has benchmarks yet"; exit 0; fi; \
	echo "bench: $$pkgs" | tr '\n' ' '; echo; \
	$(GO) test -run '^$$' -bench . -benchmem $$pkgs | tee $(BENCH_REPORT); \
	echo "bench: report written to $(BENCH_REPORT)"

proto:
	scripts/genproto.sh

# A generated file that git does not track yet counts as a difference too.
proto-check: proto
	@if ! git diff --exit-code --stat -- heartbeatpb || [ -n "$$(git status --porcelain -- 'heartbeatpb/*.pb.go')" ]; then \
		echo "proto-check: heartbeatpb does not match heartbeat.proto; run 'make proto' and commit the result" >&2; \
		exit 1; \
	fi

lint:
	@files=$$(gofmt -l $$(find . -name '*.go' -not -path './.git/*')); \
	if [ -n "$$files" ]; then echo "lint: run gofmt -w on:" >&2; echo "$$files" >&2; exit 1; fi
	$(GO) vet ./...

# An empty FAILPOINT_PKGS must not reach failpoint-ctl: it would rewrite the whole tree.
failpoint-enable:
	@if [ -z "$(strip $(FAILPOINT_PKGS))" ]; then echo "failpoint-enable: FAILPOINT_PKGS is empty, nothing to do"; \
	else $(GO) tool failpoint-ctl enable $(FAILPOINT_PKGS); fi

failpoint-disable:
	@if [ -z "$(strip $(FAILPOINT_PKGS))" ]; then echo "failpoint-disable: FAILPOINT_PKGS is empty, nothing to do"; \
	else $(GO) tool failpoint-ctl disable $(FAILPOINT_PKGS); fi

# The EXIT trap restores the sources whether the build succeeds, fails or is interrupted, so a
# failed build never leaves rewritten files behind for the next commit.
build-failpoint:
	@trap '$(MAKE) --no-print-directory failpoint-disable' EXIT; \
	$(MAKE) --no-print-directory failpoint-enable; \
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/tidemark-failpoint ./cmd/tidemark

sim:
	@if [ ! -d tests/sim ]; then echo "sim: tests/sim does not exist yet" >&2; exit 1; fi
	$(GO) test ./tests/sim -args -seeds=$(SEEDS)

clean:
	rm -rf bin $(BENCH_REPORT)
