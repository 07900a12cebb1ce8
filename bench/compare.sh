#!/usr/bin/env bash
# Chaski vs NATS vs raw TCP, measured in one run on this machine, printed as
# one table (docs/PERFORMANCE.md). Run by `make bench-compare`.
#
#   RUNS=3          rounds; every figure is the median over the rounds, and
#                   each round runs every reference and every Chaski figure
#   PING_REPS=3     ping-pong runs of raw TCP and of Chaski per round (the
#                   first raw one is part of the bulk run), alternating
#   FILE_DIR=DIR    where the 1 GiB file of files mode is written and
#                   received (default /dev/shm when it exists: the node is
#                   measured, not the disk)
#   DISK_DIR=DIR    a directory on a disk for the file-to-disk row (default:
#                   a directory under OUT, i.e. under $TMPDIR or /tmp; the
#                   row is left out when it is on tmpfs)
#   CMD_COUNT=N     messages of the command-level pub/sub rows (default 1M)
#   OUT=DIR         keep the JSON results there (default: a temp dir)
#   CHASKI=PATH     a chaski binary to measure instead of building bin/chaski
#
# All traffic stays on 127.0.0.1; every process started here is stopped at
# the end, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
GO=${GO:-go}
RUNS=${RUNS:-3}
PING_REPS=${PING_REPS:-3}
NATS_SERVER=${NATS_SERVER:-$ROOT/.tools/nats-server}
if [ -z "${FILE_DIR:-}" ]; then
	if [ -d /dev/shm ] && [ -w /dev/shm ]; then FILE_DIR=/dev/shm; else FILE_DIR=${TMPDIR:-/tmp}; fi
fi
OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/chaski-compare.XXXXXX")}
mkdir -p "$OUT"
BIN=$ROOT/bin
DISK_DIR=${DISK_DIR:-$OUT/disk}
mkdir -p "$DISK_DIR"
CMD_COUNT=${CMD_COUNT:-1000000}
NATS_CLI=${NATS_CLI:-$ROOT/.tools/nats}

pids=()
cleanup() {
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${pids[@]}"; do
		wait "$p" 2>/dev/null || true
	done
}
trap cleanup EXIT INT TERM

say() { printf '== %s\n' "$*" >&2; }

say "building chaski and the references"
mkdir -p "$BIN"
if [ -z "${CHASKI:-}" ]; then
	$GO build -o "$BIN/chaski" .
	CHASKI=$BIN/chaski
fi
(cd bench && $GO build -o "$BIN/rawtcp" ./rawtcp && $GO build -o "$BIN/natsbench" ./natsbench && $GO build -o "$BIN/bench-report" ./report)
if [ ! -x "$NATS_SERVER" ] || [ ! -x "$NATS_CLI" ]; then
	say "installing nats-server and the nats CLI into .tools/"
	make tools >&2
fi

say "starting nats-server on 127.0.0.1 (a free port)"
"$NATS_SERVER" -a 127.0.0.1 -p -1 >"$OUT/nats-server.log" 2>&1 &
pids+=($!)
NATS_URL=
for _ in $(seq 100); do
	NATS_URL=$(sed -n 's/.*Listening for client connections on \(127\.0\.0\.1:[0-9]*\).*/nats:\/\/\1/p' "$OUT/nats-server.log" | head -1)
	[ -n "$NATS_URL" ] && break
	sleep 0.1
done
[ -n "$NATS_URL" ] || { cat "$OUT/nats-server.log" >&2; echo "nats-server did not start" >&2; exit 1; }
say "nats-server at $NATS_URL"

idle_rss() {
	# A headless node, connected to nothing, after two seconds of idling.
	local log=$OUT/idle-node.log
	"$CHASKI" node --listen 127.0.0.1:0 --data-dir "$OUT/idle-data" >"$log" 2>&1 &
	local p=$!
	pids+=($p)
	sleep 2
	local kb
	kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status")
	kill "$p" 2>/dev/null || true
	wait "$p" 2>/dev/null || true
	echo "{\"rss_mib\": $(awk -v k="$kb" 'BEGIN {printf "%.1f", k/1024}')}"
}

