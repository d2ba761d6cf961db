#!/usr/bin/env bash
# make bench-relay: messages per second and latency (p50/p99) of the relay,
# MSN (msnptest) to XMPP through the bridge and Prosody, and MSN to Matrix
# through the bridge and Dendrite, each beside the direct client-to-client
# path through the same server in the same run. Loopback only.
# RELAY_RUN picks subtests (e.g. 'TestRelayBench/matrix').
# RELAY_N (500), RELAY_LAT_N (200) and RELAY_WINDOW (16) size the run.
set -euo pipefail
cd "$(dirname "$0")/.."
stop_servers() {
	scripts/prosody.sh stop || true
	scripts/dendrite.sh stop || true
}
trap stop_servers EXIT
scripts/prosody.sh install
prosody_env=$(scripts/prosody.sh start)
eval "$prosody_env"
REG=$(scripts/test-registration.sh)
scripts/dendrite.sh install
scripts/dendrite.sh start "$REG"
export MSNBRIDGE_TEST_DENDRITE_URL=http://127.0.0.1:18008
export MSNBRIDGE_TEST_REGISTRATION=$REG
export MSNBRIDGE_TEST_SHARED_SECRET=msnbridge-test-secret
go test -tags 'integration relaybench' -count=1 -run "${RELAY_RUN:-^TestRelayBench\$}" -timeout 20m -v ./cmd/msnbridge/ |
	grep -E '^(relay:|---|ok|FAIL|panic)|relay_bench_test.go|e2e_'
