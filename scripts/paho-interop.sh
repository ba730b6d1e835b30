#!/usr/bin/env bash
# Runs the Eclipse Paho interoperability suites (eclipse/paho.mqtt.testing,
# interoperability/client_test5.py for MQTT 5.0 and client_test.py for
# 3.1.1) against Coolpy7, one test per process, and prints PASS/FAIL per
# test and the totals.
#
# Usage: PAHO_DIR=/path/to/paho.mqtt.testing scripts/paho-interop.sh [PORT]
#    or: scripts/paho-interop.sh PAHO_DIR [PORT]
# PORT must be free on 127.0.0.1 (default: one picked at random). Extra
# knobs: ONLY=regex runs only the matching test names; EXTERNAL_BROKER=1
# runs against a broker already listening on PORT (e.g. mosquitto, for
# comparison) instead of building and starting Coolpy7; LOG_DIR keeps the
# per-test logs there (default: a temporary directory, printed at the end).
#
# The broker runs with testdata/paho.conf (and -l 127.0.0.1:PORT). What the
# suites need from it, key by key:
#   max_keepalive = 60      v5 test_server_keep_alive connects with keepalive
#                           120 and expects Server Keep Alive 60 in CONNACK.
#   deny_subscribe = ["test/nosubscribe"]
#                           test_subscribe_failure (v3 and v5) subscribes to
#                           it and expects the subscription refused.
#   obscure_not_authorized = true
#                           v5 test_subscribe_failure expects reason code
#                           0x80, not Coolpy7's default 0x87 (Not
#                           authorized), for that refusal.
#   sys_interval = 0        no $SYS traffic; the suites' cleanup subscribes
#                           to "#" and must see only their own messages.
# Defaults the suites rely on (do not lower them in paho.conf):
#   max_session_expiry      0 (no cap) or at least 5: test_session_expiry,
#                           test_will_delay and test_publication_expiry ask
#                           for 5..999999999 s and time the results.
#   topic_alias_maximum     above 0: test_client_topic_alias only runs its
#                           alias checks when CONNACK allows aliases;
#                           test_server_topic_alias also needs the broker to
#                           assign aliases towards a client allowing one.
#   receive_maximum         test_flow_control2 sends that many plus one QoS 2
#                           messages and expects DISCONNECT 0x93.
#   max_packet_size         0 (no limit) skips the "packet too large" half of
#                           test_maximum_packet_size; a limit below 65535
#                           makes it send a packet that size and expect
#                           DISCONNECT 0x95.
# Other expectations that are behaviour, not config: wills on keepalive
# timeout (test_keepalive, v5 test_will_message: the Python client never
# pings), $share subscriptions (v5 test_shared_subscriptions), a client's
# Maximum Packet Size honoured by dropping bigger messages, publishes to
# "$..." topics accepted (test_dollar_topics).
set -euo pipefail

PAHO_DIR=${1:-${PAHO_DIR:-}}
PORT=${2:-${PORT:-}}
if [ -z "$PAHO_DIR" ] || [ ! -f "$PAHO_DIR/interoperability/client_test5.py" ]; then
	echo "usage: PAHO_DIR=<checkout of eclipse/paho.mqtt.testing> $0 [PORT]" >&2
	exit 2
fi
PAHO_DIR=$(cd "$PAHO_DIR" && pwd)
INTEROP=$PAHO_DIR/interoperability
ROOT=$(cd "$(dirname "$0")/.." && pwd)
command -v python3 >/dev/null || { echo "python3 is required" >&2; exit 2; }
if [ -z "$PORT" ]; then
	PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
fi

work=$(mktemp -d)
LOG_DIR=${LOG_DIR:-$work/logs}
mkdir -p "$LOG_DIR"
broker_pid=
cleanup() {
	if [ -n "$broker_pid" ] && kill -0 "$broker_pid" 2>/dev/null; then
		kill "$broker_pid" 2>/dev/null || true
		wait "$broker_pid" 2>/dev/null || true
	fi
	rm -rf "$work/coolpy7" "$work/client_test_p.py" "$work/data"
}
trap cleanup EXIT

if [ -z "${EXTERNAL_BROKER:-}" ]; then
	echo "building ./cmd/coolpy7"
	(cd "$ROOT" && go build -o "$work/coolpy7" ./cmd/coolpy7)
	# The store is on (Pebble, as by default) in the temporary directory;
	# the HTTP and CoAP gateways are off so that no fixed port can clash.
	"$work/coolpy7" -c "$ROOT/testdata/paho.conf" -l "127.0.0.1:$PORT" -data "$work/data" -hl "" -cl "" >"$LOG_DIR/broker.log" 2>&1 &
	broker_pid=$!
fi

# Wait until the port accepts connections.
for _ in $(seq 100); do
	if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
		break
	fi
	if [ -n "$broker_pid" ] && ! kill -0 "$broker_pid" 2>/dev/null; then
		echo "broker exited:" >&2
		cat "$LOG_DIR/broker.log" >&2
		exit 1
	fi
	sleep 0.1
done
(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null || { echo "nothing listening on 127.0.0.1:$PORT" >&2; exit 1; }
echo "broker on 127.0.0.1:$PORT, logs in $LOG_DIR"

# client_test.py hands its whole argv to unittest (which rejects -p); the
# copy passes on only the test names left after its own options.
sed 's/^    unittest.main()/    unittest.main(argv=[sys.argv[0]] + args)/' \
	"$INTEROP/client_test.py" >"$work/client_test_p.py"

# test names: unittest runs the methods whose names start with "test".
names() { grep -oE '^    def test[A-Za-z0-9_]*\(' "$1" | sed -E 's/^    def (.*)\($/\1/'; }

pass=0 fail=0 failed=()
run_suite() { # label script
	local label=$1 script=$2 name start rc ms secs log
	for name in $(names "$script"); do
		if [ -n "${ONLY:-}" ] && ! [[ $name =~ $ONLY ]]; then
			continue
		fi
		log="$LOG_DIR/$label-$name.log"
		start=$(date +%s%N)
		rc=0
		(cd "$INTEROP" && PYTHONPATH="$INTEROP" timeout 60 python3 "$script" -p "$PORT" "Test.$name") >"$log" 2>&1 || rc=$?
		ms=$((($(date +%s%N) - start) / 1000000))
		secs=$((ms / 1000)).$((ms % 1000 / 100))
		if [ "$rc" -eq 0 ]; then
			pass=$((pass + 1))
			printf 'PASS %s %s (%ss)\n' "$label" "$name" "$secs"
		else
			fail=$((fail + 1))
			failed+=("$label $name")
			if [ "$rc" -eq 124 ]; then
				printf 'FAIL %s %s (timed out after 60 s)\n' "$label" "$name"
			else
				printf 'FAIL %s %s (exit %d, %ss)\n' "$label" "$name" "$rc" "$secs"
			fi
			grep -E 'Error|assert|Exception|FAIL' "$log" | tail -n 5 | sed 's/^/    /' || true
		fi
		if [ -n "$broker_pid" ] && ! kill -0 "$broker_pid" 2>/dev/null; then
			echo "broker died during $label $name; see $LOG_DIR/broker.log" >&2
			exit 1
		fi
	done
}

run_suite v5 "$INTEROP/client_test5.py"
run_suite v3 "$work/client_test_p.py"

echo
if [ "$fail" -gt 0 ]; then
	echo "failed: ${failed[*]}"
fi
echo "logs: $LOG_DIR"
echo "paho interop: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
