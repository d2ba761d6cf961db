#!/usr/bin/env bash
# Runs every test the README promises: vet, unit tests, short fuzz runs,
# then the integration tests against real servers (Prosody, Dendrite) that
# this script installs and starts on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== go vet"
go vet ./...
go vet -tags integration ./...

echo "== staticcheck"
mkdir -p .tmp/bin
if [ ! -x .tmp/bin/staticcheck ]; then
  GOBIN=$PWD/.tmp/bin go install honnef.co/go/tools/cmd/staticcheck@v0.8.2
fi
.tmp/bin/staticcheck ./...
.tmp/bin/staticcheck -tags integration ./...

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

echo "== integration: starting Prosody, Dendrite and PostgreSQL on loopback"
stop_servers() {
  scripts/prosody.sh stop || true
  scripts/dendrite.sh stop || true
  scripts/postgres.sh stop || true
}
trap stop_servers EXIT

scripts/postgres.sh install
postgres_env=$(scripts/postgres.sh start) # MSNBRIDGE_TEST_POSTGRES_URI
eval "$postgres_env"

scripts/prosody.sh install
prosody_env=$(scripts/prosody.sh start)
eval "$prosody_env"

REG=$(scripts/test-registration.sh)
scripts/dendrite.sh install
scripts/dendrite.sh start "$REG"
export MSNBRIDGE_TEST_DENDRITE_URL=http://127.0.0.1:18008
export MSNBRIDGE_TEST_REGISTRATION=$REG
export MSNBRIDGE_TEST_SHARED_SECRET=msnbridge-test-secret

echo "== integration tests"
pkgs=$(grep -rl --include='*_test.go' '^//go:build integration' . | xargs -n1 dirname | sort -u)
for pkg in $pkgs; do
  # A fresh Dendrite per package: after an appservice goes away Dendrite
  # backs off its transactions for minutes, which would stall the next one.
  scripts/dendrite.sh start "$REG" >/dev/null
  go test -tags integration -count=1 "$pkg"
done
