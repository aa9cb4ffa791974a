# tidemark build, test and tooling targets. `make help` lists them.

SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -ec

GO ?= go
# VERSION is stamped into the binary (`tidemark version`); git describe when there is a checkout.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
# Directories whose failpoint markers the failpoint targets rewrite (docs/failpoints.md lists
# the markers); listing them keeps failpoint-ctl away from the rest of the tree.
# tests/failover builds with the same list (failpointPkgs in tests/failover/harness.go).
FAILPOINT_PKGS ?= failpoints server maintainer dispatcher dispatchermanager messaging
# `make failover-test`: FAILOVER_RUN picks scenarios by name (default all), FAILOVER_RUNS repeats
# each, FAILOVER_DURATION is the long mode (random chaos for that long, e.g. 30m).
FAILOVER_RUN ?=
FAILOVER_RUNS ?= 1
FAILOVER_DURATION ?=
# Output file of `make bench`.
BENCH_REPORT ?= bench.out
# The system harness (tests/bench): span counts, one fresh 3-node cluster each, and its JSON.
BENCH_SIZES ?= 10000,100000,1000000
BENCH_JSON ?= bench.json
# The data-plane scenario of the harness: source events per replication phase (file sink, etcd
# mirror, etcdctl make-mirror), and its JSON.
BENCH_CDC_EVENTS ?= 1000000
BENCH_CDC_JSON ?= bench-cdc.json
# The etcd dispatcher at scale: numbered source tables (one span and one watch each), and its JSON.
BENCH_CDC_SCALE_TABLES ?= 100000
BENCH_CDC_SCALE_JSON ?= bench-cdcscale.json
# Seeds for `make sim`.
SEEDS ?= 100
# Extra flags for `make run`, e.g. make run ARGS='--nodes 5 --load-rate 1000' or ARGS='--dispatcher sim --tables 200'.
ARGS ?=

.PHONY: sim-fresh-seed help build run test test-scale bench bench-tools bench-micro proto proto-check lint failpoint-enable failpoint-disable build-failpoint failover-test sim clean

help:
	@echo "build             bin/tidemark (version $(VERSION))"
	@echo "run               build, then bin/tidemark playground \$$ARGS"
	@echo "test              go test -race over every package, then test-scale"
	@echo "test-scale        the million-span checks that skip themselves under -race, without it"
	@echo "bench             the whole system on real processes at BENCH_SIZES spans (table, $(BENCH_JSON)), the data plane at BENCH_CDC_EVENTS ($(BENCH_CDC_JSON)), then bench-micro"
	@echo "bench-micro       benchmarks of every package that has some, also written to $(BENCH_REPORT)"
	@echo "proto             regenerate heartbeatpb from heartbeat.proto"
	@echo "proto-check       fail if heartbeatpb differs from what make proto generates"
	@echo "lint              gofmt and go vet"
	@echo "failpoint-enable  rewrite failpoint markers in FAILPOINT_PKGS ($(if $(strip $(FAILPOINT_PKGS)),$(FAILPOINT_PKGS),none yet))"
	@echo "failpoint-disable restore them"
	@echo "build-failpoint   bin/tidemark-failpoint with failpoints compiled in (built from a copy: sources untouched)"
	@echo "failover-test     every chaos scenario of tests/failover (FAILOVER_RUN, FAILOVER_RUNS, FAILOVER_DURATION)"
	@echo "sim               deterministic simulation over SEEDS=$(SEEDS) seeds from FIRST_SEED=$(FIRST_SEED)"
	@echo "sim-fresh-seed    where this commit's fresh simulator range (run by make test) starts"

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/tidemark ./cmd/tidemark

run: build
	bin/tidemark playground $(ARGS)

test:
	$(GO) test -race -count=1 -timeout 15m ./...
	$(MAKE) test-scale

# The million-span checks skip themselves under -race (too slow there); they run here without it:
# no envelope over 4 MiB at 1M tables, answers cut in pieces, the sink checker at 1M records.
test-scale:
	$(GO) test -count=1 -timeout 5m -run 'Million|TestCheckScale' ./maintainer ./dispatchermanager ./dispatcher/sinkcheck

