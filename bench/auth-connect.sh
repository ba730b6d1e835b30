#!/usr/bin/env bash
# auth-connect.sh measures CONNECTs per second with no authentication, with
# JWT (HS256, -jsk) and with the bcrypt password file (cost 10, its cache
# on), in the same run: the same broker binary restarted per mode, the same
# cp7bench conn scenario against each, ROUNDS rounds interleaved so that
# other work on the machine spreads over all three.
#
# Mosquitto (Debian's package) runs the same scenario without
# authentication and with its password file (PBKDF2-SHA512, checked on
# every CONNECT), for the ratios; MOSQUITTO=0 skips it.
#
# Environment: PORT (first of 5 loopback ports, default 32000), CONNS
# (default 10000), ROUNDS (default 3). Writes bench/results/auth-MODE-N.json.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
PORT=${PORT:-32000}
CONNS=${CONNS:-10000}
ROUNDS=${ROUNDS:-3}
MOSQUITTO=${MOSQUITTO:-1}
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

if [ "$MOSQUITTO" = 1 ]; then
	mosquitto_passwd -c -b "$tmp/mosquitto.passwd" bench benchpass
	for m in none passwd; do
		port=$((PORT + 3))
		[ $m = passwd ] && port=$((PORT + 4))
		{
			echo "listener $port 127.0.0.1"
			echo "max_connections -1"
			echo "set_tcp_nodelay true"
			echo "log_type error"
			echo "user root" # keep the rights to read the password file in $tmp
			if [ $m = none ]; then
				echo "allow_anonymous true"
			else
				echo "allow_anonymous false"
				echo "password_file $tmp/mosquitto.passwd"
			fi
		} >"$tmp/mosquitto-$m.conf"
	done
fi

run() { # broker mode port broker-flags... -- bench-flags...
	local broker=$1 mode=$2 port=$3
	shift 3
	local bflags=() cflags=()
	while [ "$1" != -- ]; do bflags+=("$1"); shift; done
	shift
	cflags=("$@")
	ulimit -n 20000
	if [ "$broker" = coolpy7 ]; then
		"$tmp/coolpy7" -l "127.0.0.1:$port" -sys 0 -log warn "${bflags[@]}" &
	else
		mosquitto -c "$tmp/mosquitto-$mode.conf" >"$tmp/mosquitto.log" 2>&1 &
	fi
	pid=$!
	sleep 0.5
	local name=$mode
	[ "$broker" = mosquitto ] && name=mosquitto-$mode
	"$tmp/cp7bench" conn -p "$port" -c "$CONNS" --duration 1 --broker "$broker" --name "connect-$mode" --rss-pid "$pid" \
		--json "${cflags[@]}" >"$here/results/auth-$name-$round.json" 2>"$tmp/$name.log" || { cat "$tmp/$name.log"; exit 1; }
	grep -iE "connections " "$tmp/$name.log" | sed "s/^/$name round $round: /"
	stop
}

for round in $(seq "$ROUNDS"); do
	run coolpy7 none "$PORT" --
	run coolpy7 jwt $((PORT + 1)) -as 1 -jsk "$secret" -- -u bench -P "$token"
	run coolpy7 bcrypt $((PORT + 2)) -passwd "$tmp/passwd" -- -u bench -P benchpass
	if [ "$MOSQUITTO" = 1 ]; then
		run mosquitto none $((PORT + 3)) --
		run mosquitto passwd $((PORT + 4)) -- -u bench -P benchpass
	fi
done
