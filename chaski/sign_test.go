package chaski

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chaski-dev/chaski/chaski/wire"
)

// A signing publisher's messages arrive verified, one hop and two hops away,
// and its id is the one its key names.
func TestSignedPublishesArriveVerified(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "[::1]"} {
		t.Run(host, func(t *testing.T) {
			pub := startNode(t, host, Config{Name: "pub", SignPublishes: true})
			mid := startNode(t, host, Config{Name: "mid", Subscriptions: []string{"t"}, RequireSignatures: true})
			far := startNode(t, host, Config{Name: "far", Subscriptions: []string{"t"}, RequireSignatures: true})
			if pub.id != wire.NodeIDForKey(pub.signKey.Public().(ed25519.PublicKey)) {
				t.Fatal("the signing node's id is not derived from its key")
			}
			if !mid.Status().Signing || !mid.Status().RequireSignatures || !pub.Status().Signing || pub.Status().RequireSignatures {
				t.Fatalf("status: pub %+v mid %+v", pub.Status(), mid.Status())
			}
			connect(t, mid, pub)
			connect(t, far, mid)
			eventually(t, "both subscribers known to the publisher", func() bool {
				targets, _ := pub.publishTargets("t")
				e, ok := mid.Edge(far.ID())
				return len(targets) == 1 && ok && e.Subscribes("t")
			})
			const count = 50
			for i := 0; i < count; i++ {
				publish(t, pub, "t", fmt.Sprintf("m%d", i))
			}
			for _, sub := range []*Node{mid, far} {
				for i := 0; i < count; i++ {
					m := recv(t, sub)
					if string(m.Data) != fmt.Sprintf("m%d", i) || !m.Signed || m.FromID != pub.ID() || m.From != "pub" {
						t.Fatalf("%s got %q signed=%v from %s (%s), want m%d signed by %s", sub.Name(), m.Data, m.Signed, m.From, m.FromID, i, pub.ID())
					}
				}
			}
			if far.Status().Unsigned != 0 || far.Status().BadSignatures != 0 {
				t.Fatalf("far dropped something: %+v", far.Status())
			}
		})
	}
}

// A node that requires signatures delivers and relays nothing unsigned.
func TestRequireSignaturesDropsUnsigned(t *testing.T) {
	strict := startNode(t, "127.0.0.1", Config{Name: "strict", Subscriptions: []string{"t"}, RequireSignatures: true})
	beyond := startNode(t, "127.0.0.1", Config{Name: "beyond", Subscriptions: []string{"t"}})
	plain := startNode(t, "127.0.0.1", Config{Name: "plain"})
	signer := startNode(t, "127.0.0.1", Config{Name: "signer", SignPublishes: true})
	connect(t, strict, plain)
	connect(t, strict, signer)
	connect(t, beyond, strict)
	eventually(t, "subscriptions known", func() bool {
		a, _ := plain.publishTargets("t")
		b, _ := signer.publishTargets("t")
		e, ok := strict.Edge(beyond.ID())
		return len(a) == 1 && len(b) == 1 && ok && e.Subscribes("t")
	})
	const count = 20
	for i := 0; i < count; i++ {
		publish(t, plain, "t", fmt.Sprintf("unsigned-%d", i))
	}
	eventually(t, "the unsigned publishes counted as dropped", func() bool { return strict.Status().Unsigned == count })
	publish(t, signer, "t", "signed")
	for _, n := range []*Node{strict, beyond} {
		if m := recv(t, n); string(m.Data) != "signed" || !m.Signed {
			t.Fatalf("%s got %q (signed %v) first; only the signed message may arrive", n.Name(), m.Data, m.Signed)
		}
		select {
		case m := <-n.Messages():
			t.Fatalf("%s also got %q", n.Name(), m.Data)
		default:
		}
	}
}

