package chaski

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// lanNode starts a node that finds others only through the rendezvous
// directory dir (no multicast: tests send nothing off loopback).
func lanNode(t *testing.T, name, dir string, cfg Config) *Node {
	t.Helper()
	cfg.Name = name
	if cfg.LAN == nil {
		cfg.LAN = &LANConfig{}
	}
	cfg.LAN.NoMulticast = true
	cfg.LAN.Dir = filepath.Join(dir, "rendezvous") // created 0700 by the node
	return startNode(t, "127.0.0.1", cfg)
}

func nearbyByName(n *Node, name string) (NearbyNode, bool) {
	for _, p := range n.Nearby() {
		if p.Name == name {
			return p, true
		}
	}
	return NearbyNode{}, false
}

// Two nodes on one machine, no address given to either: they find each
// other in the rendezvous directory, connect because they share "chat",
// and messages flow both ways. A third node with no shared topic is listed
// but not connected, and a node that closes leaves the list.
func TestLANLoopbackAutoConnect(t *testing.T) {
	dir := t.TempDir()
	start := time.Now()
	a := lanNode(t, "alice", dir, Config{Subscriptions: []string{"chat"}})
	b := lanNode(t, "bob", dir, Config{Subscriptions: []string{"chat", "news"}})
	c := lanNode(t, "carol", dir, Config{Subscriptions: []string{"other"}})
	eventually(t, "alice and bob connected", func() bool { return connected(a, b) })
	t.Logf("connected %v after the first start", time.Since(start).Round(10*time.Millisecond))

	publish(t, a, "chat", "hello bob")
	if m := recv(t, b); string(m.Data) != "hello bob" {
		t.Fatalf("bob got %q", m.Data)
	}
	publish(t, b, "chat", "hello alice")
	if m := recv(t, a); string(m.Data) != "hello alice" {
		t.Fatalf("alice got %q", m.Data)
	}

	eventually(t, "carol listed by alice as sharing no topic", func() bool {
		p, ok := nearbyByName(a, "carol")
		return ok && p.Status == "no shared topic" && !p.Connected
	})
	if a.ConnectedTo(c.ID()) || b.ConnectedTo(c.ID()) {
		t.Fatal("carol shares no topic but was connected")
	}
	p, _ := nearbyByName(a, "bob")
	if !p.Connected || p.Via != "local" || !slices.Equal(p.Topics, []string{"chat", "news"}) || p.TLS || p.ID != b.ID() {
		t.Fatalf("alice's entry for bob: %+v", p)
	}

	// An edge the user closes stays closed: the policy does not dial again.
	if err := a.CloseEdge(b.ID()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "bob listed as disconnected", func() bool {
		p, ok := nearbyByName(a, "bob")
		return ok && p.Status == "disconnected"
	})
	time.Sleep(1500 * time.Millisecond) // three policy rounds
	if connected(a, b) {
		t.Fatal("the policy reconnected an edge the user closed")
	}

	// Subscribing later is announced; a node that leaves leaves the list.
	if err := c.Subscribe("chat"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "carol connected after subscribing to chat", func() bool { return a.ConnectedTo(c.ID()) || b.ConnectedTo(c.ID()) })
	closeNode(t, c)
	eventually(t, "carol gone from alice's list", func() bool { _, ok := nearbyByName(a, "carol"); return !ok })
}

// --lan-topics: only the chosen topics are announced, and only they are a
// reason to connect (a hello tells the peer every subscription).
func TestLANAdvertisedTopics(t *testing.T) {
	dir := t.TempDir()
	a := lanNode(t, "a", dir, Config{Subscriptions: []string{"chat", "secret-project"}, LAN: &LANConfig{Topics: []string{"chat"}}})
	b := lanNode(t, "b", dir, Config{Subscriptions: []string{"secret-project"}})
	eventually(t, "a listed by b", func() bool { _, ok := nearbyByName(b, "a"); return ok })
	p, _ := nearbyByName(b, "a")
	if !slices.Equal(p.Topics, []string{"chat"}) {
		t.Fatalf("a announced %v, want only chat", p.Topics)
	}
	eventually(t, "b refused by a: no shared topic", func() bool {
		p, ok := nearbyByName(a, "b")
		return ok && p.Status == "no shared topic"
	})
	if a.EdgeCount() != 0 {
		t.Fatal("a connected for a topic it does not announce")
	}
}

