package chaski

import (
	"context"
	"strings"
	"testing"
	"time"
)

// Ports of the original's test_discovery.py and test_subscription.py. Where the
// original waited for a timeout it is short here (nobody answers); where a peer
// answers, the timeout is long and the call returns as soon as it pairs.

const (
	noAnswer = 500 * time.Millisecond
	answer   = waitTimeout
)

func discover(t *testing.T, n *Node, onPair OnPair, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitTimeout)
	defer cancel()
	if err := n.Discover(ctx, DiscoverOptions{OnPair: onPair, Timeout: timeout}); err != nil {
		t.Fatalf("%s discovery: %v", n.Name(), err)
	}
}

func requireConnected(t *testing.T, pairs ...[2]*Node) {
	t.Helper()
	for _, p := range pairs {
		a, b := p[0], p[1]
		eventually(t, a.Name()+"–"+b.Name()+" connected", func() bool { return connected(a, b) })
	}
}

func TestNoDiscovery(t *testing.T) {
	n := createNodes(t, "127.0.0.1", "A", "B")
	connect(t, n[0], n[1])
	discover(t, n[1], OnPairNone, noAnswer)
	waitEdges(t, map[*Node]int{n[0]: 1, n[1]: 1})
	requireConnected(t, [2]*Node{n[0], n[1]})
	// Nobody answered: n1 is the first of topic B, and says so.
	p := n[1].Pairings()
	if len(p) != 1 || !p[0].Paired || !p[0].First || p[0].Outcome != "first of topic, no peer found" {
		t.Fatalf("pairing state: %+v", p)
	}
}

func TestSingleServerConnectDiscovery(t *testing.T) {
	n := createNodes(t, "127.0.0.1", "A", "B", "B")
	connect(t, n[0], n[1])
	connect(t, n[0], n[2])
	waitEdges(t, map[*Node]int{n[0]: 2, n[1]: 1, n[2]: 1})
	n[1].markFirstForTest("B")
	discover(t, n[2], OnPairNone, answer)
	waitEdges(t, map[*Node]int{n[0]: 2, n[1]: 2, n[2]: 2})
	requireConnected(t, [2]*Node{n[0], n[1]}, [2]*Node{n[0], n[2]}, [2]*Node{n[1], n[2]})
	if p := n[2].Pairings(); !p[0].Paired || p[0].First || p[0].Peer != "Node1" {
		t.Fatalf("n2 pairing: %+v", p)
	}
}

func TestSingleDiscovery(t *testing.T) {
	n := createNodes(t, "127.0.0.1", "A", "B", "B")
	connect(t, n[1], n[0])
	connect(t, n[2], n[0])
	waitEdges(t, map[*Node]int{n[0]: 2, n[1]: 1, n[2]: 1})
	discover(t, n[1], OnPairNone, noAnswer) // nobody paired for B: n1 becomes first
	discover(t, n[2], OnPairNone, answer)   // n1 dials n2
	waitEdges(t, map[*Node]int{n[0]: 2, n[1]: 2, n[2]: 2})
	requireConnected(t, [2]*Node{n[0], n[1]}, [2]*Node{n[0], n[2]}, [2]*Node{n[1], n[2]})
}

func TestSingleDiscoveryWithDisconnection(t *testing.T) {
	n := createNodes(t, "127.0.0.1", "A", "B", "B")
	connect(t, n[1], n[0])
	connect(t, n[2], n[0])
	waitEdges(t, map[*Node]int{n[0]: 2, n[1]: 1, n[2]: 1})
	n[1].markFirstForTest("B")
	discover(t, n[2], OnPairDisconnect, answer)
	waitEdges(t, map[*Node]int{n[0]: 1, n[1]: 2, n[2]: 1})
	requireConnected(t, [2]*Node{n[0], n[1]}, [2]*Node{n[2], n[1]})
}