now_ns() { date +%s%N; }

# free_port prints a port nobody listens on (the kernel's choice).
free_port() { "$BIN/rawtcp" -freeport; }

# wait_line waits until the log $1 holds the text $2.
wait_line() {
	for _ in $(seq 400); do
		if grep -q "$2" "$1" 2>/dev/null; then return 0; fi
		sleep 0.025
	done
	echo "no line with '$2' in $1" >&2
	return 1
}
wait_listening() { wait_line "$1" "listening"; }

# cmd_pubsub NAME [root]: the pub and sub commands as a user runs them,
# wall clock from starting the subscriber to its exit after CMD_COUNT
# messages (start-up included), printing to /dev/null.
cmd_pubsub() {
	local name=$1 via=${2:-} port rport= sub
	port=$(free_port)
	local connect=()
	if [ "$via" = root ]; then
		rport=$(free_port)
		"$CHASKI" node --root --listen "127.0.0.1:$rport" --data-dir "$OUT/root-data" >"$OUT/$name.root.log" 2>&1 &
		local root=$!
		pids+=($root)
		wait_listening "$OUT/$name.root.log"
		connect=(--connect "127.0.0.1:$rport")
	fi
	local t0 t1
	t0=$(now_ns)
	"$CHASKI" sub --listen "127.0.0.1:$port" "${connect[@]}" --count "$CMD_COUNT" --timeout 300s bench >/dev/null 2>"$OUT/$name.sub.log" &
	sub=$!
	pids+=($sub)
	if [ "$via" = root ]; then
		# The root must know the subscriber before the publisher starts.
		wait_line "$OUT/$name.root.log" "subscribes to bench"
		"$CHASKI" pub --connect "127.0.0.1:$rport" --count "$CMD_COUNT" --size 100 bench 2>"$OUT/$name.pub.log"
	else
		wait_listening "$OUT/$name.sub.log"
		"$CHASKI" pub --connect "127.0.0.1:$port" --count "$CMD_COUNT" --size 100 bench 2>"$OUT/$name.pub.log"
	fi
	wait "$sub"
	t1=$(now_ns)
	if [ -n "$rport" ]; then kill "$root" 2>/dev/null || true; wait "$root" 2>/dev/null || true; fi
	awk -v n="$CMD_COUNT" -v d=$((t1 - t0)) 'BEGIN {printf "{\"msgs_per_sec\": %.0f, \"seconds\": %.3f}\n", n/(d/1e9), d/1e9}'
}

# nats_pubsub: the nats CLI's bench pub and sub pair, timed the same way.
nats_pubsub() {
	local t0 t1 sub
	t0=$(now_ns)
	"$NATS_CLI" --server "$NATS_URL" bench sub bench --msgs "$CMD_COUNT" --size 100 --no-progress >"$OUT/natscli.sub.log" 2>&1 &
	sub=$!
	pids+=($sub)
	sleep 0.3 # the CLI prints nothing once subscribed
	"$NATS_CLI" --server "$NATS_URL" bench pub bench --msgs "$CMD_COUNT" --size 100 --no-progress >"$OUT/natscli.pub.log" 2>&1
	wait "$sub"
	t1=$(now_ns)
	awk -v n="$CMD_COUNT" -v d=$((t1 - t0)) 'BEGIN {printf "{\"msgs_per_sec\": %.0f, \"seconds\": %.3f}\n", n/(d/1e9), d/1e9}'
}

# cmd_ping: `chaski ping -i 5ms` against a headless node, as a user runs it.
cmd_ping() {
	local port node
	port=$(free_port)
	"$CHASKI" node --listen "127.0.0.1:$port" --data-dir "$OUT/ping-data" >"$OUT/pingnode.log" 2>&1 &
	node=$!
	pids+=($node)
	wait_listening "$OUT/pingnode.log"
	"$CHASKI" ping --json -c 440 -i 5ms "127.0.0.1:$port" >"$OUT/pingcmd.lines"
	kill "$node" 2>/dev/null || true
	wait "$node" 2>/dev/null || true
	"$BIN/bench-report" -pings "$OUT/pingcmd.lines" -skip 40
}