func closeNode(t *testing.T, n *Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// TLS: nodes with certificates of one CA connect; a plaintext node never
// auto-connects to a TLS one (nor the reverse) and the list says why; a
// node whose certificate does not verify is not connected.
func TestLANTLSPolicy(t *testing.T) {
	dir := t.TempDir()
	is := newIssuer(t)
	tlsCfg := func(name string, iss *issuer) Config {
		id := iss.identity(t, name)
		return Config{Subscriptions: []string{"chat"}, ServerTLS: id.ServerConfig(), ClientTLS: id.ClientConfig()}
	}
	a := lanNode(t, "a", dir, tlsCfg("a", is))
	b := lanNode(t, "b", dir, tlsCfg("b", is))
	plain := lanNode(t, "plain", dir, Config{Subscriptions: []string{"chat"}})
	foreign := lanNode(t, "foreign", dir, tlsCfg("foreign", newIssuer(t)))
	eventually(t, "a and b connected over TLS", func() bool { return connected(a, b) })
	eventually(t, "plain refused by a: TLS mismatch", func() bool {
		p, ok := nearbyByName(a, "plain")
		return ok && strings.HasPrefix(p.Status, "TLS mismatch")
	})
	eventually(t, "a refused by plain: TLS mismatch", func() bool {
		p, ok := nearbyByName(plain, "a")
		return ok && strings.HasPrefix(p.Status, "TLS mismatch")
	})
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range []*Node{a, b, plain, foreign} {
				for _, p := range n.Nearby() {
					t.Logf("%s lists %s: %s", n.Name(), p.Name, p.Status)
				}
			}
		}
	})
	eventually(t, "the foreign certificate refused", func() bool {
		for _, n := range []*Node{a, b} {
			if p, ok := nearbyByName(n, "foreign"); ok && strings.HasPrefix(p.Status, "certificate did not verify") {
				return true
			}
		}
		if p, ok := nearbyByName(foreign, "a"); ok && strings.HasPrefix(p.Status, "certificate did not verify") {
			return true
		}
		p, ok := nearbyByName(foreign, "b")
		return ok && strings.HasPrefix(p.Status, "certificate did not verify")
	})
	for _, n := range []*Node{a, b, plain, foreign} {
		for _, p := range n.Nearby() {
			t.Logf("%s lists %s: %s", n.Name(), p.Name, p.Status)
		}
	}
	if plain.EdgeCount() != 0 || foreign.EdgeCount() != 0 {
		t.Fatalf("edges: plain %d, foreign %d", plain.EdgeCount(), foreign.EdgeCount())
	}
}

// BrowseNearby (`chaski lan`) lists without announcing or connecting.
func TestBrowseNearby(t *testing.T) {
	dir := t.TempDir()
	a := lanNode(t, "a", dir, Config{Subscriptions: []string{"chat"}, LAN: &LANConfig{NoAutoConnect: true}})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	list, err := BrowseNearby(ctx, LANConfig{NoMulticast: true, Dir: filepath.Join(dir, "rendezvous")}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != a.ID() || list[0].Address != a.Addr() || !slices.Equal(list[0].Topics, []string{"chat"}) {
		t.Fatalf("browsed %+v", list)
	}
	if a.EdgeCount() != 0 || len(a.Nearby()) != 0 {
		t.Fatal("browsing announced or connected")
	}
}

// The same on [::1]: the rendezvous file carries the IPv6 address.
func TestLANLoopbackIPv6(t *testing.T) {
	dir := t.TempDir()
	a := lanNode(t, "a6", dir, Config{Listen: "[::1]:0", Subscriptions: []string{"chat"}})
	b := lanNode(t, "b6", dir, Config{Listen: "[::1]:0", Subscriptions: []string{"chat"}})
	eventually(t, "a6 and b6 connected over [::1]", func() bool { return connected(a, b) })
	eventually(t, "b6 listed by a6", func() bool { _, ok := nearbyByName(a, "b6"); return ok })
	p, _ := nearbyByName(a, "b6")
	if p.Address != b.Addr() || !strings.HasPrefix(p.Address, "[::1]:") {
		t.Fatalf("a6 lists b6 at %q, b6 listens on %s", p.Address, b.Addr())
	}
	publish(t, b, "chat", "over v6")
	if m := recv(t, a); string(m.Data) != "over v6" {
		t.Fatalf("got %q", m.Data)
	}
}