func TestMultipleDiscovery(t *testing.T) {
	n := createNodes(t, "127.0.0.1", "A", "B", "B", "B", "B", "B", "B")
	for _, c := range n[1:] {
		connect(t, c, n[0])
	}
	waitEdges(t, map[*Node]int{n[0]: 6})
	discover(t, n[1], OnPairNone, noAnswer)
	for _, c := range n[2:] {
		discover(t, c, OnPairNone, answer)
	}
	// The original expects n1 to dial everyone, an accident of its timing: any
	// node already paired for B may answer first, and only one pairing per
	// request is kept. So every later node keeps its hub edge, pairs with
	// another B node, and the B nodes form one connected group.
	defer func() {
		if t.Failed() {
			for _, c := range n {
				var names []string
				for _, e := range c.Edges() {
					names = append(names, e.Name)
				}
				t.Logf("%s: %v %+v", c.Name(), names, c.Pairings())
			}
		}
	}()
	eventually(t, "pairings settle", func() bool {
		if n[0].EdgeCount() != 6 {
			return false
		}
		for _, c := range n[2:] {
			if !connected(n[0], c) || !c.PairedFor("B") {
				return false
			}
		}
		return true
	})
	eventually(t, "B nodes connected without the hub", func() bool {
		reach := map[string]bool{"Node1": true}
		for changed := true; changed; {
			changed = false
			for _, c := range n[1:] {
				if !reach[c.Name()] {
					continue
				}
				for _, e := range c.Edges() {
					if e.Name != "Node0" && !reach[e.Name] {
						reach[e.Name], changed = true, true
					}
				}
			}
		}
		return len(reach) == 6
	})
	if t.Failed() {
		return
	}
	for _, c := range n[2:] {
		p := c.Pairings()
		if len(p) != 1 || p[0].First || p[0].Peer == "" || p[0].Peer == "Node0" {
			t.Fatalf("%s pairing: %+v", c.Name(), p)
		}
	}
}

func TestSingleSubscriptionNoDisconnect(t *testing.T) {
	n := createNodes(t, "127.0.0.1", "A", "B", "C", "A", "B", "C")
	for _, c := range n[1:] {
		connect(t, c, n[0])
	}
	waitEdges(t, map[*Node]int{n[0]: 5})
	discover(t, n[1], OnPairNone, noAnswer) // first of B
	discover(t, n[2], OnPairNone, noAnswer) // first of C
	discover(t, n[3], OnPairNone, answer)   // shares A with n0: paired at once
	discover(t, n[4], OnPairNone, answer)   // n1 dials
	discover(t, n[5], OnPairNone, answer)   // n2 dials
	requireConnected(t, [2]*Node{n[0], n[3]}, [2]*Node{n[1], n[4]}, [2]*Node{n[2], n[5]})
}

func TestSingleSubscriptionWithDisconnect(t *testing.T) {
	n := createNodes(t, "127.0.0.1", "A", "B", "C", "A,C", "B,A", "C")
	for _, c := range n[1:] {
		connect(t, c, n[0])
	}
	waitEdges(t, map[*Node]int{n[0]: 5})
	discover(t, n[1], OnPairDisconnect, noAnswer)
	discover(t, n[2], OnPairDisconnect, noAnswer)
	for _, c := range n[3:] {
		discover(t, c, OnPairDisconnect, answer)
	}
	requireConnected(t, [2]*Node{n[0], n[3]}, [2]*Node{n[0], n[4]}, [2]*Node{n[1], n[4]})
	// The original expects n2 to pair with n5; n3 is paired for C by then too,
	// and whichever answers first wins.
	eventually(t, "n5 paired with a C node", func() bool { return connected(n[2], n[5]) || connected(n[3], n[5]) })
	defer func() {
		if t.Failed() {
			for _, c := range n {
				var names []string
				for _, e := range c.Edges() {
					names = append(names, e.Name)
				}
				t.Logf("%s: %v %+v", c.Name(), names, c.Pairings())
			}
		}
	}()
	// n5 shares nothing with n0: it dropped its entry edge after pairing.
	eventually(t, "n0–n5 disconnected", func() bool { return !n[0].ConnectedTo(n[5].ID()) && !n[5].ConnectedTo(n[0].ID()) })
}