# dd_disk: dd writing 1 GiB into DISK_DIR, flushed like a received file.
dd_disk() {
	local s
	s=$(dd if=/dev/zero of="$DISK_DIR/dd.bin" bs=1M count=1024 conv=fsync 2>&1 | awk '/copied/ {for (i=1;i<=NF;i++) if ($i ~ /^s,?$/) print $(i-1)}')
	rm -f "$DISK_DIR/dd.bin"
	awk -v s="$s" 'BEGIN {printf "{\"mb_per_sec\": %.1f, \"seconds\": %s}\n", 1073741824/s/1e6, s}'
}
on_tmpfs() { [ "$(stat -f -c %T "$1" 2>/dev/null)" = tmpfs ]; }

for r in $(seq "$RUNS"); do
	say "round $r of $RUNS: raw TCP (4 GiB bulk, 20k pings)"
	"$BIN/rawtcp" >"$OUT/raw.$r.json"
	say "round $r of $RUNS: NATS (1M × 100 B)"
	"$BIN/natsbench" -server "$NATS_URL" -count 1000000 -size 100 >"$OUT/nats.$r.json"
	say "round $r of $RUNS: chaski direct (1M × 100 B)"
	"$CHASKI" bench --quiet --json --mode messages >"$OUT/direct.$r.json"
	say "round $r of $RUNS: chaski via root (1M × 100 B)"
	"$CHASKI" bench --quiet --json --mode messages --via-root >"$OUT/root.$r.json"
	say "round $r of $RUNS: chaski ping (20k)"
	"$CHASKI" bench --quiet --json --mode ping >"$OUT/ping.$r.json"
	# Where the kernel puts the two processes of a ping-pong (one vCPU or
	# two) decides most of its figure and changes from run to run, for
	# either program; more alternating ping-only runs make both medians
	# steadier.
	for k in $(seq 2 "$PING_REPS"); do
		say "round $r of $RUNS: ping-pongs, extra pair $k of $PING_REPS (raw TCP, chaski)"
		"$BIN/rawtcp" -bytes 1 >"$OUT/rawping.$r-$k.json"
		"$CHASKI" bench --quiet --json --mode ping >"$OUT/ping.$r-$k.json"
	done
	if command -v taskset >/dev/null; then
		# The same ping-pongs with both processes on one CPU: no wake-up of
		# an idle virtual CPU per round trip, which is what makes the
		# figures above swing between runs on a virtual machine.
		say "round $r of $RUNS: ping-pongs on one CPU (raw TCP, chaski)"
		taskset -c 0 "$BIN/rawtcp" -bytes 1 >"$OUT/raw1cpu.$r.json"
		taskset -c 0 "$CHASKI" bench --quiet --json --mode ping >"$OUT/ping1cpu.$r.json"
	fi
	say "round $r of $RUNS: command-level ping at 5 ms (raw TCP client, chaski ping -i 5ms)"
	"$BIN/rawtcp" -bytes 1 -pings 400 -interval 5ms >"$OUT/rawint.$r.json"
	cmd_ping >"$OUT/pingcmd.$r.json"
	say "round $r of $RUNS: command-level pub/sub ($CMD_COUNT × 100 B): nats bench pair, chaski direct, chaski via root"
	nats_pubsub >"$OUT/natscmd.$r.json"
	cmd_pubsub cmddirect >"$OUT/cmddirect.$r.json"
	cmd_pubsub cmdroot root >"$OUT/cmdroot.$r.json"
	say "round $r of $RUNS: chaski files (1 GiB in $FILE_DIR)"
	"$CHASKI" bench --quiet --json --mode files --file-size 1GiB --dir "$FILE_DIR" >"$OUT/files.$r.json"
	say "round $r of $RUNS: raw TCP file copy (1 GiB in $FILE_DIR, no hash)"
	"$BIN/rawtcp" -copy 1073741824 -dir "$FILE_DIR" >"$OUT/copy.$r.json"
	if ! on_tmpfs "$DISK_DIR"; then
		say "round $r of $RUNS: dd and chaski files (1 GiB into $DISK_DIR)"
		dd_disk >"$OUT/dd.$r.json"
		"$CHASKI" bench --quiet --json --mode files --file-size 1GiB --dir "$DISK_DIR" >"$OUT/filesdisk.$r.json"
		"$BIN/rawtcp" -copy 1073741824 -dir "$DISK_DIR" >"$OUT/copydisk.$r.json"
	fi
	say "round $r of $RUNS: idle node"
	idle_rss >"$OUT/idle.$r.json"
