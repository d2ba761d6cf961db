# The README's test command is `make test`; .ci/run runs exactly it.
GO ?= go
CONFIG ?= config.yaml
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: build test vet run check config demo bench bench-scale bench-startup bench-relay bench-outbox
# build compiles everything and leaves the msnbridge binary here.
build:
	$(GO) build ./...
	$(GO) build -ldflags "$(LDFLAGS)" -o msnbridge ./cmd/msnbridge

test:
	./scripts/test.sh

vet:
	$(GO) vet ./...

# run starts the bridge with $(CONFIG) (default config.yaml).
run:
	$(GO) run -ldflags "$(LDFLAGS)" ./cmd/msnbridge -c $(CONFIG)

# check validates $(CONFIG) and lists every problem.
check:
	$(GO) run ./cmd/msnbridge --check -c $(CONFIG)

# config writes config.yaml from the example, if there is none yet.
config:
	$(GO) run ./cmd/msnbridge -e $(CONFIG)

# Long-running fault-injection soak (not part of make test):
# SOAK_USERS=3 SOAK_DURATION=1m make soak
.PHONY: soak
soak:
	./scripts/soak.sh

# bench runs the codec benchmarks (msnp's wire and MIME parsers), about a
# minute in all; BENCHTIME bounds each one. See BENCHMARKS.md.
BENCHTIME ?= 200ms
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime=$(BENCHTIME) ./msnp/

# bench-scale logs ACCOUNTS idle MSN clients (100 contacts each) into an
# msnptest child process and reports the client side's memory per account.
# 1,000 takes ~10 s; ACCOUNTS=10000 takes ~80 s and ~1 GiB.
ACCOUNTS ?= 1000
bench-scale:
	$(GO) run ./bench/scale -accounts $(ACCOUNTS)

# bench-startup resumes LOGINS stored logins with bridge.Start and reports
# the time to all connected; at the default pacing (5 logins/s) 1,000 take
# about 200 s. RESUME_INTERVAL overrides the pacing (e.g. 10ms).
LOGINS ?= 1000
RESUME_INTERVAL ?= 0
bench-startup:
	$(GO) run ./bench/startup -logins $(LOGINS) -interval $(RESUME_INTERVAL)

# bench-relay measures the relay (MSN to XMPP and to Matrix through the
# bridge) beside the direct client-to-client paths, on a loopback Prosody
# and Dendrite; RELAY_N, RELAY_LAT_N and RELAY_WINDOW size it. ~40 s.
bench-relay:
	./scripts/bench-relay.sh

# bench-outbox measures the durable outbox alone (bridge) and the store's
# share per message; see BENCHMARKS.md section 4.1. ~10 s.
bench-outbox:
	$(GO) test -run '^$$' -bench 'OutboxPushDeliver' -benchtime 10000x -benchmem ./bridge/
	$(GO) test -run '^$$' -bench 'QueuePushDelivered' -benchtime 5000x ./store/

# demo runs the whole bridge on loopback with a demo MSN server, Prosody and
# Dendrite, and prints how to connect; Ctrl-C stops it (scripts/demo.sh).
demo:
	./scripts/demo.sh
