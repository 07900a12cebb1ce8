package chaski

import (
	"context"
	"testing"
	"time"
)

func hasEdge(n *Node, peer *Node) bool {
	for _, e := range n.Edges() {
		if e.PeerID == peer.ID() {
			return true
		}
	}
	return false
}

// TestEdgeEvictQuiet: a full node closes a quiet accepted edge for a
// newcomer, never one whose peer keeps publishing to it; with eviction
// disabled the newcomer is refused.
func TestEdgeEvictQuiet(t *testing.T) {
	for _, disabled := range []bool{false, true} {
		quiet := 300 * time.Millisecond
		if disabled {
			quiet = -1
		}
		hub := startNode(t, "127.0.0.1", Config{Name: "hub", MaxEdges: 4, EvictQuiet: quiet})
		if err := hub.Subscribe("t"); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		chatty := startNode(t, "127.0.0.1", Config{Name: "chatty"})
		var quietPeers []*Node
		for i := 0; i < 3; i++ {
			quietPeers = append(quietPeers, startNode(t, "127.0.0.1", Config{Name: "quiet"}))
		}
		for _, p := range append([]*Node{chatty}, quietPeers...) {
			if _, err := p.Connect(ctx, hub.Addr()); err != nil {
				t.Fatal(err)
			}
		}
		eventually(t, "hub full", func() bool { return len(hub.Edges()) == 4 })
		eventually(t, "chatty sees the hub's subscription", func() bool {
			for _, e := range chatty.Edges() {
				if len(e.Subscriptions) > 0 {
					return true
				}
			}
			return false
		})
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				_ = chatty.Publish(ctx, "t", []byte("x"))
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
		}()
		// Wait (by the clock the node uses) until the quiet peers are evictable.
		start := time.Now()
		eventually(t, "quiet period", func() bool { return time.Since(start) > 2*quiet })
		newcomer := startNode(t, "127.0.0.1", Config{Name: "newcomer"})
		_, err := newcomer.Connect(ctx, hub.Addr())
		if disabled {
			if err == nil {
				t.Fatal("eviction disabled: newcomer admitted to a full node")
			}
		} else {
			if err != nil {
				t.Fatalf("newcomer refused: %v", err)
			}
			eventually(t, "one quiet peer evicted", func() bool {
				left := 0
				for _, p := range quietPeers {
					if hasEdge(hub, p) {
						left++
					}
				}
				return left == 2 && hasEdge(hub, newcomer)
			})
		}
		if !hasEdge(hub, chatty) {
			t.Fatal("the publishing peer lost its edge")
		}
		close(stop)
		<-done
	}
}
