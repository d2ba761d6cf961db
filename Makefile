# The README's test command is `make test`; .ci/run runs exactly it.
GO ?= go

.PHONY: build test vet unit fuzz
build:
	$(GO) build ./...

test:
	./scripts/test.sh

vet:
	$(GO) vet ./...
