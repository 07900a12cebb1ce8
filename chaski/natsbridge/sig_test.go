package natsbridge

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/chaski-dev/chaski/chaski"
)

func nextMsg(t *testing.T, n *chaski.Node) *chaski.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	m, err := n.Next(ctx)
	if err != nil {
		t.Fatalf("%s: %v", n.Name(), err)
	}
	return m
}

// A signed message crosses NATS into another mesh still signed (Chaski-Sig),
// so that a subscriber there that requires signatures takes it, as coming
// from its publisher; a copy with a changed payload, and a plain NATS
// message, reach that subscriber unsigned and are dropped.
func TestSignatureCrossesNATS(t *testing.T) {
	s := startServer(t, nil)
	pub := startNodeCfg(t, chaski.Config{Name: "pub", SignPublishes: true})
	bridgeA := startNodeCfg(t, chaski.Config{Name: "bridge-a", Subscriptions: []string{"chat"}})
	bridgeB := startNodeCfg(t, chaski.Config{Name: "bridge-b", Subscriptions: []string{"chat"}})
	sub := startNodeCfg(t, chaski.Config{Name: "sub", Subscriptions: []string{"chat"}, RequireSignatures: true})
	link(t, bridgeA, pub)
	link(t, sub, bridgeB)
	startBridge(t, bridgeA, Config{URLs: []string{s.URL()}})
	startBridge(t, bridgeB, Config{URLs: []string{s.URL()}})
	interest(t, []*natsServer{s}, "chaski.chat", 3) // two bridges (and a claim group) listen
	waitPeerSub(t, pub, bridgeA, "chat")
	waitPeerSub(t, bridgeB, sub, "chat")
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	go func() { // bridge-a's and bridge-b's own queues are not the test
		for range bridgeA.Messages() {
		}
	}()
	go func() {
		for range bridgeB.Messages() {
		}
	}()

	watch := natsConn(t, s.URL())
	seen := make(chan *nats.Msg, 4)
	if _, err := watch.Subscribe("chaski.chat", func(m *nats.Msg) {
		if m.Header.Get(HeaderSig) != "" {
			seen <- m
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := watch.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(ctx, "chat", []byte("signed-1")); err != nil {
		t.Fatal(err)
	}
	m := nextMsg(t, sub)
	if string(m.Data) != "signed-1" || !m.Signed || m.FromID != pub.ID() || !m.Bridged {
		t.Fatalf("got %q signed=%v bridged=%v from %s, want pub's signed message", m.Data, m.Signed, m.Bridged, m.FromID)
	}

	// The same headers, signature included, over another payload.
	var orig *nats.Msg
	select {
	case orig = <-seen:
	case <-time.After(waitTimeout):
		t.Fatal("no Chaski-Sig on the bridged message")
	}
	forged := nats.NewMsg("chaski.chat")
	for k, v := range orig.Header {
		forged.Header[k] = v
	}
	forged.Header.Set(HeaderID, pub.ID()+"/99")
	forged.Data = []byte("forged")
	if err := watch.PublishMsg(forged); err != nil {
		t.Fatal(err)
	}
	if err := watch.Publish("chaski.chat", []byte("plain-nats")); err != nil {
		t.Fatal(err)
	}
	if err := watch.Flush(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "both dropped as unsigned by the subscriber", func() bool { return sub.Status().Unsigned == 2 })
	if got := bridgeB.Status().BadSignatures; got != 1 {
		t.Fatalf("bridge-b counted %d bad signatures, want 1", got)
	}
	if err := pub.Publish(ctx, "chat", []byte("signed-2")); err != nil {
		t.Fatal(err)
	}
	if m := nextMsg(t, sub); string(m.Data) != "signed-2" || !m.Signed {
		t.Fatalf("got %q (signed %v) after the forgeries, want signed-2", m.Data, m.Signed)
	}
}
