#!/usr/bin/env bash
# Runs every test the README promises: vet, unit tests, short fuzz runs.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== go vet"
go vet ./...

echo "== unit tests"
go test -count=1 ./...

echo "== fuzz (short runs)"
fuzz() { go test -run '^$' -fuzz "^$2\$" -fuzztime "${FUZZTIME:-10s}" "$1"; }
fuzz ./msnp FuzzReader
fuzz ./msnp FuzzParseML
fuzz ./msnp FuzzParseMailData
fuzz ./msnp FuzzParseUBXData
