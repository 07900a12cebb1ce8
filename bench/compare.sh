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
if [ ! -x "$NATS_SERVER" ]; then
	say "installing nats-server into .tools/"
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
	say "round $r of $RUNS: chaski files (1 GiB in $FILE_DIR)"
	"$CHASKI" bench --quiet --json --mode files --file-size 1GiB --dir "$FILE_DIR" >"$OUT/files.$r.json"
	say "round $r of $RUNS: idle node"
	idle_rss >"$OUT/idle.$r.json"
done

echo
"$BIN/bench-report" -dir "$OUT"
echo
echo "(results: $OUT)"
