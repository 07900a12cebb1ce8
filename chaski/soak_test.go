package chaski

import (
	"bytes"
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

var soakDuration = flag.Duration("soak", 8*time.Second, "how long TestSoak churns nodes (make test keeps it short)")

// TestSoak runs 16 nodes: 6 stable ones in a full mesh that publish and
// exchange files, and 10 that are killed (no goodbye) and restarted on the
// same address while traffic flows, each attached to three stable nodes.
// Every message between stable nodes (always directly connected, so "both
// ends up") must arrive exactly once; churned nodes must never see a
// duplicate; edges between stable nodes must survive the load; after the
// churn no goroutine or heap growth remains. Order is not asserted here: a
// node that rejoins mid-stream relays an origin's later messages while
// earlier ones may still be queued on the direct path, so order holds only
// while the topology is stable (the ring and mesh tests check that).
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("soak test skipped in -short mode")
	}
	baseGoroutines := runtime.NumGoroutine()
	var baseMem runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&baseMem)

	const nStable, nChurn = 6, 10
	cfg := func(name string) Config {
		// Kills are noticed by EOF, not keep-alive; a slow keep-alive keeps
		// a starved CI machine from dropping healthy edges.
		return Config{Name: name, Subscriptions: []string{"soak"}, PingInterval: 3 * time.Second,
			Logger:            testLogger(t),
			ReconnectAttempts: 50, ReconnectBase: 20 * time.Millisecond, ReconnectMax: 200 * time.Millisecond,
			AcceptFiles: true, DownloadDir: t.TempDir()}
	}
	// Nodes are started and closed here rather than with startNode, so that
	// nothing keeps them reachable when the heap is measured at the end.
	mustStart := func(c Config) *Node {
		c.Listen = "127.0.0.1:0"
		n, err := Start(c)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	stable := make([]*Node, nStable)
	for i := range stable {
		stable[i] = mustStart(cfg(fmt.Sprintf("s%d", i)))
	}
	for i := range stable {
		for j := i + 1; j < nStable; j++ {
			connect(t, stable[i], stable[j])
		}
	}
	type churner struct {
		mu   sync.Mutex
		node *Node
		addr string
	}
	churn := make([]*churner, nChurn)
	for i := range churn {
		n := mustStart(cfg(fmt.Sprintf("c%d", i)))
		churn[i] = &churner{node: n, addr: n.Addr()}
		for k := 0; k < 3; k++ {
			connect(t, stable[(i+k)%nStable], n) // stable nodes dial, so they reconnect
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), *soakDuration+2*time.Minute)
	defer cancel()
	// A healthy edge between two stable nodes must survive the load: per-
	// sender order only holds along paths that stay up.
	var stableDrops []string
	var dropMu sync.Mutex
	var watchWG sync.WaitGroup
	for _, n := range stable {
		events, _ := n.Watch(4096) // closed when the node closes
		watchWG.Add(1)
		go func(n *Node) {
			defer watchWG.Done()
			for ev := range events {
				if d, ok := ev.(*EdgeDownEvent); ok && d.Edge.Name[0] == 's' && !n.closing.Load() {
					dropMu.Lock()
					if len(stableDrops) == 0 {
						// What the readers wait on when the first one goes.
						t.Logf("first stable edge dropped (%s–%s: %s); readers not reading the socket:\n%s",
							n.Name(), d.Edge.Name, d.Reason, busyReaders())
					}
					stableDrops = append(stableDrops, n.Name()+"–"+d.Edge.Name+": "+d.Reason)
					dropMu.Unlock()
				}
			}
		}(n)
	}
	stop := make(chan struct{})
	// An attacker beside the honest mesh (attack_test.go): forged
	// publishes, echo pings from peers that never read, dial-back claims.
	attack := startSoakAttack(t, stable, stop)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	report := func(err error) {
		select {
		case errs <- err:
		default: // enough already reported; never block a consumer
		}
	}

	// Receivers: every stable node counts per-origin sequences.
	type tally struct {
		mu   sync.Mutex
		seen map[string]bool
		got  map[string]int
	}
	tallies := make([]*tally, nStable)
	for i, n := range stable {
		tallies[i] = &tally{seen: map[string]bool{}, got: map[string]int{}}
		wg.Add(1)
		go func(n *Node, tl *tally) {
			defer wg.Done()
			for m := range n.Stream(ctx) {
				var seq int
				fmt.Sscanf(string(m.Data), "%d", &seq)
				if string(m.Data) == "forged" {
					report(fmt.Errorf("%s: delivered a forgery as from %s via %s", n.Name(), m.From, m.Via))
					continue
				}
				if m.From[0] != 's' {
					continue // churned nodes do not publish
				}
				tl.mu.Lock()
				k := fmt.Sprintf("%s/%d", m.From, seq)
				if tl.seen[k] {
					report(fmt.Errorf("%s: duplicate %s", n.Name(), k))
				}
				tl.seen[k] = true
				tl.got[m.From]++
				tl.mu.Unlock()
			}
		}(n, tallies[i])
	}
	// Churned nodes: no duplicates, whatever they miss while down.
	drainChurner := func(n *Node) {
		defer wg.Done()
		seen := map[string]bool{}
		for m := range n.Messages() {
			k := fmt.Sprintf("%s/%d", m.FromID, m.Seq)
			if seen[k] {
				report(fmt.Errorf("%s: duplicate %s", n.Name(), k))
			}
			seen[k] = true
		}
	}
	for _, c := range churn {
		wg.Add(1)
		go drainChurner(c.node)
	}
	// Publishers.
	sent := make([]int, nStable)
	var pubWG sync.WaitGroup
	for i, n := range stable {
		pubWG.Add(1)
		go func(i int, n *Node) {
			defer pubWG.Done()
			for seq := 0; ; seq++ {
				select {
				case <-stop:
					sent[i] = seq
					return
				default:
				}
				if err := n.Publish(ctx, "soak", []byte(fmt.Sprint(seq))); err != nil {
					report(fmt.Errorf("%s publish: %v", n.Name(), err))
					sent[i] = seq
					return
				}
				if seq%50 == 0 {
					time.Sleep(time.Millisecond) // keep the machine usable for the churn
				}
			}
		}(i, n)
	}
	// Files between stable nodes during the churn.
	pubWG.Add(1)
	go func() {
		defer pubWG.Done()
		for round := 0; ; round++ {
			select {
			case <-stop:
				return
			default:
			}
			data := make([]byte, 64<<10)
			_, _ = rand.Read(data)
			from := stable[round%nStable]
			if _, err := from.PushFile(ctx, "soak", bytes.NewReader(data), fmt.Sprintf("f%d.bin", round), int64(len(data)), nil); err != nil {
				// Receivers include churned nodes that may die mid-transfer.
				continue
			}
		}
	}()
	// Chaos: kill and restart churned nodes.
	deadline := time.Now().Add(*soakDuration)
	for round := 0; time.Now().Before(deadline); round++ {
		c := churn[round%nChurn]
		c.mu.Lock()
		c.node.crashForTest()
		cctx, ccancel := context.WithTimeout(context.Background(), waitTimeout)
		_ = c.node.Close(cctx)
		ccancel()
		var n *Node
		for attempt := 0; ; attempt++ {
			cf := cfg(fmt.Sprintf("c%d", round%nChurn))
			cf.Listen = c.addr
			var err error
			if n, err = Start(cf); err == nil {
				break
			}
			if attempt > 100 {
				t.Fatalf("restart on %s: %v", c.addr, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		c.node = n
		c.mu.Unlock()
		wg.Add(1)
		go drainChurner(n)
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	pubWG.Wait()
	attack.finish(stable)

	dropMu.Lock()
	if len(stableDrops) > 0 {
		t.Errorf("edges between stable nodes dropped under load: %v", stableDrops)
	}
	dropMu.Unlock()
	// Every stable publisher's messages reach every other stable node.
	defer func() {
		if t.Failed() {
			t.Logf("sent %v", sent)
			for i, tl := range tallies {
				tl.mu.Lock()
				t.Logf("s%d got %v (dropped as older than the window: %d)", i, tl.got, stable[i].msgFilter.lateDrops())
				tl.mu.Unlock()
			}
			for _, n := range stable {
				for _, e := range n.Edges() {
					if e.Name[0] == 's' {
						t.Logf("%s→%s out %d in %d since %v dialed %v", n.Name(), e.Name, e.MsgsOut, e.MsgsIn, e.Since.Format("15:04:05.000"), e.Dialed)
					}
				}
			}
			for len(errs) > 0 {
				t.Log(<-errs)
			}
		}
	}()
	// What is still queued drains after the publishers stop. The lanes
	// bound it (up to four times SendQueueBytes per edge for relays), and
	// a long soak under the race detector ends with them full: give it
	// time in proportion, but never less than the usual wait.
	drainWait := max(waitTimeout, *soakDuration)
	waitFor(t, drainWait, "stable nodes received everything", func() bool {
		for i, tl := range tallies {
			tl.mu.Lock()
			for j, s := range sent {
				if i != j && tl.got[fmt.Sprintf("s%d", j)] != s {
					tl.mu.Unlock()
					return false
				}
			}
			tl.mu.Unlock()
		}
		return true
	})
	// Churned nodes were reconnected by the stable ones.
	for _, c := range churn {
		n := c.node
		eventually(t, n.Name()+" reconnected", func() bool { return n.EdgeCount() >= 1 })
	}
	total := 0
	for _, s := range sent {
		total += s
	}
	t.Logf("soak: %d messages published by stable nodes over %v with %d kills", total, *soakDuration, int(*soakDuration/(100*time.Millisecond)))

	cancel()
	for _, c := range churn {
		cctx, ccancel := context.WithTimeout(context.Background(), waitTimeout)
		_ = c.node.Close(cctx)
		ccancel()
	}
	for _, n := range stable {
		cctx, ccancel := context.WithTimeout(context.Background(), waitTimeout)
		_ = n.Close(cctx)
		ccancel()
	}
	wg.Wait()
	watchWG.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// No growth after the churn: goroutines back to the baseline and the
	// heap within a small margin of where it started.
	stable, churn, tallies, attack = nil, nil, nil, nil
	eventually(t, "goroutines back to baseline", func() bool { return runtime.NumGoroutine() <= baseGoroutines+2 })
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	if after.HeapInuse > baseMem.HeapInuse+32<<20 {
		t.Fatalf("heap grew from %d to %d bytes", baseMem.HeapInuse, after.HeapInuse)
	}
}

// busyReaders returns the stacks of edge readers that are not waiting for
// the socket: the ones a peer's writer may be waiting for.
func busyReaders() string {
	buf := make([]byte, 64<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "(*edge).readLoop") && !strings.Contains(g, "(*Reader).fill") && !strings.Contains(g, "(*Reader).ReadFrame") {
			out = append(out, g)
		}
	}
	return fmt.Sprintf("%d of them\n%s", len(out), strings.Join(out, "\n\n"))
}