# The harness compares tidemark's etcd mirror with `etcdctl make-mirror`, so bench needs an
# etcdctl: on a fresh Debian machine run as root it installs etcd-client, as .ci/run does;
# elsewhere it says so and the make-mirror rows are reported as not measured. A harness run that
# reports a failed phase still gets its micro-benchmarks, and bench exits with its status.
bench: build bench-tools
	@status=0; \
	$(GO) run ./tests/bench -bin bin/tidemark -sizes $(BENCH_SIZES) -json $(BENCH_JSON) -cdc-events $(BENCH_CDC_EVENTS) -cdc-json $(BENCH_CDC_JSON) -scenarios spans,cdc,moves,cdcscale -moves-json bench-moves.json -cdc-scale-tables $(BENCH_CDC_SCALE_TABLES) -cdc-scale-json $(BENCH_CDC_SCALE_JSON) || status=$$?; \
	echo "bench: figures written to $(BENCH_JSON), $(BENCH_CDC_JSON), bench-moves.json and $(BENCH_CDC_SCALE_JSON)"; \
	[ $$status -eq 0 ] || echo "bench: the harness reported a failed phase (see its log above); the micro-benchmarks run all the same"; \
	$(MAKE) --no-print-directory bench-micro || status=$$?; \
	exit $$status

bench-tools:
	@if ! command -v etcdctl >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "bench: installing etcd-client for the make-mirror comparison"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends etcd-client >/dev/null 2>&1 || \
	      { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends etcd-client >/dev/null; } || \
	      echo "bench: could not install etcd-client; the make-mirror rows will not be measured"; \
	  else \
	    echo "bench: no etcdctl on PATH (Debian: apt-get install etcd-client); the make-mirror rows will not be measured and the data-plane phase reports that"; \
	  fi; \
	fi

bench-micro:
	@pkgs=$$(grep -rl --include='*_test.go' '^func Benchmark' . | xargs -r -n1 dirname | sort -u); \
	if [ -z "$$pkgs" ]; then echo "bench-micro: no package has benchmarks yet"; exit 0; fi; \
	echo "bench-micro: $$pkgs" | tr '\n' ' '; echo; \
	$(GO) test -run '^$$' -bench . -benchmem $$pkgs | tee $(BENCH_REPORT); \
	echo "bench-micro: report written to $(BENCH_REPORT)"

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

# The markers are rewritten in a scratch copy of the tree, never in the checkout: an interrupted
# or failed build cannot leave *__failpoint_* files behind, and work on the checkout is never
# disturbed. The EXIT trap removes the copy whatever happens.
build-failpoint:
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	tar --exclude=./.git --exclude=./bin --exclude='*__failpoint_*' -cf - . | tar -xf - -C "$$tmp"; \
	cd "$$tmp"; \
	$(GO) tool failpoint-ctl enable $(FAILPOINT_PKGS); \
	$(GO) build -ldflags '$(LDFLAGS)' -o $(CURDIR)/bin/tidemark-failpoint ./cmd/tidemark; \
	echo "build-failpoint: bin/tidemark-failpoint (failpoints in: $(FAILPOINT_PKGS))"

# Every scenario (or FAILOVER_RUN), on the binary build-failpoint made. `make test` runs the
# representative CI set of the same package through go test ./...
failover-test: build-failpoint
	TIDEMARK_FAILOVER_BIN=$(CURDIR)/bin/tidemark-failpoint $(GO) test -count=1 -v -timeout 0 ./tests/failover \
		-run TestScenarios -args $(if $(strip $(FAILOVER_RUN)),-failover.run=$(FAILOVER_RUN),-failover.all) \
		-failover.runs=$(FAILOVER_RUNS) $(if $(strip $(FAILOVER_DURATION)),-failover.duration=$(FAILOVER_DURATION))

# SEEDS consecutive seeds (from FIRST_SEED) of the deterministic simulator with every fault on;
# the summary counts the faults and operators. A failure prints the seed and the trace of its
# last events; replay one with FIRST_SEED=<seed> SEEDS=1.
FIRST_SEED ?= 1
sim:
	@if [ ! -d tests/sim ]; then echo "sim: tests/sim does not exist yet" >&2; exit 1; fi
	$(GO) test -count=1 -timeout 120m -v -run 'TestSeeds' ./tests/sim -args -seeds=$(SEEDS) -first-seed=$(FIRST_SEED) \
		| grep -v '^=== '


# Where this commit's fresh simulator range starts (tests/sim TestFreshSeeds runs it in make test).
sim-fresh-seed:
	@$(GO) test -count=1 -v -run '^TestShowFreshSeed$$' ./tests/sim -args -show-fresh-seed | grep '^fresh simulator seeds'

clean:
	rm -rf bin $(BENCH_REPORT) $(BENCH_JSON)
