package chaski

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
)

// Ports of the original's test_connection.py, run on IPv4 and IPv6, with polling
// instead of its 3 s sleeps.

var hosts = []struct{ name, host string }{{"IPv4", "127.0.0.1"}, {"IPv6", "::1"}}

func forHosts(t *testing.T, f func(t *testing.T, host string)) {
	for _, h := range hosts {
		t.Run(h.name, func(t *testing.T) {
			host := h.host
			if host == "::1" {
				host = "[::1]"
			}
			f(t, host)
		})
	}
}

func TestSingleConnections(t *testing.T) {
	forHosts(t, func(t *testing.T, host string) {
		n := createNodes(t, host, letters(4)...)
		connect(t, n[0], n[1])
		connect(t, n[2], n[3])
		waitEdges(t, map[*Node]int{n[0]: 1, n[1]: 1, n[2]: 1, n[3]: 1})
		if !connected(n[0], n[1]) || !connected(n[2], n[3]) || connected(n[0], n[2]) {
			t.Fatal("wrong pairs connected")
		}
	})
}

func star(t *testing.T, host string, count int) []*Node {
	n := createNodes(t, host, letters(count)...)
	for _, c := range n[1:] {
		connect(t, c, n[0])
	}
	want := map[*Node]int{n[0]: count - 1}
	for _, c := range n[1:] {
		want[c] = 1
	}
	waitEdges(t, want)
	return n
}

func TestMultipleConnections(t *testing.T) {
	forHosts(t, func(t *testing.T, host string) {
		n := star(t, host, 5)
		for _, c := range n[1:] {
			if !connected(n[0], c) {
				t.Fatalf("%s not connected to hub", c.Name())
			}
		}
	})
}

func TestDisconnection(t *testing.T) {
	forHosts(t, func(t *testing.T, host string) {
		n := star(t, host, 5)
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := n[0].Close(ctx); err != nil {
			t.Fatal(err)
		}
		if n[0].EdgeCount() != 0 {
			t.Fatalf("closed hub still has %d edges", n[0].EdgeCount())
		}
		waitEdges(t, map[*Node]int{n[1]: 0, n[2]: 0, n[3]: 0, n[4]: 0})
	})
}

func TestEdgesDisconnection(t *testing.T) {
	forHosts(t, func(t *testing.T, host string) {
		n := createNodes(t, host, letters(6)...)
		for _, c := range n[1:] {
			connect(t, c, n[0])
		}
		for _, c := range n[:5] {
			connect(t, c, n[5]) // n0 → n5 returns the existing edge
		}
		waitEdges(t, map[*Node]int{n[0]: 5, n[5]: 5, n[1]: 2, n[2]: 2, n[3]: 2, n[4]: 2})
		edges := n[0].Edges()
		for i, e := range edges {
			if err := n[0].CloseEdge(e.PeerID); err != nil {
				t.Fatal(err)
			}
			eventually(t, "hub edge count", func() bool { return n[0].EdgeCount() == 4-i })
		}
		waitEdges(t, map[*Node]int{n[1]: 1, n[2]: 1, n[3]: 1, n[4]: 1, n[5]: 4})
	})
}

func TestEdgesClientOrphan(t *testing.T) {
	forHosts(t, func(t *testing.T, host string) {
		n := star(t, host, 5)
		for _, c := range n[1:] {
			if err := c.CloseEdge(n[0].ID()); err != nil {
				t.Fatal(err)
			}
		}
		waitEdges(t, map[*Node]int{n[0]: 0, n[1]: 0, n[2]: 0, n[3]: 0, n[4]: 0})
	})
}

func TestEdgesServerOrphan(t *testing.T) {
	forHosts(t, func(t *testing.T, host string) {
		n := star(t, host, 5)
		for _, e := range n[0].Edges() {
			if err := n[0].CloseEdge(e.PeerID); err != nil {
				t.Fatal(err)
			}
		}
		waitEdges(t, map[*Node]int{n[0]: 0, n[1]: 0, n[2]: 0, n[3]: 0, n[4]: 0})
		// A deliberate close never triggers reconnection.
		for _, c := range n {
			if c.Status().Reconnecting {
				t.Fatalf("%s reconnects after a deliberate close", c.Name())
			}
		}
	})
}

