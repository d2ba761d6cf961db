#!/usr/bin/env bash
# Writes the Matrix appservice registration the integration tests use to
# .tmp/matrix-it/registration.yaml and prints its path. It must exist before
# Dendrite starts; its contents are what matrix.NewRegistration makes for
# the test config (a test checks that).
set -euo pipefail
cd "$(dirname "$0")/.."
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
echo "$REG"
