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
fuzz ./xmpp FuzzPassportJID
fuzz ./xmpp FuzzParseStyling
fuzz ./xmpp FuzzStanza

# --- XMPP integration (Prosody) ------------------------------------------
# Self-contained: installs and starts a loopback Prosody, runs the xmpp
# integration tests against it, and stops it however the script exits.
echo "== xmpp integration (Prosody)"
scripts/prosody.sh install
prosody_env=$(scripts/prosody.sh start)
trap 'scripts/prosody.sh stop' EXIT
eval "$prosody_env"
go test -tags integration -count=1 ./xmpp/...
scripts/prosody.sh stop
trap - EXIT
