#!/usr/bin/env bash
# Runs every test the README promises: vet, unit tests, short fuzz runs.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== go vet"
go vet ./...

echo "== unit tests"
go test -count=1 ./...

# Every fuzz target in the tree runs briefly, so a new one needs no edit
# here. Seeds that found bugs live in each package's testdata/fuzz and run
# with the unit tests above.
echo "== fuzz (short runs, ${FUZZTIME:-5s} each)"
grep -rl --include='*_test.go' '^func Fuzz' . | sort | while read -r f; do
  dir=$(dirname "$f")
  for name in $(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$f"); do
    echo "-- $dir $name"
    go test -run '^$' -fuzz "^${name}\$" -fuzztime "${FUZZTIME:-5s}" "$dir"
  done
done
