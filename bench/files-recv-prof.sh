#!/usr/bin/env bash
# Where a file receiver's CPU goes (docs/PERFORMANCE.md, "Files,
# 2026-12-03"): a `chaski node` receives a 1 GiB random file from /dev/shm,
# sent twice first (the sender's tree cache warm, the receiver past its
# first fresh pages), then a third time under `perf record -g -p` of the
# receiver only. Prints that send's rate and the receiver's CPU (from /proc,
# inflated by perf's own overhead), then the share of the receiver's samples
# under each step (--children: a function's share includes its callees).
# Wrap it in the machine's CPU lock when others share it.
#
#   bench/files-recv-prof.sh BIN        DIR=/dev/shm/chaski-prof by default
# Linux only (perf, /proc). Everything stays on 127.0.0.1.
set -euo pipefail
BIN=$(readlink -f "${1:?chaski binary}")
DIR=${DIR:-/dev/shm/chaski-prof}
rm -rf "$DIR"; mkdir -p "$DIR/recv"
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT
dd if=/dev/urandom of="$DIR/src" bs=1M count=1024 status=none
sleep 3 # the tree cache takes no file changed within 2 s of its pass
"$BIN" node --sub files --accept-files --download-dir "$DIR/recv" --data-dir "$DIR/rdata" \
	--listen 127.0.0.1:0 --json >"$DIR/recv.log" 2>/dev/null &
pid=$!
for _ in $(seq 100); do grep -q '"listening"' "$DIR/recv.log" 2>/dev/null && break; sleep 0.1; done
addr=$(grep -o '"address":"[^"]*"' "$DIR/recv.log" | head -1 | cut -d'"' -f4)
send() { "$BIN" send --connect "$addr" --data-dir "$DIR/sdata" --progress=false files "$DIR/src" >/dev/null 2>&1; rm -f "$DIR"/recv/src*; }
send; send
perf record -F 2000 -g -p "$pid" -o "$DIR/perf.data" -- sleep 4 >/dev/null 2>&1 &
rec=$!
sleep 0.3
c0=$(awk '{print $14+$15}' "/proc/$pid/stat"); t0=$(date +%s.%N)
send
t1=$(date +%s.%N); c1=$(awk '{print $14+$15}' "/proc/$pid/stat")
wait "$rec"
echo "send: $(echo "$t0 $t1" | awk '{printf "%.0f MB/s", 1073741824/($2-$1)/1e6}'), receiver CPU $(awk -v a="$c0" -v b="$c1" -v t="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f s", (b-a)/t}')"
perf report -i "$DIR/perf.data" --children --sort sym --stdio -g none 2>/dev/null |
	grep -E '\] (\S+\.\(\*edge\)\.readLoop|_copy_to_iter|\S+\.\(\*groupChecker\)\.check|\S+\.\(\*diskWriter\)\.loop|shmem_alloc_and_add_folio|copy_folio_from_iter_atomic|handle_softirqs|runtime\.schedule|runtime\.gcBgMarkWorker|runtime\.mallocgc)$'