func TestRequestEcho(t *testing.T) {
	forHosts(t, func(t *testing.T, host string) {
		n := createNodes(t, host, "A", "B")
		n[1].Handle("echo", func(ctx context.Context, r Request) ([]byte, error) { return r.Data, nil })
		connect(t, n[1], n[0])
		waitEdges(t, map[*Node]int{n[0]: 1, n[1]: 1})
		var payload []byte
		for i := 0; i < 3; i++ {
			payload = append(payload, uuid.NewString()+"="+uuid.NewString()+";"...)
		}
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		got, err := n[0].Request(ctx, n[1].ID(), "echo", payload)
		if err != nil || !bytes.Equal(got, payload) {
			t.Fatalf("echo: %q, %v", got, err)
		}
		// Only registered handlers can be called.
		if _, err := n[0].Request(ctx, n[1].ID(), "Close", nil); !errors.Is(err, ErrNoHandler) {
			t.Fatalf("unregistered handler: %v", err)
		}
		// The same over UDP.
		got, err = RequestUDP(ctx, n[1].Addr(), "echo", []byte("over udp"))
		if err != nil || string(got) != "over udp" {
			t.Fatalf("udp echo: %q, %v", got, err)
		}
	})
}

func TestStatusOverUDP(t *testing.T) {
	forHosts(t, func(t *testing.T, host string) {
		n := createNodes(t, host, "A,B", "A")
		connect(t, n[1], n[0])
		waitEdges(t, map[*Node]int{n[0]: 1})
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		st, err := QueryStatus(ctx, n[0].Addr())
		if err != nil {
			t.Fatal(err)
		}
		if st.Name != "Node0" || st.Edges != 1 || !st.Serving || len(st.Paired) != 2 || !st.Paired["A"] {
			t.Fatalf("status: %+v", st)
		}
	})
}

func TestStatusTimeout(t *testing.T) {
	n := startNode(t, "127.0.0.1", Config{Name: "gone"})
	addr := n.Addr()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		t.Fatal(err)
	}
	qctx, qcancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer qcancel()
	if _, err := QueryStatus(qctx, addr); !errors.Is(err, ErrTimeout) {
		t.Fatalf("status of a closed node: %v", err)
	}
}

func TestDuplicateConnectionsMerge(t *testing.T) {
	a := startNode(t, "127.0.0.1", Config{Name: "a"})
	b := startNode(t, "127.0.0.1", Config{Name: "b"})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	// Both dial each other at once, several times.
	errs := make(chan error, 8)
	for i := 0; i < 4; i++ {
		go func() { _, err := a.Connect(ctx, b.Addr()); errs <- err }()
		go func() { _, err := b.Connect(ctx, a.Addr()); errs <- err }()
	}
	for i := 0; i < 8; i++ {
		if err := <-errs; err != nil {
			t.Fatalf("connect: %v", err)
		}
	}
	waitEdges(t, map[*Node]int{a: 1, b: 1})
	// And it stays one edge, listed once.
	time.Sleep(50 * time.Millisecond)
	if len(a.Edges()) != 1 || len(b.Edges()) != 1 {
		t.Fatalf("edges listed: %d and %d", len(a.Edges()), len(b.Edges()))
	}
}

func TestSelfConnectRefused(t *testing.T) {
	a := startNode(t, "127.0.0.1", Config{Name: "a"})
	events, stop := a.Watch(64)
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if _, err := a.Connect(ctx, a.Addr()); !errors.Is(err, ErrSelfConnect) {
		t.Fatalf("self connect: %v", err)
	}
	if _, err := a.Connect(ctx, "127.0.0.1:1"); err == nil {
		t.Fatal("connect to a closed port succeeded")
	}
	if _, err := a.Connect(ctx, "not an address"); err == nil {
		t.Fatal("bad address accepted")
	}
	// Failures are logged for observers too (a dashboard connecting in the
	// background shows them in its log pane).
	failures := 0
	for failures < 3 {
		select {
		case ev := <-events:
			if l, ok := ev.(*LogEvent); ok && l.Message == "connect failed" {
				failures++
			}
		case <-time.After(waitTimeout):
			t.Fatalf("%d connect failures logged, want 3", failures)
		}
	}
}

