#!/usr/bin/env bash
# A/B of two chaski binaries at the command level, a 1 GiB file sent from
# /dev/shm to a receiving `chaski node` (docs/PERFORMANCE.md, "Files,
# 2026-12-03"). Wrap it in the machine's CPU lock when others share it.
#
#   bench/files-ab.sh send OLD NEW [PAIRS]
#       one receiver (NEW); `chaski send` by OLD and by NEW alternating, each
#       with a data dir of its own that persists across its sends (so NEW's
#       tree cache is warm after its first send, which is reported as such).
#       Prints the wall clock of each send (start-up and connect included),
#       the sender's CPU time (user + system), the receiver's CPU time during
#       the send, and the sender's peak RSS.
#   bench/files-ab.sh recv OLD NEW [PAIRS]
#       two receivers (OLD and NEW), one sender (NEW, tree cache warmed
#       first) sending to each in turn; prints each receiver's CPU time per
#       send (utime + stime from /proc) and both receivers' peak RSS.
#
#   DIR=/dev/shm/chaski-ab   where the source, the data dirs and the received
#                            files live (removed at the end)
# Linux only (/proc). Everything stays on 127.0.0.1.
set -euo pipefail
mode=${1:?send or recv}
OLD=$(readlink -f "${2:?old binary}")
NEW=$(readlink -f "${3:?new binary}")
PAIRS=${4:-4}
DIR=${DIR:-/dev/shm/chaski-ab}
mkdir -p "$DIR"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$DIR"
}
trap cleanup EXIT
SRC=$DIR/src1g
dd if=/dev/urandom of="$SRC" bs=1M count=1024 status=none
# The tree cache takes no file changed within 2 s of its pass.
sleep 3

# receiver NAME BIN: starts a node; sets ADDR and PID.
receiver() {
	rm -rf "$DIR/recv-$1" "$DIR/rdata-$1"
	mkdir -p "$DIR/recv-$1"
	"$2" node --sub files --accept-files --download-dir "$DIR/recv-$1" --data-dir "$DIR/rdata-$1" \
		--listen 127.0.0.1:0 --json >"$DIR/recv-$1.log" 2>/dev/null &
	PID=$!
	pids+=("$PID")
	for _ in $(seq 100); do grep -q '"listening"' "$DIR/recv-$1.log" 2>/dev/null && break; sleep 0.1; done
	ADDR=$(grep -o '"address":"[^"]*"' "$DIR/recv-$1.log" | head -1 | cut -d'"' -f4)
	[ -n "$ADDR" ] || { echo "receiver $1 did not start" >&2; exit 1; }
}
# send BIN DATADIR ADDR RECVDIR: one send; prints "SECONDS MAXRSS_KB CPU_SECONDS".
send() {
	rm -f "$4"/src1g*
	local t0 t1
	t0=$(date +%s.%N)
	/usr/bin/time -f "%M %U %S" -o "$DIR/time.out" "$1" send --connect "$3" --data-dir "$2" --progress=false files "$SRC" >/dev/null 2>"$DIR/send.err" ||
		{ cat "$DIR/send.err" >&2; exit 1; }
	t1=$(date +%s.%N)
	echo "$(echo "$t0 $t1" | awk '{printf "%.3f", $2-$1}') $(awk '{printf "%d %.2f", $1, $2+$3}' "$DIR/time.out")"
}
cputicks() { awk '{print $14+$15}' "/proc/$1/stat"; }
mbps() { awk -v s="$1" 'BEGIN {printf "%.0f MB/s", 1073741824/s/1e6}'; }

case $mode in
send)
	receiver r "$NEW"
	for i in $(seq "$PAIRS"); do
		for side in old new; do
			bin=$OLD; [ $side = new ] && bin=$NEW
			c0=$(cputicks "$PID")
			read -r s rss cpu < <(send "$bin" "$DIR/sdata-$side" "$ADDR" "$DIR/recv-r")
			c1=$(cputicks "$PID")
			note=""; [ "$i" = 1 ] && note=" (tree cache empty)"
			echo "$side: $s s, $(mbps "$s"), sender CPU $cpu s, receiver CPU $(awk -v a="$c0" -v b="$c1" -v t="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", (b-a)/t}') s, sender peak RSS $((rss / 1024)) MiB$note"
		done
	done
	echo "receiver peak RSS: $(awk '/VmHWM/ {printf "%.1f MiB", $2/1024}' "/proc/$PID/status")"
	;;
recv)
	receiver old "$OLD"; AOLD=$ADDR; POLD=$PID
	receiver new "$NEW"; ANEW=$ADDR; PNEW=$PID
	send "$NEW" "$DIR/sdata" "$ANEW" "$DIR/recv-new" >/dev/null # warms the tree cache
	for _ in $(seq "$PAIRS"); do
		for side in old new; do
			addr=$AOLD; pid=$POLD; [ $side = new ] && { addr=$ANEW; pid=$PNEW; }
			c0=$(cputicks "$pid")
			read -r s _ _ < <(send "$NEW" "$DIR/sdata" "$addr" "$DIR/recv-$side")
			c1=$(cputicks "$pid")
			echo "receiver $side: $(mbps "$s"), receiver CPU $(awk -v a="$c0" -v b="$c1" -v t="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f s", (b-a)/t}')"
		done
	done
	echo "receiver peak RSS: old $(awk '/VmHWM/ {printf "%.1f MiB", $2/1024}' "/proc/$POLD/status"), new $(awk '/VmHWM/ {printf "%.1f MiB", $2/1024}' "/proc/$PNEW/status")"
	;;
*)
	echo "usage: $0 send|recv OLD NEW [PAIRS]" >&2
	exit 2
	;;
esac
