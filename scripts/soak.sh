#!/usr/bin/env bash
# make soak: SOAK_USERS Matrix users chat with MSN contacts through the
# bridge for SOAK_DURATION while faults are injected; prints what was sent,
# received, lost and duplicated per direction and fails on any loss.
# Loopback only (Dendrite and an in-process MSN server).
set -euo pipefail
cd "$(dirname "$0")/.."
trap 'scripts/dendrite.sh stop || true' EXIT
REG=$(scripts/test-registration.sh)
scripts/dendrite.sh install
scripts/dendrite.sh start "$REG"
export MSNBRIDGE_TEST_DENDRITE_URL=http://127.0.0.1:18008
export MSNBRIDGE_TEST_REGISTRATION=$REG
export MSNBRIDGE_TEST_SHARED_SECRET=msnbridge-test-secret
go test -tags 'integration soak' -count=1 -run '^TestSoak$' -timeout 60m -v ./cmd/msnbridge/ | grep -E '^(soak:|MSN to|Matrix to|---|ok|FAIL|panic)|soak_test.go'
