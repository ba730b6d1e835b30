#!/usr/bin/env bash
# auth-connect.sh measures CONNECTs per second with no authentication, with
# JWT (HS256, -jsk) and with the bcrypt password file (cost 10, its cache
# on), in the same run: the same broker binary restarted per mode, the same
# cp7bench conn scenario against each, ROUNDS rounds interleaved so that
# other work on the machine spreads over all three.
#
# Environment: PORT (first of 3 loopback ports, default 32000), CONNS
# (default 10000), ROUNDS (default 3). Writes bench/results/auth-MODE-N.json.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
PORT=${PORT:-32000}
CONNS=${CONNS:-10000}
ROUNDS=${ROUNDS:-3}
tmp=$(mktemp -d)
pid=""
stop() {
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	pid=""
}
trap 'stop; rm -rf "$tmp"' EXIT

cd "$root"
go build -o "$tmp/coolpy7" ./cmd/coolpy7
go build -o "$tmp/cp7bench" ./cmd/cp7bench
echo benchpass | "$tmp/coolpy7" passwd "$tmp/passwd" bench >/dev/null

secret=0123456789abcdef0123456789abcdef
b64() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
head=$(printf '{"alg":"HS256","typ":"JWT"}' | b64)
body=$(printf '{"sub":"bench","exp":%d}' $(($(date +%s) + 86400)) | b64)
sig=$(printf '%s.%s' "$head" "$body" | openssl dgst -sha256 -hmac "$secret" -binary | b64)
token="$head.$body.$sig"

run() { # mode port broker-flags... -- bench-flags...
	local mode=$1 port=$2
	shift 2
	local bflags=() cflags=()
	while [ "$1" != -- ]; do bflags+=("$1"); shift; done
	shift
	cflags=("$@")
	ulimit -n 20000
	"$tmp/coolpy7" -l "127.0.0.1:$port" -sys 0 -log warn "${bflags[@]}" &
	pid=$!
	sleep 0.5
	"$tmp/cp7bench" conn -p "$port" -c "$CONNS" --duration 1 --broker coolpy7 --name "connect-$mode" --rss-pid "$pid" \
		--json "${cflags[@]}" >"$here/results/auth-$mode-$round.json" 2>"$tmp/$mode.log" || { cat "$tmp/$mode.log"; exit 1; }
	grep -iE "connect(s|ed)?( rate)?|fail" "$tmp/$mode.log" | head -3 | sed "s/^/$mode round $round: /"
	stop
}

for round in $(seq "$ROUNDS"); do
	run none "$PORT" --
	run jwt $((PORT + 1)) -as 1 -jsk "$secret" -- -u bench -P "$token"
	run bcrypt $((PORT + 2)) -passwd "$tmp/passwd" -- -u bench -P benchpass
done
