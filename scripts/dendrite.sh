#!/usr/bin/env bash
# A throwaway Dendrite homeserver for integration tests: installs it as a
# tool under .tmp/bin (never as a dependency of our module), writes a
# loopback-only config under .tmp/dendrite, starts and stops it.
#
#   scripts/dendrite.sh install
#   scripts/dendrite.sh start REGISTRATION_FILE   (or $DENDRITE_REGISTRATION)
#   scripts/dendrite.sh stop
#
# Every step is idempotent. Listens on 127.0.0.1:18008 (DENDRITE_ADDR),
# server_name "localhost". Each start begins from empty databases so tests
# do not see each other's rooms.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

VERSION=v0.13.8
BIN=$ROOT/.tmp/bin
DIR=$ROOT/.tmp/dendrite
ADDR=${DENDRITE_ADDR:-127.0.0.1:18008}
PIDFILE=$DIR/dendrite.pid
# The shared secret only guards shared-secret registration on a loopback
# test server; tests read it from here.
SECRET=${DENDRITE_SHARED_SECRET:-msnbridge-test-secret}

log() { echo "dendrite.sh: $*" >&2; }

install() {
	if [[ -x $BIN/dendrite && -x $BIN/generate-keys && -x $BIN/create-account ]] &&
		[[ "$(cat "$BIN/.dendrite-version" 2>/dev/null)" == "$VERSION" ]]; then
		return 0
	fi
	mkdir -p "$BIN"
	log "building Dendrite $VERSION (takes a couple of minutes from cold caches)"
	GOBIN=$BIN GOFLAGS=-buildvcs=false go install \
		"github.com/matrix-org/dendrite/cmd/dendrite@$VERSION" \
		"github.com/matrix-org/dendrite/cmd/generate-keys@$VERSION" \
		"github.com/matrix-org/dendrite/cmd/create-account@$VERSION"
	echo "$VERSION" >"$BIN/.dendrite-version"
}

# answers says whether Dendrite serves /_matrix/client/versions, with
# bash's /dev/tcp so that a bare CI image needs no curl.
answers() {
	local host=${ADDR%:*} port=${ADDR##*:} status
	{ exec 3<>"/dev/tcp/$host/$port"; } 2>/dev/null || return 1
	printf 'GET /_matrix/client/versions HTTP/1.0\r\nHost: %s\r\n\r\n' "$host" >&3
	read -r -t 5 status <&3 || status=
	exec 3<&- 3>&-
	[[ $status == *" 200"* ]]
}

running() {
	[[ -f $PIDFILE ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

write_config() {
	local reg=$1
	cat >"$DIR/dendrite.yaml" <<EOF
version: 2
global:
  server_name: localhost
  private_key: $DIR/matrix_key.pem
  key_validity_period: 168h0m0s
  disable_federation: true
  presence:
    # Ghosts' presence reaches local users; there is no federation here.
    enable_inbound: true
    enable_outbound: true
  report_stats:
    enabled: false
  jetstream:
    in_memory: true
    storage_path: $DIR/data/jetstream
    topic_prefix: Dendrite
  metrics:
    enabled: false
  dns_cache:
    enabled: false
app_service_api:
  disable_tls_validation: true
  legacy_auth: false
  legacy_paths: false
  config_files:
    - $reg
client_api:
  registration_disabled: true
  guests_disabled: true
  registration_shared_secret: "$SECRET"
  enable_registration_captcha: false
  rate_limiting:
    enabled: false
    threshold: 20
    cooloff_ms: 500
federation_api:
  database:
    connection_string: file:$DIR/data/federationapi.db
  key_perspectives: []
key_server:
  database:
    connection_string: file:$DIR/data/keyserver.db
media_api:
  database:
    connection_string: file:$DIR/data/mediaapi.db
  base_path: $DIR/data/media_store
  max_file_size_bytes: 10485760
  dynamic_thumbnails: false
mscs:
  mscs: []
  database:
    connection_string: file:$DIR/data/mscs.db
relay_api:
  database:
    connection_string: file:$DIR/data/relayapi.db
room_server:
  database:
    connection_string: file:$DIR/data/roomserver.db
sync_api:
  database:
    connection_string: file:$DIR/data/syncapi.db
  search:
    enabled: false
    index_path: $DIR/data/searchindex
user_api:
  bcrypt_cost: 4
  account_database:
    connection_string: file:$DIR/data/userapi.db
tracing:
  enabled: false
logging:
  - type: std
    level: info
EOF
}

start() {
	local reg=${1:-${DENDRITE_REGISTRATION:-}}
	if [[ -z $reg || ! -f $reg ]]; then
		log "start needs an appservice registration file (argument or DENDRITE_REGISTRATION)"
		exit 2
	fi
	reg=$(cd "$(dirname "$reg")" && pwd)/$(basename "$reg")
	install
	stop
	mkdir -p "$DIR"
	rm -rf "$DIR/data"
	mkdir -p "$DIR/data"
	if [[ ! -f $DIR/matrix_key.pem ]]; then
		"$BIN/generate-keys" --private-key "$DIR/matrix_key.pem" >/dev/null
	fi
	write_config "$reg"
	"$BIN/dendrite" -config "$DIR/dendrite.yaml" -http-bind-address "$ADDR" \
		>"$DIR/dendrite.log" 2>&1 &
	echo $! >"$PIDFILE"
	local deadline=$((SECONDS + 60))
	until answers; do
		if ! running; then
			log "Dendrite exited during start-up; last log lines:"
			tail -n 30 "$DIR/dendrite.log" >&2
			exit 1
		fi
		if ((SECONDS > deadline)); then
			log "Dendrite did not answer on $ADDR within 60 s"
			stop
			exit 1
		fi
		sleep 0.2
	done
	log "Dendrite is up on http://$ADDR (log: $DIR/dendrite.log)"
}

stop() {
	if ! running; then
		rm -f "$PIDFILE"
		return 0
	fi
	local pid
	pid=$(cat "$PIDFILE")
	kill "$pid" 2>/dev/null || true
	local deadline=$((SECONDS + 20))
	while kill -0 "$pid" 2>/dev/null; do
		if ((SECONDS > deadline)); then
			log "Dendrite ($pid) ignored SIGTERM for 20 s; killing it"
			kill -9 "$pid" 2>/dev/null || true
		fi
		sleep 0.1
	done
	rm -f "$PIDFILE"
}

case ${1:-} in
install) install ;;
start) start "${2:-}" ;;
stop) stop ;;
*)
	echo "usage: $0 install | start REGISTRATION_FILE | stop" >&2
	exit 2
	;;
esac
