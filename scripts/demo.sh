#!/usr/bin/env bash
# make demo: the whole bridge on this machine, for newcomers. It starts an
# in-process MSN server with a demo account per side and three friends who
# answer (cmd/msnbridge-demo), Prosody and Dendrite (through the test
# scripts, on their own ports and directories), writes the bridge's config
# and appservice registration, runs the bridge, and prints how to connect a
# Matrix or XMPP client and whom to message. Everything listens on
# 127.0.0.1 only. Ctrl-C stops all of it.
#
# Ports: Dendrite 28008, the appservice 28009, the bridge's http listener
# (metrics, health, provisioning) 28010, Prosody c2s 25222 and component
# 25347. Everything lives under .tmp/demo/ and is started afresh each time.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DEMO=$ROOT/.tmp/demo
HS_ADDR=127.0.0.1:28008
AS_ADDR=127.0.0.1:28009
HTTP_ADDR=127.0.0.1:28010
export DENDRITE_ADDR=$HS_ADDR DENDRITE_DIR=$DEMO/dendrite
export PROSODY_DIR=$DEMO/prosody PROSODY_C2S_PORT=25222 PROSODY_COMPONENT_PORT=25347 PROSODY_HTTP_PORT=25280

log() { echo "demo: $*" >&2; }

msn_pid="" bridge_pid=""
cleanup() {
	trap - EXIT INT TERM
	set +e
	log "stopping"
	[ -n "$bridge_pid" ] && kill -TERM "$bridge_pid" 2>/dev/null && wait "$bridge_pid" 2>/dev/null
	[ -n "$msn_pid" ] && kill -TERM "$msn_pid" 2>/dev/null && wait "$msn_pid" 2>/dev/null
	scripts/dendrite.sh stop || true
	scripts/prosody.sh stop 2>/dev/null || true
	log "stopped; logs are in $DEMO/"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_free() { ! (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }
for a in $HS_ADDR $AS_ADDR $HTTP_ADDR 127.0.0.1:25222 127.0.0.1:25347; do
	port_free "$a" || { log "$a is taken: is another demo running?"; trap - EXIT; exit 1; }
done

scripts/prosody.sh stop 2>/dev/null || true
rm -rf "$DEMO"
mkdir -p "$DEMO/bin"
log "building msnbridge and msnbridge-demo"
go build -o "$DEMO/bin/msnbridge" ./cmd/msnbridge
go build -o "$DEMO/bin/msnbridge-demo" ./cmd/msnbridge-demo
scripts/prosody.sh install
scripts/dendrite.sh install

log "starting the demo MSN server"
"$DEMO/bin/msnbridge-demo" -env "$DEMO/msn.env" 2>"$DEMO/msn.log" &
msn_pid=$!
for _ in $(seq 1 100); do
	[ -f "$DEMO/msn.env" ] && break
	kill -0 "$msn_pid" 2>/dev/null || { log "the demo MSN server failed:"; cat "$DEMO/msn.log" >&2; exit 1; }
	sleep 0.1
done
[ -f "$DEMO/msn.env" ] || { log "the demo MSN server did not start"; exit 1; }

log "starting Prosody"
eval "$(scripts/prosody.sh start)"

token() { head -c 24 /dev/urandom | base64 | tr -d '/+='; }
PROVISIONING_SECRET=$(token)$(token)
cat >"$DEMO/config.yaml" <<EOC
# Written by scripts/demo.sh. The msn section comes from msn.env (the
# demo MSN server picks free ports), given to the bridge as MSNBRIDGE_MSN_*.
matrix:
  enabled: true
  homeserver_url: http://$HS_ADDR
  domain: localhost
  listen: $AS_ADDR
  public_url: http://$AS_ADDR
  as_token: "$(token)"
  hs_token: "$(token)"
  # Dendrite does not push typing notifications to appservices.
  sync_ephemeral: true
xmpp:
  enabled: true
  jid: $MSNBRIDGE_TEST_XMPP_JID
  server: $MSNBRIDGE_TEST_XMPP_COMPONENT
  secret: "$MSNBRIDGE_TEST_XMPP_SECRET"
database:
  uri: file:$DEMO/msnbridge.db?_txlock=immediate
bridge:
  permissions:
    # Matrix users of the homeserver "localhost" and XMPP users of the
    # domain "localhost".
    localhost: admin
  encryption_key: "$("$DEMO/bin/msnbridge" --generate-key)"
http:
  listen: $HTTP_ADDR
  provisioning: true
  provisioning_secret: "$PROVISIONING_SECRET"
EOC
set -a
# shellcheck disable=SC1091
. "$DEMO/msn.env"
set +a
"$DEMO/bin/msnbridge" --check -c "$DEMO/config.yaml" >&2
"$DEMO/bin/msnbridge" -g -c "$DEMO/config.yaml" -r "$DEMO/registration.yaml" >/dev/null

log "starting Dendrite"
scripts/dendrite.sh start "$DEMO/registration.yaml"
"$ROOT/.tmp/bin/create-account" -config "$DENDRITE_DIR/dendrite.yaml" -url "http://$HS_ADDR" \
	-username you -password demodemo >"$DEMO/create-account.log" 2>&1 ||
	{ log "could not create @you:localhost:"; cat "$DEMO/create-account.log" >&2; exit 1; }
scripts/prosody.sh register you demodemo 2>/dev/null

log "starting the bridge (log: $DEMO/bridge.log)"
"$DEMO/bin/msnbridge" -c "$DEMO/config.yaml" 2>"$DEMO/bridge.log" &
bridge_pid=$!
ready=""
for _ in $(seq 1 150); do
	if curl -fsS "http://$HTTP_ADDR/ready" >/dev/null 2>&1; then ready=1; break; fi
	kill -0 "$bridge_pid" 2>/dev/null || break
	sleep 0.2
done
if [ -z "$ready" ]; then
	log "the bridge did not become ready; its log:"
	tail -n 30 "$DEMO/bridge.log" >&2
	exit 1
fi

# Log the Matrix user in through the provisioning API, as an admin panel
# would: the bridge bot then invites @you:localhost to a management room.
curl -fsS -X POST "http://$HTTP_ADDR/_msnbridge/provision/v1/login" \
	-H "Authorization: Bearer $PROVISIONING_SECRET" \
	-d '{"user":"matrix:@you:localhost","passport":"matrix@demo.msn","password":"demo"}' >/dev/null ||
	log "the provisioning login failed; log in from the bot room instead (see below)"

cat <<EOT

  msnbridge demo is running. Everything is on 127.0.0.1; Ctrl-C stops it all.

  The MSN side: a demo server where alice@demo.msn (repeats what you say),
  bob@demo.msn (busy, chatty) and carol@demo.msn (away, counts; nudge her)
  are signed in and answer.

  Matrix (e.g. Element, with a custom homeserver):
    homeserver  http://$HS_ADDR
    user        you    password  demodemo      (@you:localhost)
    The bridge bot @msnbot:localhost has already logged you in as
    matrix@demo.msn and invited you to its room; your MSN friends invite
    you to a room each when they write. To write first, say to the bot:
      chat alice@demo.msn
    (more users: $ROOT/.tmp/bin/create-account -config $DENDRITE_DIR/dendrite.yaml \\
                   -url http://$HS_ADDR -username NAME -password PASSWORD)

  XMPP (e.g. Gajim, Dino, Profanity; no TLS, plain login allowed on loopback):
    account     you@localhost    password  demodemo
    server      127.0.0.1  port  25222
    Register with the gateway $MSNBRIDGE_TEST_XMPP_JID (service discovery,
    "Register"): passport xmpp@demo.msn, password demo. Then write to
      alice\\40demo.msn@$MSNBRIDGE_TEST_XMPP_JID
    (more users: PROSODY_DIR=$PROSODY_DIR scripts/prosody.sh register NAME PASSWORD)

  Operators:
    curl http://$HTTP_ADDR/metrics        (Prometheus)
    curl http://$HTTP_ADDR/ready
    curl -H 'Authorization: Bearer $PROVISIONING_SECRET' \\
         'http://$HTTP_ADDR/_msnbridge/provision/v1/contacts?user=matrix:@you:localhost'

  Logs: $DEMO/bridge.log, $DEMO/msn.log, $DENDRITE_DIR/dendrite.log

EOT

# Run until Ctrl-C, or until the bridge or the MSN server ends.
set +e
wait -n "$bridge_pid" "$msn_pid"
log "a demo process ended by itself; see the logs"
exit 1