func TestDiscoveryEventsAreHonest(t *testing.T) {
	n := createNodes(t, "127.0.0.1", "A", "B")
	connect(t, n[1], n[0])
	events, stop := n[1].Watch(64)
	defer stop()
	discover(t, n[1], OnPairNone, noAnswer)
	deadline := time.After(waitTimeout)
	for {
		select {
		case ev := <-events:
			if p, ok := ev.(*PairedEvent); ok {
				if !p.First || p.Topic != "B" {
					t.Fatalf("paired event: %+v", p)
				}
				if !n[1].Status().Paired["B"] {
					t.Fatal("status does not show the topic as paired")
				}
				return
			}
		case <-deadline:
			t.Fatal("no paired event")
		}
	}
}

func TestUnsolicitedPairingIgnored(t *testing.T) {
	// A peer cannot impose a pairing (and with it on_pair disconnects) for
	// a discovery that is not running.
	n := createNodes(t, "127.0.0.1", "A", "B")
	connect(t, n[1], n[0])
	e := n[0].findEdge(n[1].ID())
	if n[0].markPaired(e, "A", make([]byte, 16)) {
		t.Fatal("pairing accepted without a discovery in progress")
	}
}

func TestConnectWithDiscovery(t *testing.T) {
	// n2 enters through n0 (which shares nothing with it), finds n1 for
	// topic B, pairs, and drops the entry edge.
	n := createNodes(t, "127.0.0.1", "A", "B", "B")
	connect(t, n[1], n[0])
	n[1].markFirstForTest("B")
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitTimeout)
	defer cancel()
	info, err := n[2].ConnectWithDiscovery(ctx, n[0].Addr(), DiscoverOptions{Timeout: answer})
	if err != nil || info.Name != "Node0" {
		t.Fatalf("%+v %v", info, err)
	}
	requireConnected(t, [2]*Node{n[1], n[2]})
	eventually(t, "entry edge gone", func() bool { return !n[2].ConnectedTo(n[0].ID()) })
}

// TestDiscoveryFindsUnpairedSubscriber is issue 13's three-node case: n1
// subscribes to alpha and beta but never ran discovery; n2 (alpha) connects
// to n1 and discovers; n3 (beta, gamma) connects to n2 and discovers. n3
// must pair with n1 for beta (two hops away, through n2, which does not
// subscribe to beta), and be the first only of gamma, which nobody has.
func TestDiscoveryFindsUnpairedSubscriber(t *testing.T) {
	// Three nodes as the command line starts them: none is paired at start.
	start := func(name, subs string) *Node {
		return startNode(t, "127.0.0.1", Config{Name: name, Subscriptions: strings.Split(subs, ","), TTL: 15})
	}
	n1, n2, n3 := start("n1", "alpha,beta"), start("n2", "alpha"), start("n3", "beta,gamma")
	connect(t, n2, n1)
	discover(t, n2, OnPairNone, noAnswer) // alpha: shared with n1 at once
	connect(t, n3, n2)
	// Half the timeout asks paired nodes only, the other half every
	// subscriber; generous for a loaded machine.
	discover(t, n3, OnPairNone, 6*time.Second)
	requireConnected(t, [2]*Node{n3, n1})
	got := map[string]PairingInfo{}
	for _, p := range n3.Pairings() {
		got[p.Topic] = p
	}
	if b := got["beta"]; !b.Paired || b.First || b.Peer != "n1" || b.Running {
		t.Fatalf("n3 beta: %+v (want paired with n1, not first)", b)
	}
	if g := got["gamma"]; !g.Paired || !g.First {
		t.Fatalf("n3 gamma: %+v (want first of topic)", g)
	}
	if !n1.PairedFor("beta") {
		t.Fatal("n1 not paired for beta")
	}
}