func TestPing(t *testing.T) {
	// The original's test_ping: a padded ping measures more than a plain one.
	n := createNodes(t, "127.0.0.1", "A", "B", "C")
	connect(t, n[1], n[0])
	connect(t, n[2], n[0])
	waitEdges(t, map[*Node]int{n[0]: 2})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	// Take the minimum of a few rounds so one scheduling hiccup on a busy
	// machine cannot invert the comparison.
	var plain, padded time.Duration = 1 << 62, 1 << 62
	for i := 0; i < 5; i++ {
		p, err := n[0].Ping(ctx, n[1].ID(), 0)
		if err != nil {
			t.Fatal(err)
		}
		q, err := n[0].Ping(ctx, n[2].ID(), 4<<20-64)
		if err != nil {
			t.Fatal(err)
		}
		plain, padded = min(plain, p), min(padded, q)
	}
	if padded <= plain {
		t.Fatalf("padded ping %v not slower than plain %v", padded, plain)
	}
	e1, _ := n[0].Edge(n[1].ID())
	e2, _ := n[0].Edge(n[2].ID())
	if e1.Latency.Samples < 5 || e2.Latency.Mean <= e1.Latency.Mean {
		t.Fatalf("stats not updated: %+v vs %+v", e1.Latency, e2.Latency)
	}
	for _, id := range []string{n[1].ID(), n[2].ID()} {
		if err := n[0].ResetLatency(id); err != nil {
			t.Fatal(err)
		}
	}
	e1, _ = n[0].Edge(n[1].ID())
	e2, _ = n[0].Edge(n[2].ID())
	if e1.Latency.Mean != e2.Latency.Mean || e1.Latency.Samples != 0 {
		t.Fatalf("after reset: %+v vs %+v", e1.Latency, e2.Latency)
	}
}

func TestKeepAliveMeasuresLatency(t *testing.T) {
	a := startNode(t, "127.0.0.1", Config{Name: "a", PingInterval: 20 * time.Millisecond})
	b := startNode(t, "127.0.0.1", Config{Name: "b", PingInterval: 20 * time.Millisecond})
	connect(t, a, b)
	eventually(t, "keep-alive samples", func() bool {
		e, ok := a.Edge(b.ID())
		return ok && e.Latency.Samples >= 3 && len(e.Latency.History) >= 3
	})
}

func TestNoGoroutineLeftAfterClose(t *testing.T) {
	// goleak.VerifyTestMain checks the whole package; this checks one busy
	// node explicitly.
	a := startNode(t, "127.0.0.1", Config{Name: "a", Subscriptions: []string{"t"}, PingInterval: 10 * time.Millisecond})
	b := startNode(t, "127.0.0.1", Config{Name: "b", Subscriptions: []string{"t"}, PingInterval: 10 * time.Millisecond})
	connect(t, a, b)
	for i := 0; i < 100; i++ {
		publish(t, a, "t", "x")
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-a.Messages(); ok {
		// Buffered messages may remain; drain until closed.
		for range a.Messages() {
		}
	}
}

func TestLateWatcherSeesRecentLogs(t *testing.T) {
	a := startNode(t, "127.0.0.1", Config{Name: "a"})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if _, err := a.Connect(ctx, "127.0.0.1:1"); err == nil {
		t.Fatal("connect to a closed port succeeded")
	}
	// A dashboard attaches after the failure happened.
	events, stop := a.Watch(128)
	defer stop()
	for {
		select {
		case ev := <-events:
			if l, ok := ev.(*LogEvent); ok && l.Message == "connect failed" {
				return
			}
		case <-time.After(waitTimeout):
			t.Fatal("the earlier connect failure was not replayed to a late watcher")
		}
	}
}
