package tui

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/teatest"

	"github.com/chaski-dev/chaski/chaski"
	"github.com/chaski-dev/chaski/chaski/store"
)

// The dashboard is written for *chaski.Node.
var _ Backend = (*chaski.Node)(nil)

// startChatNode starts a real node on 127.0.0.1 subscribed to "chat" and
// paired (unless cfg says otherwise), closed when the test ends.
func startChatNode(t *testing.T, cfg chaski.Config) *chaski.Node {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.Subscriptions == nil {
		cfg.Subscriptions = []string{"chat"}
	}
	cfg.Paired = true
	n, err := chaski.Start(cfg)
	if err != nil {
		t.Fatalf("start %s: %v", cfg.Name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = n.Close(ctx)
	})
	return n
}

// TestFlowRealNodes drives the dashboard against two real nodes on
// loopback: a line typed in the dashboard reaches the peer, and the peer's
// line shows in the dashboard. Set CHASKI_TUI_SKIP_NODE=1 to skip it while
// the node package is in flux.
func TestFlowRealNodes(t *testing.T) {
	if os.Getenv("CHASKI_TUI_SKIP_NODE") != "" {
		t.Skip("CHASKI_TUI_SKIP_NODE set")
	}
	start := func(name string) *chaski.Node {
		return startChatNode(t, chaski.Config{Name: name, PingInterval: 200 * time.Millisecond})
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
	a, b := startChatNode(t, chaski.Config{Name: "tui-a"}), startChatNode(t, chaski.Config{Name: "no-files"})
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
	b := startChatNode(t, chaski.Config{Name: "peer-b"})
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
			if _, sum := xferHash(tr); tr.Name == "report.txt" && tr.State == chaski.TransferDone && sum != "" {
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
	algo, sum := xferHash(&got)
	wantIn(t, s, "report.txt", "✓ (earlier run) saved to "+filepath.Dir(got.Path))
	keys(m2, "g")
	wantIn(t, frame(m2), "▸ report.txt · "+algo+" "+sum[:12]+" · saved to "+got.Path)
	keys(m2, "enter")
	wantIn(t, frame(m2), algo+": "+sum)
	if es, _ := a2.StoreEntries(); len(es) != 0 {
		t.Errorf("the transfer list shows as store entries: %+v", es)
	}
}

// TestDropDirectoryRealNodes: a folder dropped on the dashboard of a real
// node is sent whole to a real peer (the node's SendFile sends the tree),
// each file a row under its path in the folder, whose own folder o opens.
func TestDropDirectoryRealNodes(t *testing.T) {
	if os.Getenv("CHASKI_TUI_SKIP_NODE") != "" {
		t.Skip("CHASKI_TUI_SKIP_NODE set")
	}
	dl := t.TempDir()
	a := startChatNode(t, chaski.Config{Name: "tui-a"})
	b := startChatNode(t, chaski.Config{Name: "peer-b", AcceptFiles: true, DownloadDir: dl})
	ctx, cancel := context.WithTimeout(context.Background(), flowWait)
	defer cancel()
	if _, err := a.Connect(ctx, b.Addr()); err != nil {
		t.Fatalf("connect: %v", err)
	}
	eventually(t, "b accepts files", func() bool {
		e, ok := a.Edge(b.ID())
		return ok && e.AcceptsFiles
	})
	root := filepath.Join(t.TempDir(), "photos")
	if err := os.MkdirAll(filepath.Join(root, "2024"), 0o700); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"a.txt": "first", "2024/b.txt": "second"} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	m := New(a, Options{})
	t.Cleanup(m.Close)
	send(m, tea.WindowSizeMsg{Width: 200, Height: 50})
	run(m, send(m, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(root), Paste: true}))
	wantNot(t, frame(m), "not supported")
	eventually(t, "both files at the receiver", func() bool {
		x, _ := os.ReadFile(filepath.Join(dl, "photos", "a.txt"))
		y, _ := os.ReadFile(filepath.Join(dl, "photos", "2024", "b.txt"))
		return string(x) == "first" && string(y) == "second"
	})
	eventually(t, "two done rows in the dashboard", func() bool {
		send(m, m.m.snapshot(false))
		done := 0
		for _, tr := range m.m.sh.transfers {
			if tr.State == chaski.TransferDone && strings.HasPrefix(tr.Name, "photos/") {
				done++
			}
		}
		return done == 2
	})
	keys(m, "esc", "4", "z")
	s := frame(m)
	wantIn(t, s, "photos/a.txt", "photos/2024/b.txt")
	for i, r := range m.m.xfers.rows() {
		if r.t != nil && r.t.Name == "photos/2024/b.txt" {
			m.m.xfers.sel = i
		}
	}
	keys(m, "o")
	wantIn(t, frame(m), "folder "+filepath.Join(root, "2024")+" (copied")
}