// A signed publish naming another node's id, signed with the forger's own
// key, or with a signature that does not match, is not delivered, not
// relayed, and costs the forger its edge; the real publisher's messages all
// arrive.
func TestForgedSignatureRefused(t *testing.T) {
	for _, tc := range []struct {
		name  string
		forge func(forger *Node, victimOrigin wire.NodeID) []byte
		want  error
	}{
		{"another's id, forger's key", func(forger *Node, victim wire.NodeID) []byte {
			p := wire.Publish{ID: wire.MessageID{Origin: victim, Seq: 1 << 40}, Time: time.Now().UnixNano(), TTL: 8, Hops: 1, Name: "pub", Payload: []byte("forged")}
			f, _ := wire.AppendSignedPublishFrame(nil, "t", &p, forger.signKey, wire.NewDigestHash())
			return f
		}, wire.ErrKeyMismatch},
		{"own id, altered payload", func(forger *Node, _ wire.NodeID) []byte {
			p := wire.Publish{ID: wire.MessageID{Origin: forger.id, Seq: 1 << 40}, Time: time.Now().UnixNano(), TTL: 8, Hops: 0, Name: "attacker", Payload: []byte("forged")}
			f, _ := wire.AppendSignedPublishFrame(nil, "t", &p, forger.signKey, wire.NewDigestHash())
			f[len(f)-1] ^= 1
			return f
		}, wire.ErrBadSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pub := startNode(t, "127.0.0.1", Config{Name: "pub", SignPublishes: true})
			relay := startNode(t, "127.0.0.1", Config{Name: "relay", Subscriptions: []string{"t"}, RequireSignatures: true})
			victim := startNode(t, "127.0.0.1", Config{Name: "victim", Subscriptions: []string{"t"}, RequireSignatures: true})
			attacker := startNode(t, "127.0.0.1", Config{Name: "attacker", Subscriptions: []string{"t"}, SignPublishes: true})
			connect(t, relay, pub)
			connect(t, victim, relay)
			connect(t, victim, attacker)
			eventually(t, "subscriptions known", func() bool {
				e, ok := relay.Edge(victim.ID())
				targets, _ := pub.publishTargets("t")
				return ok && e.Subscribes("t") && len(targets) == 1
			})
			publish(t, pub, "t", "m0")
			if m := recv(t, victim); string(m.Data) != "m0" {
				t.Fatalf("got %q", m.Data)
			}
			events, stop := victim.Watch(64)
			defer stop()
			e := attacker.findEdge(victim.ID())
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			if err := e.sendData(ctx, tc.forge(attacker, pub.id)); err != nil {
				t.Fatal(err)
			}
			var reason string
			eventually(t, "the forger's edge dropped", func() bool {
				for {
					select {
					case ev := <-events:
						if d, ok := ev.(*EdgeDownEvent); ok && d.Edge.PeerID == attacker.ID() {
							reason = d.Reason
							return true
						}
					default:
						return false
					}
				}
			})
			if !strings.Contains(reason, tc.want.Error()) {
				t.Fatalf("edge dropped for %q, want %q", reason, tc.want)
			}
			if got := victim.Status().BadSignatures; got != 1 {
				t.Fatalf("bad signatures counted: %d", got)
			}
			for i := 1; i <= 20; i++ {
				publish(t, pub, "t", fmt.Sprintf("m%d", i))
			}
			for i := 1; i <= 20; i++ {
				if m := recv(t, victim); string(m.Data) != fmt.Sprintf("m%d", i) || m.FromID != pub.ID() || !m.Signed {
					t.Fatalf("message %d: got %q from %s signed=%v", i, m.Data, m.FromID, m.Signed)
				}
			}
		})
	}
}

