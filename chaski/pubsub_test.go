package chaski

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// Ports of the original's test_streamer.py stream scenarios, then beyond them.

func TestStream(t *testing.T) {
	forHosts(t, func(t *testing.T, host string) {
		p := startNode(t, host, Config{Name: "Producer", Subscriptions: []string{"topic1"}})
		c := startNode(t, host, Config{Name: "Consumer", Subscriptions: []string{"topic1"}})
		runTransmission(t, p, c, "topic1")
	})
}

func TestStreamContextEnds(t *testing.T) {
	p := startNode(t, "127.0.0.1", Config{Name: "p", Subscriptions: []string{"t"}})
	c := startNode(t, "127.0.0.1", Config{Name: "c", Subscriptions: []string{"t"}})
	connect(t, c, p)
	eventually(t, "subscription known", func() bool { e, ok := p.Edge(c.ID()); return ok && e.Subscribes("t") })
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan []string)
	go func() {
		var seen []string
		for m := range c.Stream(ctx) {
			seen = append(seen, string(m.Data))
			if len(seen) == 3 {
				cancel()
			}
		}
		got <- seen
	}()
	for i := 0; i < 3; i++ {
		publish(t, p, "t", fmt.Sprint(i))
	}
	select {
	case seen := <-got:
		if len(seen) != 3 || seen[0] != "0" || seen[2] != "2" {
			t.Fatalf("stream saw %v", seen)
		}
	case <-time.After(waitTimeout):
		t.Fatal("stream did not end with its context")
	}
}

func TestPublisherDoesNotReceiveOwnMessage(t *testing.T) {
	a := startNode(t, "127.0.0.1", Config{Name: "a", Subscriptions: []string{"t"}})
	b := startNode(t, "127.0.0.1", Config{Name: "b", Subscriptions: []string{"t"}})
	c := startNode(t, "127.0.0.1", Config{Name: "c", Subscriptions: []string{"t"}})
	// A triangle: the message could come back to a through b or c.
	connect(t, a, b)
	connect(t, b, c)
	connect(t, c, a)
	waitEdges(t, map[*Node]int{a: 2, b: 2, c: 2})
	publish(t, a, "t", "once")
	for _, n := range []*Node{b, c} {
		if m := recv(t, n); string(m.Data) != "once" || m.From != "a" {
			t.Fatalf("%s got %q from %s", n.Name(), m.Data, m.From)
		}
	}
	// A marker from b proves the path is drained; a must see only that.
	publish(t, b, "t", "marker")
	if m := recv(t, a); string(m.Data) != "marker" {
		t.Fatalf("publisher received %q", m.Data)
	}
}

func TestStreamChain(t *testing.T) {
	// test_stream_chain: six subscribers in a line, five hops.
	nodes := make([]*Node, 6)
	for i := range nodes {
		nodes[i] = startNode(t, "127.0.0.1", Config{Name: fmt.Sprintf("Producer%d", i), Subscriptions: []string{"topic1"}})
	}
	for i := 0; i < 5; i++ {
		connect(t, nodes[i], nodes[i+1])
	}
	waitEdges(t, map[*Node]int{nodes[0]: 1, nodes[1]: 2, nodes[4]: 2, nodes[5]: 1})
	for i := 0; i < 6; i++ {
		publish(t, nodes[0], "topic1", fmt.Sprintf("test%d", i))
		m := recv(t, nodes[5])
		if string(m.Data) != fmt.Sprintf("test%d", i) || m.Hops != 5 || m.From != "Producer0" {
			t.Fatalf("got %q hops %d from %s", m.Data, m.Hops, m.From)
		}
	}
}

func TestRootNode(t *testing.T) {
	// test_root_node: two subscribers connected only through a root.
	root := startNode(t, "127.0.0.1", Config{Name: "root", Root: true})
	s1 := startNode(t, "127.0.0.1", Config{Name: "s1", Subscriptions: []string{"topic1"}})
	s2 := startNode(t, "127.0.0.1", Config{Name: "s2", Subscriptions: []string{"topic1"}})
	connect(t, s1, root)
	connect(t, s2, root)
	waitEdges(t, map[*Node]int{root: 2})
	publish(t, s1, "topic1", "test0")
	if m := recv(t, s2); string(m.Data) != "test0" || m.Via != "root" {
		t.Fatalf("relayed: %q via %s", m.Data, m.Via)
	}
	for i := 1; i < 6; i++ {
		publish(t, root, "topic1", fmt.Sprintf("test%d", i))
		if m := recv(t, s2); string(m.Data) != fmt.Sprintf("test%d", i) {
			t.Fatalf("from root: %q", m.Data)
		}
	}
	// The root relays without queueing what it relays (the original's root grew
	// an unread queue of everything).
	if len(root.Messages()) != 0 {
		t.Fatalf("root queued %d relayed messages", len(root.Messages()))
	}
}

