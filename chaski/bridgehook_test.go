package chaski

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/chaski-dev/chaski/chaski/wire"
)

type tapRecord struct {
	mu    sync.Mutex
	msgs  []*Message
	local []bool
}

func (r *tapRecord) tap(topic string) *Tap {
	return &Tap{
		Wants: func(t string) bool { return t == topic },
		Observe: func(m *Message, local bool) {
			r.mu.Lock()
			r.msgs = append(r.msgs, m)
			r.local = append(r.local, local)
			r.mu.Unlock()
		},
	}
}

func (r *tapRecord) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

// A tap sees the node's own publications (even with no peer) and what it
// receives on the topic, with ids; injected messages are relayed and
// delivered once, marked as bridged all the way, and never tapped.
func TestTapAndInject(t *testing.T) {
	x := startNode(t, "127.0.0.1", Config{Name: "x", Subscriptions: []string{"t"}})
	var rec tapRecord
	remove := x.AddTap(rec.tap("t"))
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := x.Publish(ctx, "t", []byte("alone")); err != nil {
		t.Fatalf("publish with a tap and no peer: %v", err)
	}
	if err := x.Publish(ctx, "other", []byte("no")); !errors.Is(err, ErrNoSubscribers) {
		t.Fatalf("topic no tap wants: %v", err)
	}
	y := startNode(t, "127.0.0.1", Config{Name: "y", Subscriptions: []string{"t"}})
	z := startNode(t, "127.0.0.1", Config{Name: "z", Subscriptions: []string{"t"}})
	if _, err := x.Connect(ctx, y.Addr()); err != nil {
		t.Fatal(err)
	}
	if _, err := y.Connect(ctx, z.Addr()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "routes", func() bool {
		ex, ok1 := x.Edge(y.ID())
		ey, ok2 := y.Edge(z.ID())
		return ok1 && ok2 && ex.Subscribes("t") && ey.Subscribes("t")
	})
	if err := z.Publish(ctx, "t", []byte("from z")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "tap sees z's message", func() bool { return rec.len() == 2 })
	rec.mu.Lock()
	if m := rec.msgs[0]; !rec.local[0] || string(m.Data) != "alone" || m.ID.Origin != x.NodeID() || m.Seq != 1 {
		t.Errorf("own publication: %+v local=%v", m, rec.local[0])
	}
	if m := rec.msgs[1]; rec.local[1] || string(m.Data) != "from z" || m.FromID != z.ID() || m.Bridged {
		t.Errorf("received: %+v local=%v", m, rec.local[1])
	}
	rec.mu.Unlock()
	if m, err := x.Next(ctx); err != nil || string(m.Data) != "from z" {
		t.Fatalf("x: %v %v", m, err)
	}
	if m, err := y.Next(ctx); err != nil || string(m.Data) != "from z" {
		t.Fatalf("y: %v %v", m, err)
	}

	id := wire.MessageID{Origin: wire.NodeID{0xaa, 1}, Seq: 7}
	at := time.Unix(1700000000, 0)
	fresh, err := x.Inject(ctx, &Message{Topic: "t", Data: []byte("injected"), From: "elsewhere", Time: at, Via: "nats", ID: id})
	if err != nil || !fresh {
		t.Fatalf("inject: %v %v", fresh, err)
	}
	fresh, err = x.Inject(ctx, &Message{Topic: "t", Data: []byte("injected"), From: "elsewhere", Time: at, ID: id})
	if err != nil || fresh {
		t.Fatalf("second inject of the same id: fresh=%v %v", fresh, err)
	}
	for _, n := range []*Node{x, y, z} {
		m, err := n.Next(ctx)
		if err != nil || string(m.Data) != "injected" || m.ID != id || !m.Bridged || m.From != "elsewhere" || !m.Time.Equal(at) {
			t.Fatalf("%s got %+v %v", n.Name(), m, err)
		}
		if n == z && m.Hops != 2 {
			t.Errorf("z: hops %d, want 2", m.Hops)
		}
	}
	// The copy relayed back towards x by nobody, and never tapped.
	if rec.len() != 2 {
		t.Errorf("tap saw an injected message")
	}
	remove()
	if err := z.Publish(ctx, "t", []byte("after")); err != nil {
		t.Fatal(err)
	}
	if m, err := x.Next(ctx); err != nil || string(m.Data) != "after" {
		t.Fatalf("x: %v %v", m, err)
	}
	if rec.len() != 2 {
		t.Errorf("removed tap still observes")
	}
	select {
	case m := <-x.Messages():
		t.Fatalf("x got an extra %q", m.Data)
	case <-time.After(100 * time.Millisecond):
	}
}