done

echo
"$BIN/bench-report" -dir "$OUT"

# --- NATS bridge (issue 16) -------------------------------------------------
# One Go benchmark run (chaski/natsbridge BenchmarkBridge): on one in-process
# nats-server, 1M × 100 B through the bridge each way and plain nats.go
# pub→sub (with and without the bridge's headers) in the same run; the
# bridging node is a process of its own, its peak RSS is reported.
say "NATS bridge (1M × 100 B each way, in-process nats-server)"
if $GO test -run '^$' -bench '^BenchmarkBridge$' -benchtime 1000000x ./chaski/natsbridge/ >"$OUT/natsbridge.txt" 2>&1; then
	# CPU per message (µs): the benchmark process (nats-server, the nats.go
	# clients, the Chaski node) plus the bridging child. With every CPU busy
	# a run cannot go faster than CPUs / CPU per message, so the ratio of
	# two runs' CPU per message is the best ratio of their rates.
	awk -v cpus="$(getconf _NPROCESSORS_ONLN)" '
		/^BenchmarkBridge\// {
			name = $1; sub(/^BenchmarkBridge\//, "", name); sub(/-[0-9]+$/, "", name)
			for (i = 2; i < NF; i++) {
				if ($(i+1) == "msgs/s") rate[name] = $i
				if ($(i+1) == "peak-rss-MiB") rss[name] = $i
				if ($(i+1) == "bench-cpu-µs/msg") cpu[name] += $i
				if ($(i+1) == "bridge-cpu-µs/msg") { cpu[name] += $i; br[name] = $i }
			}
		}
		function row(label, n) {
			printf "  %s  %9.0f  (%.0f%% of plain, %.0f%% of plain with headers)   CPU %.2f µs/msg (bridge %.2f): at most %.0f%% of plain   bridging node peak RSS %s MiB\n", label, rate[n], 100*rate[n]/p, 100*rate[n]/rate["plain-headers"], cpu[n], br[n], 100*cpu["plain"]/cpu[n], rss[n]
		}
		END {
			p = rate["plain"]
			printf "\nNATS bridge, msgs/s (100 B)      plain nats.go %.0f (CPU %.2f µs/msg)   with the bridge headers %.0f (CPU %.2f µs/msg)   with Chaski-Id alone %.0f (CPU %.2f µs/msg)\n", p, cpu["plain"], rate["plain-headers"], cpu["plain-headers"], rate["plain-1header"], cpu["plain-1header"]
			row("mesh → NATS", "mesh-to-nats")
			row("NATS → mesh", "nats-to-mesh")
			printf "  (the bridging node runs with batched announcements, --nats-batch)\n"
			printf "  (on %d CPUs plain nats.go could reach %.0f msgs/s at its CPU per message)\n", cpus, cpus*1e6/cpu["plain"]
		}' "$OUT/natsbridge.txt"
else
	cat "$OUT/natsbridge.txt" >&2
	echo "NATS bridge benchmark failed (see above)" >&2
fi
echo
echo "(results: $OUT)"
