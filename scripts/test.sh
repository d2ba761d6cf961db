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
fuzz ./matrix FuzzGhostEscape
fuzz ./matrix FuzzMatrixHTML
fuzz ./matrix FuzzParseCommand

echo "== integration: Matrix frontend against Dendrite"
# The registration must exist before Dendrite starts; its contents are
# what matrix.NewRegistration makes for this config (the test checks).
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
trap 'scripts/dendrite.sh stop' EXIT
scripts/dendrite.sh install
scripts/dendrite.sh start "$REG"
MSNBRIDGE_TEST_DENDRITE_URL=http://127.0.0.1:18008 \
MSNBRIDGE_TEST_REGISTRATION=$REG \
MSNBRIDGE_TEST_SHARED_SECRET=msnbridge-test-secret \
	go test -tags integration -count=1 -run 'Integration' ./matrix/...
