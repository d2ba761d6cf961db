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

echo "== integration: starting Prosody and Dendrite on loopback"
stop_servers() {
  scripts/prosody.sh stop || true
  scripts/dendrite.sh stop || true
}
trap stop_servers EXIT

scripts/prosody.sh install
prosody_env=$(scripts/prosody.sh start)
eval "$prosody_env"

# The registration must exist before Dendrite starts; its contents are what
# matrix.NewRegistration makes for the test config (a test checks that).
mkdir -p .tmp/matrix-it
REG=$PWD/.tmp/matrix-it/registration.yaml
cat >"$REG" <<'YAML'
id: msnbridge-test
url: http://127.0.0.1:18009
as_token: msnbridge-test-as-token
hs_token: msnbridge-test-hs-token
sender_localpart: msnbot
rate_limited: false
namespaces:
  users:
    - regex: '^@msn_[a-z0-9._=/-]+:localhost$'
      exclusive: true
    - regex: '^@msnbot:localhost$'
      exclusive: true
de.sorunome.msc2409.push_ephemeral: true
receive_ephemeral: true
YAML
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
