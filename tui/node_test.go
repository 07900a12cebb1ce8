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
	"github.com/chaski-dev/chaski/chaski/store"
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

// TestTransferListSurvivesRestartRealNode: a file sent by a real peer to
// the dashboard's real node is in the Transfers list, with its hash and
// where it was saved, after the node and its store are closed and opened
// again (the list is a state record in the store, not a store entry).
func TestTransferListSurvivesRestartRealNode(t *testing.T) {
	if os.Getenv("CHASKI_TUI_SKIP_NODE") != "" {
		t.Skip("CHASKI_TUI_SKIP_NODE set")
	}
	dataDir, dl := t.TempDir(), t.TempDir()
	storePath := filepath.Join(dataDir, "store.db")
	startA := func() (*chaski.Node, *store.Store) {
		st, err := store.Open(storePath, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		n, err := chaski.Start(chaski.Config{Name: "tui-a", Listen: "127.0.0.1:0", Subscriptions: []string{"chat"},
			Paired: true, Store: st, AcceptFiles: true, DownloadDir: dl})
		if err != nil {
			t.Fatal(err)
		}
		return n, st
	}
	stopA := func(n *chaski.Node, st *store.Store) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = n.Close(ctx)
		_ = st.Close()
	}
	a, st := startA()
	b, err := chaski.Start(chaski.Config{Name: "peer-b", Listen: "127.0.0.1:0", Subscriptions: []string{"chat"}, Paired: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = b.Close(ctx)
	})
	ctx, cancel := context.WithTimeout(context.Background(), flowWait)
	defer cancel()
	if _, err := b.Connect(ctx, a.Addr()); err != nil {
		t.Fatalf("connect: %v", err)
	}
	src := filepath.Join(t.TempDir(), "report.txt")
	if err := os.WriteFile(src, []byte("the quarterly report\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m := New(a, Options{DataDir: dataDir})
	send(m, tea.WindowSizeMsg{Width: 200, Height: 50})
	if _, err := b.SendFile(ctx, "chat", src, nil); err != nil {
		t.Fatalf("send: %v", err)
	}
	var got chaski.TransferInfo
	eventually(t, "the transfer done in the dashboard", func() bool {
		send(m, m.m.snapshot(false))
		for _, tr := range m.m.sh.transfers {
			if tr.Name == "report.txt" && tr.State == chaski.TransferDone && tr.SHA256 != "" {
				got = *tr
				return true
			}
		}
		return false
	})
	frameSave(m)
	m.Close()
	stopA(a, st)

	a2, st2 := startA()
	defer stopA(a2, st2)
	m2 := New(a2, Options{DataDir: dataDir})
	defer m2.Close()
	send(m2, tea.WindowSizeMsg{Width: 200, Height: 50})
	keys(m2, "esc", "4", "z")
	s := frame(m2)
	wantIn(t, s, "report.txt", "done (earlier run) sha256 "+got.SHA256[:12])
	keys(m2, "g")
	wantIn(t, frame(m2), "▸ report.txt · sha256 "+got.SHA256[:12]+" · saved to "+got.Path)
	if es, _ := a2.StoreEntries(); len(es) != 0 {
		t.Errorf("the transfer list shows as store entries: %+v", es)
	}
}