func TestNonSubscriberDoesNotReceiveOrRelay(t *testing.T) {
	a := startNode(t, "127.0.0.1", Config{Name: "a", Subscriptions: []string{"t"}})
	mid := startNode(t, "127.0.0.1", Config{Name: "mid", Subscriptions: []string{"other"}})
	c := startNode(t, "127.0.0.1", Config{Name: "c", Subscriptions: []string{"t"}})
	connect(t, a, mid)
	connect(t, mid, c)
	waitEdges(t, map[*Node]int{mid: 2})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := a.Publish(ctx, "t", []byte("x")); !errors.Is(err, ErrNoSubscribers) {
		t.Fatalf("publish with no subscribed neighbour: %v", err)
	}
	if mid.Status().MsgsIn != 0 {
		t.Fatal("non-subscriber received a message it did not ask for")
	}
}

func TestSubscribeAtRunTime(t *testing.T) {
	a := startNode(t, "127.0.0.1", Config{Name: "a"})
	b := startNode(t, "127.0.0.1", Config{Name: "b"})
	connect(t, a, b)
	if err := b.Subscribe("news"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a learns b's subscription", func() bool { e, ok := a.Edge(b.ID()); return ok && e.Subscribes("news") })
	publish(t, a, "news", "hello")
	if m := recv(t, b); string(m.Data) != "hello" {
		t.Fatalf("got %q", m.Data)
	}
	if err := b.Unsubscribe("news"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a learns b unsubscribed", func() bool { e, ok := a.Edge(b.ID()); return ok && !e.Subscribes("news") })
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := a.Publish(ctx, "news", []byte("x")); !errors.Is(err, ErrNoSubscribers) {
		t.Fatalf("publish after unsubscribe: %v", err)
	}
}

// meshDelivery has every node publish count messages and checks that every
// other node receives each exactly once and in per-sender order.
func meshDelivery(t *testing.T, nodes []*Node, count int) {
	t.Helper()
	type key struct {
		from string
		seq  int
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(nodes)*2)
	for _, rcv := range nodes {
		wg.Add(1)
		go func(rcv *Node) {
			defer wg.Done()
			want := (len(nodes) - 1) * count
			last := map[string]int{}
			seen := map[key]bool{}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			for i := 0; i < want; i++ {
				m, err := rcv.Next(ctx)
				if err != nil {
					errs <- fmt.Errorf("%s: got %d of %d: %v", rcv.Name(), i, want, err)
					return
				}
				var seq int
				fmt.Sscanf(string(m.Data), "%d", &seq)
				k := key{m.From, seq}
				if seen[k] {
					errs <- fmt.Errorf("%s: duplicate %v", rcv.Name(), k)
					return
				}
				seen[k] = true
				if m.From == rcv.Name() {
					errs <- fmt.Errorf("%s received its own message", rcv.Name())
					return
				}
				if prev, ok := last[m.From]; ok && seq != prev+1 {
					errs <- fmt.Errorf("%s: from %s got %d after %d", rcv.Name(), m.From, seq, prev)
					return
				}
				last[m.From] = seq
			}
		}(rcv)
	}
	for _, pub := range nodes {
		wg.Add(1)
		go func(pub *Node) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			for i := 0; i < count; i++ {
				if err := pub.Publish(ctx, "mesh", []byte(fmt.Sprint(i))); err != nil {
					errs <- fmt.Errorf("%s publish %d: %v", pub.Name(), i, err)
					return
				}
			}
		}(pub)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func meshNodes(t *testing.T, n int) []*Node {
	nodes := make([]*Node, n)
	for i := range nodes {
		nodes[i] = startNode(t, "127.0.0.1", Config{Name: fmt.Sprintf("m%d", i), Subscriptions: []string{"mesh"}})
	}
	return nodes
}

func TestRingExactlyOnceInOrder(t *testing.T) {
	nodes := meshNodes(t, 8)
	for i := range nodes {
		connect(t, nodes[i], nodes[(i+1)%len(nodes)])
	}
	want := map[*Node]int{}
	for _, n := range nodes {
		want[n] = 2
	}
	waitEdges(t, want)
	meshDelivery(t, nodes, 1000)
}

func TestFullMeshExactlyOnceInOrder(t *testing.T) {
	nodes := meshNodes(t, 8)
	for i := range nodes {
		for j := i + 1; j < len(nodes); j++ {
			connect(t, nodes[i], nodes[j])
		}
	}
	want := map[*Node]int{}
	for _, n := range nodes {
		want[n] = 7
	}
	waitEdges(t, want)
	meshDelivery(t, nodes, 1000)
}

func TestSlowConsumerLosesNothingAndKeepsPinging(t *testing.T) {
	// A tiny subscriber queue and a consumer that pauses: the publisher is
	// slowed down by backpressure, nothing is lost, and the edge survives
	// keep-alive checks while the consumer is stalled.
	p := startNode(t, "127.0.0.1", Config{Name: "p", PingInterval: 50 * time.Millisecond, SendQueueBytes: 64 << 10})
	c := startNode(t, "127.0.0.1", Config{Name: "c", Subscriptions: []string{"t"}, MessageBuffer: 4, PingInterval: 50 * time.Millisecond})
	connect(t, c, p)
	eventually(t, "subscription known", func() bool { e, ok := p.Edge(c.ID()); return ok && e.Subscribes("t") })
	const total = 20000
	payload := make([]byte, 512)
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		for i := 0; i < total; i++ {
			if err := p.Publish(ctx, "t", payload); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	// Stall long enough for several keep-alive periods.
	time.Sleep(600 * time.Millisecond)
	if p.EdgeCount() != 1 || c.EdgeCount() != 1 {
		t.Fatal("edge dropped while the consumer was stalled")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := 0; i < total; i++ {
		if _, err := c.Next(ctx); err != nil {
			t.Fatalf("received %d of %d: %v", i, total, err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	e, _ := c.Edge(p.ID())
	if e.Latency.Samples == 0 {
		t.Fatal("no ping answered during the transfer")
	}
}

func TestDisablePropagationKeepsLocalDelivery(t *testing.T) {
	// The original's defect 18: disabling propagation stopped local delivery.
	a := startNode(t, "127.0.0.1", Config{Name: "a", Subscriptions: []string{"t"}})
	b := startNode(t, "127.0.0.1", Config{Name: "b", Subscriptions: []string{"t"}})
	c := startNode(t, "127.0.0.1", Config{Name: "c", Subscriptions: []string{"t"}})
	connect(t, a, b)
	connect(t, b, c)
	waitEdges(t, map[*Node]int{b: 2})
	b.SetPropagation(false)
	publish(t, a, "t", "x")
	if m := recv(t, b); string(m.Data) != "x" {
		t.Fatalf("b got %q", m.Data)
	}
	b.SetPropagation(true)
	publish(t, a, "t", "y")
	if m := recv(t, b); string(m.Data) != "y" {
		t.Fatalf("b got %q", m.Data)
	}
	// c only saw what b relayed while propagation was on.
	if m := recv(t, c); string(m.Data) != "y" {
		t.Fatalf("c got %q, want only the relayed message", m.Data)
	}
}

func TestFlushWritesEverythingQueued(t *testing.T) {
	// Publish returns once frames are queued; Flush returns once they are
	// on the socket, and Close flushes before saying goodbye.
	p := startNode(t, "127.0.0.1", Config{Name: "p", PingInterval: time.Hour})
	c := startNode(t, "127.0.0.1", Config{Name: "c", Subscriptions: []string{"t"}, MessageBuffer: 20000})
	connect(t, p, c)
	eventually(t, "subscription known", func() bool { e, ok := p.Edge(c.ID()); return ok && e.Subscribes("t") })
	before, _ := p.Edge(c.ID())
	const total = 3000
	payload := string(make([]byte, 1000))
	for i := 0; i < total; i++ {
		publish(t, p, "t", payload)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	after, _ := p.Edge(c.ID())
	if sent := after.BytesOut - before.BytesOut; sent < total*1000 {
		t.Fatalf("only %d bytes on the socket after Flush", sent)
	}
	for i := 0; i < total; i++ {
		publish(t, p, "t", payload)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2*total; i++ {
		if _, err := c.Next(ctx); err != nil {
			t.Fatalf("received %d of %d after the publisher closed: %v", i, 2*total, err)
		}
	}
}
