#!/usr/bin/env bash
# persist.sh benchmarks persistence (issue 3) with cp7bench, every run
# bounded in time:
#
#   qos1      100 publishers -> 100 persistent subscribers (p2p pairs), QoS 1,
#             64 B, flat out with 64 in flight per publisher, 10 s: Coolpy7
#             durable (the default), Coolpy7 with -durability 100ms, and
#             Mosquitto with `persistence true`, one after the other.
#   offline   10,000 persistent subscribers connect and leave; 10,000
#             publishers then queue messages for them for DURATION seconds
#             at one message per INTERVAL each; broker RSS sampled; msgs/s
#             and bytes on disk per message reported. Coolpy7 only.
#
# Results: bench/results/persist-*.json (cp7bench --json) and a summary on
# stderr. Environment: PORT (first of the loopback ports, default 31000),
# RUNS (qos1 offline), DURATION (offline, 20), INTERVAL (offline, 200ms).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
PORT=${PORT:-31000}
RUNS=${RUNS:-"qos1 offline"}
DURATION=${DURATION:-20}
INTERVAL=${INTERVAL:-200ms}
tmp=$(mktemp -d)
pid=""
log() { printf '%s  %s\n' "$(date +%T)" "$*" >&2; }

stop_broker() {
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 300); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	pid=""
}
trap 'stop_broker; rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {
	for _ in $(seq 100); do
		port_open "$1" && return 0
		sleep 0.1
	done
	log "broker not listening on $1"; exit 1
}

(cd "$root" && go build -o "$tmp/bin/" ./cmd/coolpy7 ./cmd/cp7bench)
bench=$tmp/bin/cp7bench
mkdir -p "$here/results"

start_coolpy7() { # port, extra flags... (on $tmp/data as it is)
	local port=$1; shift
	"$tmp/bin/coolpy7" -l "127.0.0.1:$port" -data "$tmp/data" -sys 1 -log warn "$@" 2>"$tmp/coolpy7.log" &
	pid=$!
	wait_port "$port"
}

start_mosquitto() { # port
	local port=$1
	rm -rf "$tmp/mosq" && mkdir -p "$tmp/mosq"
	cat >"$tmp/mosq/mosquitto.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
persistence true
persistence_location $tmp/mosq/
max_queued_messages 100000
max_inflight_messages 64
CONF
	/usr/sbin/mosquitto -c "$tmp/mosq/mosquitto.conf" 2>"$tmp/mosq.log" &
	pid=$!
	wait_port "$port"
}

for run in $RUNS; do
	case $run in
	qos1)
		port=$PORT
		for b in coolpy7-durable coolpy7-100ms mosquitto; do
			port=$((port + 1))
			case $b in
			coolpy7-durable) rm -rf "$tmp/data" && start_coolpy7 "$port" ;;
			coolpy7-100ms) rm -rf "$tmp/data" && start_coolpy7 "$port" -durability 100ms ;;
			mosquitto) start_mosquitto "$port" ;;
			esac
			log "qos1: $b"
			"$bench" p2p -p "$port" -c 100 -q 1 -s 64 -I 0 --inflight 64 --persistent \
				-duration 10s -drain 10s -rss-pid "$pid" --json --name persist-qos1 --broker "$b" \
				>"$here/results/persist-qos1-$b.json" 2>"$tmp/bench.log" || { tail "$tmp/bench.log"; exit 1; }
			tail -n 12 "$tmp/bench.log" >&2
			case $b in
			coolpy7*)
				# The group commit's evidence: store writes and fsyncs.
				mosquitto_sub -p "$port" -t '$SYS/broker/store/writes' -t '$SYS/broker/store/syncs' -v -C 2 -W 5 >&2 || true
				;;
			esac
			stop_broker
		done
		;;
	offline)
		port=$((PORT + 10))
		rm -rf "$tmp/data" && start_coolpy7 "$port" -mq 100000 -mc 0
		log "offline: 10,000 persistent subscribers connect and leave"
		"$bench" sub -p "$port" -c 10000 -q 1 -t 'bench/off/%i' --persistent -duration 2s --quiet 2>"$tmp/bench.log" ||
			{ tail "$tmp/bench.log"; exit 1; }
		rss0=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
		log "offline: 10,000 publishers, one message per $INTERVAL each, ${DURATION}s (broker RSS before: ${rss0} kB)"
		"$bench" pub -p "$port" -c 10000 -q 1 -s 64 -t 'bench/off/%i' -I "$INTERVAL" -duration "${DURATION}s" \
			-rss-pid "$pid" --json --name persist-offline --broker coolpy7-durable \
			>"$here/results/persist-offline.json" 2>"$tmp/bench.log" || { tail "$tmp/bench.log"; exit 1; }
		tail -n 12 "$tmp/bench.log" >&2
		rss1=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
		stop_broker
		# Opening replays the log into tables, so the tables then hold every
		# message: bytes per message without the log's preallocated files.
		t0=$(date +%s.%N)
		start_coolpy7 "$port" -mq 100000 -mc 0
		t1=$(date +%s.%N)
		rss2=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
		stop_broker
		disk=$(du -sb "$tmp/data" | cut -f1)
		sst=$(find "$tmp/data" -name '*.sst' -printf '%s\n' | awk '{s+=$1} END {print s+0}')
		startup=$(echo "$t1 - $t0" | bc)
		log "offline: broker RSS ${rss0} kB before, ${rss1} kB after; restart to listening ${startup}s, RSS then ${rss2} kB; data dir ${disk} B, tables ${sst} B"
		echo "{\"rss_before_kb\": $rss0, \"rss_after_kb\": $rss1, \"restart_s\": $startup, \"rss_restarted_kb\": $rss2, \"disk_bytes\": $disk, \"table_bytes\": $sst}" >"$here/results/persist-offline-disk.json"
		;;
	esac
done
