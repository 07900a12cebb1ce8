package chaski

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitTimeout is generous: CI runs on a loaded 2-core machine.
const waitTimeout = 15 * time.Second

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	waitFor(t, waitTimeout, what, cond)
}

// waitFor is eventually with a wait of its own.
func waitFor(t testing.TB, wait time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("CHASKI_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
}

// startNode starts a node on host with port 0 and closes it when the test
// ends.
func startNode(t testing.TB, host string, cfg Config) *Node {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = host + ":0"
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
		if cfg.Logger != nil && cfg.Name != "" {
			cfg.Logger = cfg.Logger.With("node", cfg.Name)
		}
	}
	if cfg.ReconnectAttempts == 0 {
		cfg.ReconnectAttempts = -1 // as the original's tests: no reconnection unless asked
	}
	n, err := Start(cfg)
	if err != nil {
		t.Fatalf("start %s: %v", cfg.Name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Close(ctx); err != nil {
			t.Errorf("close %s: %v", n.Name(), err)
		}
	})
	return n
}

// createNodes mirrors the original's create_nodes: node i is named Node<i> and
// subscribes to subs[i] (comma-separated topics); node 0 starts paired.
func createNodes(t testing.TB, host string, subs ...string) []*Node {
	t.Helper()
	nodes := make([]*Node, len(subs))
	for i, s := range subs {
		var topics []string
		if s != "" {
			topics = strings.Split(s, ",")
		}
		nodes[i] = startNode(t, host, Config{Name: fmt.Sprintf("Node%d", i), Subscriptions: topics, Paired: i == 0, TTL: 15, MaxConnections: 10})
	}
	return nodes
}

// letters returns n one-letter subscriptions A, B, C, ...
func letters(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = string(rune('A' + i))
	}
	return out
}

func connect(t testing.TB, a, b *Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if _, err := a.Connect(ctx, b.Addr()); err != nil {
		t.Fatalf("%s → %s: %v", a.Name(), b.Name(), err)
	}
}

// connected is the original's assert_connection: both sides have a live edge.
func connected(a, b *Node) bool { return a.ConnectedTo(b.ID()) && b.ConnectedTo(a.ID()) }

func waitEdges(t testing.TB, want map[*Node]int) {
	t.Helper()
	eventually(t, "edge counts", func() bool {
		for n, c := range want {
			if n.EdgeCount() != c {
				return false
			}
		}
		return true
	})
}

func recv(t testing.TB, n *Node) *Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	m, err := n.Next(ctx)
	if err != nil {
		t.Fatalf("%s: waiting for a message: %v", n.Name(), err)
	}
	return m
}

func publish(t testing.TB, n *Node, topic, data string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := n.Publish(ctx, topic, []byte(data)); err != nil {
		t.Fatalf("%s publish %q: %v", n.Name(), data, err)
	}
}

// runTransmission is the original's run_transmission: test0..test5 in order,
// each pushed after the previous one arrived.
func runTransmission(t testing.TB, producer, consumer *Node, topic string) {
	t.Helper()
	connect(t, consumer, producer)
	eventually(t, "consumer subscription known to producer", func() bool {
		e, ok := producer.Edge(consumer.ID())
		return ok && e.Subscribes(topic)
	})
	for i := 0; i < 6; i++ {
		publish(t, producer, topic, fmt.Sprintf("test%d", i))
		m := recv(t, consumer)
		if got, want := string(m.Data), fmt.Sprintf("test%d", i); got != want || m.Topic != topic {
			t.Fatalf("message %d: got %q on %q, want %q", i, got, m.Topic, want)
		}
	}
}

// edgeDowns returns the reasons of n's EdgeDown events as they happen (the
// first 16; later ones are not kept).
func edgeDowns(t testing.TB, n *Node) <-chan string {
	events, stop := n.Watch(64)
	t.Cleanup(stop)
	downs := make(chan string, 16)
	go func() {
		for ev := range events {
			if d, ok := ev.(*EdgeDownEvent); ok {
				select {
				case downs <- d.Reason:
				default:
				}
			}
		}
	}()
	return downs
}
