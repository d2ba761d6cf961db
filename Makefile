# The README's test command is `make test`; .ci/run runs exactly it.
GO ?= go
CONFIG ?= config.yaml
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: build test vet run check config demo
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

# demo runs the whole bridge on loopback with a demo MSN server, Prosody and
# Dendrite, and prints how to connect; Ctrl-C stops it (scripts/demo.sh).
demo:
	./scripts/demo.sh
