package tui

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/teatest"

	"github.com/chaski-dev/chaski/chaski"
)

// The dashboard is written for *chaski.Node.
var _ Backend = (*chaski.Node)(nil)

// TestFlowRealNodes drives the dashboard against two real nodes on
// loopback: a line typed in the dashboard reaches the peer, and the peer's
// line shows in the dashboard. Set CHASKI_TUI_SKIP_NODE=1 to skip it while
// the node package is in flux.
func TestFlowRealNodes(t *testing.T) {
	if os.Getenv("CHASKI_TUI_SKIP_NODE") != "" {
		t.Skip("CHASKI_TUI_SKIP_NODE set")
	}
	start := func(name string) *chaski.Node {
		n, err := chaski.Start(chaski.Config{Name: name, Listen: "127.0.0.1:0", Subscriptions: []string{"chat"},
			Paired: true, PingInterval: 200 * time.Millisecond})
		if err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = n.Close(ctx)
		})
		return n
	}
	a, b := start("tui-a"), start("peer-b")
	ctx, cancel := context.WithTimeout(context.Background(), flowWait)
	defer cancel()
	if _, err := a.Connect(ctx, b.Addr()); err != nil {
		t.Fatalf("connect: %v", err)
	}
	m := New(a, Options{Title: "chaski-real"})
	t.Cleanup(m.Close)
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(160, 40))
	waitText(t, tm, "chaski-real", "peer-b", "● up", "TYPING")
	tm.Type("hello peer")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	got, err := nextMessage(b, flowWait)
	if err != nil {
		t.Fatalf("peer did not receive the line: %v", err)
	}
	if got.Topic != "chat" || string(got.Data) != "hello peer" || got.From != "tui-a" {
		t.Errorf("peer got %q on %q from %q", got.Data, got.Topic, got.From)
	}
	if err := b.Publish(ctx, "chat", []byte("hello dashboard")); err != nil {
		t.Fatalf("peer publish: %v", err)
	}
	waitText(t, tm, "peer-b", "hello dashboard")
	quitFlow(t, tm)
}

func nextMessage(n *chaski.Node, d time.Duration) (*chaski.Message, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return n.Next(ctx)
}

// TestFlowRealNodesRefusedDrop: a file dropped on the dashboard of a real
// node whose only peer accepts no files ends as a failed row in Transfers
// with the reason (before: "✓ sending…", no row, a line in the log).
func TestFlowRealNodesRefusedDrop(t *testing.T) {
	if os.Getenv("CHASKI_TUI_SKIP_NODE") != "" {
		t.Skip("CHASKI_TUI_SKIP_NODE set")
	}
	start := func(name string) *chaski.Node {
		n, err := chaski.Start(chaski.Config{Name: name, Listen: "127.0.0.1:0", Subscriptions: []string{"chat"}, Paired: true})
		if err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = n.Close(ctx)
		})
		return n
	}
	a, b := start("tui-a"), start("no-files")
	ctx, cancel := context.WithTimeout(context.Background(), flowWait)
	defer cancel()
	if _, err := a.Connect(ctx, b.Addr()); err != nil {
		t.Fatalf("connect: %v", err)
	}
	path := filepath.Join(t.TempDir(), "dropped.txt")
	if err := os.WriteFile(path, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	m := New(a, Options{Title: "chaski-real"})
	t.Cleanup(m.Close)
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(200, 60))
	waitText(t, tm, "no-files", "● up")
	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(path), Paste: true})
	waitText(t, tm, "↑ dropped.t", "✗ failed: no peer accepts f", "send dropped.txt: no peer accepts files")
	quitFlow(t, tm)
}
