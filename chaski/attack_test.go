package chaski

// Attacks of issue 20 (hostile peers, round two), each reproduced on
// loopback with a bounded count and time. Each test fails on the code before
// its fix; docs/SECURITY.md gives the figures measured with them.

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chaski-dev/chaski/chaski/wire"
)

// heapAfterGC is the heap in use once garbage is collected.
func heapAfterGC() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// procStatus reads a field (VmRSS, VmHWM) of /proc/self/status in KiB; 0
// where there is no /proc.
func procStatus(field string) uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			v, _ := strconv.ParseUint(strings.Fields(rest)[0], 10, 64)
			return v
		}
	}
	return 0
}

const mib = 1 << 20

// ctrlHeld sums the control frames an edge holds in its lane.
func ctrlHeld(e *edge) int {
	e.q.mu.Lock()
	defer e.q.mu.Unlock()
	n := 0
	for _, f := range e.q.ctrl {
		n += len(f)
	}
	return n
}

// A peer that sends padded echo pings and never reads must not make the node
// keep their pongs: the control lane is bounded in bytes, and the memory is
// handed back once the peer is gone. Before the fix the lane held 512 pongs
// (here 512 MiB) plus the writer's batch.
func TestAttackEchoPingsBoundedMemory(t *testing.T) {
	n := startNode(t, "127.0.0.1", Config{Name: "victim"})
	base := heapAfterGC()
	p := dialRaw(t, n.Addr())
	p.handshake()
	eventually(t, "raw edge up", func() bool { return n.EdgeCount() == 1 })
	e := n.findEdge(p.connID())
	if e == nil {
		t.Fatal("no edge for the raw peer")
	}
	pad := 1 * mib
	count := 160
	if s := os.Getenv("CHASKI_ATTACK_PAD_MIB"); s != "" { // figures for docs/SECURITY.md
		v, _ := strconv.Atoi(s)
		pad = v*mib - wire.PingFixedLen // the largest that fits a frame body
		count = 1 << 30
	}
	dur := 20 * time.Second
	if s := os.Getenv("CHASKI_ATTACK_SECONDS"); s != "" {
		v, _ := strconv.Atoi(s)
		dur = time.Duration(v) * time.Second
	}
	ping := wire.AppendPingFrame(nil, wire.KindPing, &wire.Ping{ID: 7, Echo: true, Padding: make([]byte, pad)})
	var peakHeld int
	var peakHeap uint64
	start := time.Now()
	sent := 0
	for i := 0; i < count && time.Since(start) < dur; i++ {
		_ = p.conn.SetWriteDeadline(time.Now().Add(waitTimeout))
		if _, err := p.conn.Write(ping); err != nil {
			t.Fatalf("after %d pings: %v", i, err)
		}
		sent++
		if i%16 == 15 {
			peakHeld = max(peakHeld, ctrlHeld(e))
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peakHeap = max(peakHeap, ms.HeapInuse)
		}
	}
	// The node has read every ping by the time the last write returns
	// (minus the socket's buffer); look once more.
	time.Sleep(100 * time.Millisecond)
	peakHeld = max(peakHeld, ctrlHeld(e))
	during := heapAfterGC()
	t.Logf("%d pings of %d KiB in %v: control lane at most %d KiB, heap in use %d MiB after GC (base %d MiB, peak seen %d MiB), VmHWM %d MiB",
		sent, pad>>10, time.Since(start).Round(time.Millisecond), peakHeld>>10, during/mib, base/mib, peakHeap/mib, procStatus("VmHWM")>>10)
	if limit := mib + pad + 64; peakHeld > limit {
		t.Errorf("the control lane held %d bytes (limit %d): the pongs of a peer that does not read are kept", peakHeld, limit)
	}
	if grown := int64(during) - int64(base); grown > 64*mib {
		t.Errorf("heap grew by %d MiB while the peer pinged without reading", grown/mib)
	}
	p.conn.Close()
	eventually(t, "the attacker's edge gone", func() bool { return n.EdgeCount() == 0 })
	eventually(t, "memory back", func() bool { return heapAfterGC() < base+32*mib })
	t.Logf("after the attacker left: heap in use %d MiB, VmRSS %d MiB", heapAfterGC()/mib, procStatus("VmRSS")>>10)
	stillServes(t, n)
}
