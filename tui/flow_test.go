package tui

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/teatest"

	"github.com/chaski-dev/chaski/chaski"
)

// Generous limits: CI machines are small and busy.
const flowWait = 20 * time.Second

func waitOpts() []teatest.WaitForOption {
	return []teatest.WaitForOption{teatest.WithDuration(flowWait), teatest.WithCheckInterval(20 * time.Millisecond)}
}

func startFlow(t *testing.T, f *fakeBackend, w, h int) *teatest.TestModel {
	t.Helper()
	m := New(f, Options{Title: "chaski-test"})
	t.Cleanup(m.Close)
	return teatest.NewTestModel(t, m, teatest.WithInitialTermSize(w, h))
}

func waitText(t *testing.T, tm *teatest.TestModel, subs ...string) {
	t.Helper()
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool {
		for _, s := range subs {
			if !bytes.Contains(b, []byte(s)) {
				return false
			}
		}
		return true
	}, waitOpts()...)
}

// eventually polls cond (no fixed sleeps) until it holds or the limit passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(flowWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func quitFlow(t *testing.T, tm *teatest.TestModel) {
	t.Helper()
	tm.Type("q")
	tm.WaitFinished(t, teatest.WithFinalTimeout(flowWait))
}

func TestFlowChatLine(t *testing.T) {
	f := newFake()
	tm := startFlow(t, f, 100, 30)
	waitText(t, tm, "chaski-test")
	tm.Type("2")
	waitText(t, tm, "chat ›")
	tm.Type("hello from the test")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	eventually(t, "Publish", func() bool {
		pubs, _ := f.snapshot()
		return len(pubs) == 1 && pubs[0] == published{"chat", "hello from the test"}
	})
	waitText(t, tm, "you", "hello from the test")
	tm.Send(tea.KeyMsg{Type: tea.KeyEsc})
	quitFlow(t, tm)
	fm := tm.FinalModel(t, teatest.WithFinalTimeout(flowWait)).(Model)
	// The node's echo of our own line must not show it a second time.
	if n := fm.m.topics["chat"].Len(); n != 1 {
		t.Errorf("chat holds %d lines, want 1", n)
	}
}

func TestFlowPasteFileSends(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "report final.pdf")
	if err := os.WriteFile(path, []byte("%PDF-1.7 test"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := newFake()
	tm := startFlow(t, f, 120, 30)
	waitText(t, tm, "chaski-test")
	tm.Type("4")
	waitText(t, tm, "no transfers")
	// A terminal drops the file as a paste of its (escaped) path.
	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(strings.ReplaceAll(path, " ", `\ `)), Paste: true})
	waitText(t, tm, "send 1 file(s) to topic chat?")
	tm.Type("y")
	eventually(t, "SendFile", func() bool {
		_, sent := f.snapshot()
		return len(sent) == 1 && sent[0] == path
	})
	f.events <- &chaski.TransferEvent{EventBase: chaski.EventBase{At: time.Now()}, Transfer: chaski.TransferInfo{
		ID: "tx-1", Name: "report final.pdf", Topic: "chat", Peer: "bravo", Outgoing: true,
		Size: 13, Done: 6, Rate: 1024, ETA: time.Second, State: chaski.TransferActive, Started: time.Now()}}
	waitText(t, tm, "report final.pdf", "bravo", "sending 46%")
	quitFlow(t, tm)
}

func TestFlowPastedPathOfMissingFileIsText(t *testing.T) {
	f := newFake()
	tm := startFlow(t, f, 100, 30)
	waitText(t, tm, "chaski-test")
	tm.Type("2")
	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("/no/such/file.txt"), Paste: true})
	waitText(t, tm, "/no/such/file.txt")
	tm.Send(tea.KeyMsg{Type: tea.KeyEsc})
	quitFlow(t, tm)
	if _, sent := f.snapshot(); len(sent) != 0 {
		t.Errorf("sent %q", sent)
	}
}

func TestFlowHelpAndResize(t *testing.T) {
	f := newFake()
	f.populate()
	tm := startFlow(t, f, 80, 24)
	waitText(t, tm, "STATE", "bravo")
	tm.Type("?")
	waitText(t, tm, "GLOBAL", "go to pane")
	tm.Type("?")
	waitText(t, tm, "STATE")
	// A wider terminal brings the sparkline column.
	tm.Send(tea.WindowSizeMsg{Width: 160, Height: 50})
	waitText(t, tm, "LATENCY", "TRAFFIC")
	quitFlow(t, tm)
	fm := tm.FinalModel(t, teatest.WithFinalTimeout(flowWait)).(Model)
	if fm.m.width != 160 || fm.m.height != 50 {
		t.Errorf("size = %d×%d", fm.m.width, fm.m.height)
	}
}

func TestFlowQuit(t *testing.T) {
	f := newFake()
	tm := startFlow(t, f, 80, 24)
	waitText(t, tm, "no edges yet")
	quitFlow(t, tm)
}

// A flood of messages must not freeze the screen: keys still work while
// thousands of messages arrive, and memory stays bounded.
func TestFlowFloodStaysResponsive(t *testing.T) {
	f := newFake()
	tm := startFlow(t, f, 120, 40)
	waitText(t, tm, "chaski-test")
	tm.Type("2")
	waitText(t, tm, "chat ›")
	tm.Send(tea.KeyMsg{Type: tea.KeyEsc})
	const n = 30000
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; i <= n; i++ {
			ev := msgEvent("chat", "flood", uint64(i), []byte("flood line "+itoa(i)))
			f.msgs <- ev.Msg // the subscriber queue
			if i%2 == 0 {
				f.events <- ev // the same message as an event, when it is not dropped
			}
			if i%10 == 0 { // a relayed topic we do not subscribe to: events only
				f.events <- msgEvent("relay", "root", uint64(n+i), []byte("relayed "+itoa(i)))
			}
		}
	}()
	tm.Type("?")
	waitText(t, tm, "GLOBAL")
	tm.Type("?")
	<-done
	waitText(t, tm, "flood line "+itoa(n))
	quitFlow(t, tm)
	fm := tm.FinalModel(t, teatest.WithFinalTimeout(flowWait)).(Model)
	if got := fm.m.topics["chat"].Len(); got != topicLines {
		t.Errorf("chat ring holds %d lines, want %d", got, topicLines)
	}
	if got := fm.m.all.Len(); got != topicLines {
		t.Errorf("all ring holds %d lines", got)
	}
	// In order, without duplicates.
	r := fm.m.topics["chat"]
	for i := 1; i < r.Len(); i++ {
		if a, b := string(r.At(i-1).data), string(r.At(i).data); a == b {
			t.Fatalf("duplicate line %q", a)
		}
	}
	if last := string(r.At(r.Len() - 1).data); last != "flood line "+itoa(n) {
		t.Errorf("last chat line %q", last)
	}
}

func TestRunRejectsUnknownTheme(t *testing.T) {
	if err := Run(t.Context(), newFake(), Options{Theme: "no-such-theme"}); err == nil {
		t.Fatal("Run accepted an unknown theme")
	}
}