// Peers of a version before signed publishes (their hello without "signed")
// get them as plain publishes, straight from the publisher and through a
// relay that knows them, small and large.
func TestSignedPublishToOlderPeer(t *testing.T) {
	pub := startNode(t, "127.0.0.1", Config{Name: "pub", SignPublishes: true, MaxFrameBody: 1 << 20})
	oldDirect := startNode(t, "127.0.0.1", Config{Name: "old-direct", Subscriptions: []string{"t"}, MaxFrameBody: 1 << 20})
	relay := startNode(t, "127.0.0.1", Config{Name: "relay", Subscriptions: []string{"t"}, MaxFrameBody: 1 << 20})
	oldFar := startNode(t, "127.0.0.1", Config{Name: "old-far", Subscriptions: []string{"t"}, MaxFrameBody: 1 << 20})
	oldDirect.noSignedHello, oldFar.noSignedHello = true, true
	connect(t, oldDirect, pub)
	connect(t, relay, pub)
	connect(t, oldFar, relay)
	eventually(t, "subscriptions known", func() bool {
		targets, _ := pub.publishTargets("t")
		e, ok := relay.Edge(oldFar.ID())
		return len(targets) == 2 && ok && e.Subscribes("t")
	})
	if e := pub.findEdge(oldDirect.ID()); e == nil || e.peerSigned {
		t.Fatal("the older peer's hello was taken as knowing signed publishes")
	}
	large := bytes.Repeat([]byte("L"), 200<<10) // past the scratch-buffer size
	payloads := [][]byte{[]byte("small-1"), large, []byte("small-2")}
	for _, p := range payloads {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		if err := pub.Publish(ctx, "t", p); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	for _, tc := range []struct {
		n      *Node
		signed bool
	}{{oldDirect, false}, {relay, true}, {oldFar, false}} {
		for i, want := range payloads {
			m := recv(t, tc.n)
			if !bytes.Equal(m.Data, want) || m.Signed != tc.signed || m.FromID != pub.ID() {
				t.Fatalf("%s message %d: %d bytes, signed %v (want %d bytes, signed %v)", tc.n.Name(), i, len(m.Data), m.Signed, len(want), tc.signed)
			}
		}
	}
	if s := oldFar.Status(); s.Unknown != 0 {
		t.Fatalf("the older peer was sent %d frames it does not know", s.Unknown)
	}
}

// Inject carries a message's signature on when it verifies, to peers that
// know signed publishes (a plain frame to others); it refuses an unsigned
// message on a node that requires signatures.
func TestInjectSigned(t *testing.T) {
	pub := startNode(t, "127.0.0.1", Config{Name: "pub", SignPublishes: true})
	bridge := startNode(t, "127.0.0.1", Config{Name: "bridge", Subscriptions: []string{"t"}})
	connect(t, bridge, pub)
	eventually(t, "subscription known", func() bool { targets, _ := pub.publishTargets("t"); return len(targets) == 1 })
	publish(t, pub, "t", "original")
	orig := recv(t, bridge)
	if !orig.Signed || len(orig.Signature) != wire.SigBlockLen {
		t.Fatalf("received: signed %v, %d signature bytes", orig.Signed, len(orig.Signature))
	}

	// Another mesh: the injecting node, a peer that knows signed publishes
	// and requires them, and an older one.
	inj := startNode(t, "127.0.0.1", Config{Name: "inj"})
	strict := startNode(t, "127.0.0.1", Config{Name: "strict", Subscriptions: []string{"t"}, RequireSignatures: true})
	old := startNode(t, "127.0.0.1", Config{Name: "old", Subscriptions: []string{"t"}})
	old.noSignedHello = true
	connect(t, strict, inj)
	connect(t, old, inj)
	eventually(t, "subscriptions known", func() bool { return len(inj.routeTargets("t", nil, nil)) == 2 })
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	copyOf := func(m *Message, data string) *Message {
		return &Message{Topic: m.Topic, Data: []byte(data), From: m.From, Time: m.Time, ID: m.ID, Signature: m.Signature}
	}
	if fresh, err := inj.Inject(ctx, copyOf(orig, "original")); err != nil || !fresh {
		t.Fatalf("inject: %v %v", fresh, err)
	}
	if m := recv(t, strict); string(m.Data) != "original" || !m.Signed || m.FromID != pub.ID() {
		t.Fatalf("strict got %q signed=%v from %s", m.Data, m.Signed, m.FromID)
	}
	if m := recv(t, old); string(m.Data) != "original" || m.Signed {
		t.Fatalf("old got %q signed=%v", m.Data, m.Signed)
	}
	// The signature of "original" over other data: injected unsigned.
	forged := copyOf(orig, "forged")
	forged.ID.Seq += 100
	if _, err := inj.Inject(ctx, forged); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, old); string(m.Data) != "forged" || m.Signed {
		t.Fatalf("old got %q signed=%v", m.Data, m.Signed)
	}
	eventually(t, "strict drops the unsigned copy", func() bool { return strict.Status().Unsigned == 1 })
	if inj.Status().BadSignatures != 1 {
		t.Fatalf("bad signatures at the injector: %d", inj.Status().BadSignatures)
	}
	// A node that requires signatures refuses to inject an unsigned message.
	if _, err := strict.Inject(ctx, &Message{Topic: "t", Data: []byte("x"), From: "nats", Time: time.Now(), ID: wire.MessageID{Seq: 1, Origin: wire.NodeID{1}}}); !errors.Is(err, ErrUnsigned) {
		t.Fatalf("strict injected an unsigned message: %v", err)
	}
}
