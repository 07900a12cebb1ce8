package tui

import (
	"bytes"
	"strconv"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest"

	"github.com/chaski-dev/chaski/chaski"
)

// Generous limits: CI machines are small and busy.
const flowWait = 20 * time.Second

func waitOpts() []teatest.WaitForOption {
	return []teatest.WaitForOption{teatest.WithDuration(flowWait), teatest.WithCheckInterval(20 * time.Millisecond)}
}

func startFlow(t *testing.T, f *fakeBackend, w, h int, opts Options) *teatest.TestModel {
	t.Helper()
	opts.Title = "chaski-test"
	m := New(f, opts)
	t.Cleanup(m.Close)
	return teatest.NewTestModel(t, m, teatest.WithInitialTermSize(w, h))
}

// waitText waits until the screen output holds every string (escapes
// stripped, since the renderer may style words in pieces).
func waitText(t *testing.T, tm *teatest.TestModel, subs ...string) {
	t.Helper()
	var seen []byte
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool {
		seen = append(seen, b...)
		plain := []byte(ansi.Strip(string(seen)))
		for _, s := range subs {
			if !bytes.Contains(plain, []byte(s)) {
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
	tm.Send(tea.KeyMsg{Type: tea.KeyCtrlC})
	tm.WaitFinished(t, teatest.WithFinalTimeout(flowWait))
}

// TestFlowTypeAtOnce: the program starts, a line typed straight away is
// published, Esc gives the keys back ("jj" in one read moves two rows).
func TestFlowTypeAtOnce(t *testing.T) {
	for _, sz := range sizes {
		t.Run(strconv.Itoa(sz[0])+"x"+strconv.Itoa(sz[1]), func(t *testing.T) {
			f := newFake()
			f.populate()
			f.edges = append(f.edges, chaski.EdgeInfo{PeerID: "p-delta", Name: "delta", State: chaski.StateUp})
			tm := startFlow(t, f, sz[0], sz[1], Options{})
			waitText(t, tm, "chaski-test", "TYPING")
			tm.Type("hi 1 2 q")
			tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
			eventually(t, "the line published", func() bool {
				p, _ := f.snapshot()
				return len(p) == 1 && p[0].data == "hi 1 2 q"
			})
			tm.Send(tea.KeyMsg{Type: tea.KeyEsc})
			waitText(t, tm, "KEYS")
			tm.Type("1")
			tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("jj")})
			quitFlow(t, tm)
			fm := tm.FinalModel(t, teatest.WithFinalTimeout(flowWait)).(Model)
			if fm.m.edges.sel != 2 {
				t.Errorf("jj: selection %d, want 2", fm.m.edges.sel)
			}
		})
	}
}

func TestFlowHelpAndResize(t *testing.T) {
	f := newFake()
	f.populate()
	tm := startFlow(t, f, 80, 24, Options{})
	waitText(t, tm, "chaski-test")
	tm.Send(tea.KeyMsg{Type: tea.KeyF1})
	waitText(t, tm, "GLOBAL", "Typing mode", "zoom pane")
	tm.Send(tea.KeyMsg{Type: tea.KeyEsc})
	tm.Send(tea.WindowSizeMsg{Width: 200, Height: 60})
	waitText(t, tm, "5 Storage", "greeting")
	tm.Send(tea.WindowSizeMsg{Width: 30, Height: 10})
	waitText(t, tm, "terminal too small")
	quitFlow(t, tm)
}

// TestFlowFloodKeepsEvents: under a flood of messages, edge and transfer
// events still arrive (they travel apart from messages) and the dashboard
// keeps answering keys.
func TestFlowFloodKeepsEvents(t *testing.T) {
	f := newFake()
	tm := startFlow(t, f, 120, 40, Options{})
	waitText(t, tm, "chaski-test")
	const n = 30000
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; i <= n; i++ {
			f.msgs <- &chaski.Message{Topic: "chat", From: "flood", FromID: "fl", Data: []byte("flood line " + strconv.Itoa(i))}
			if i == n/2 {
				e := chaski.EdgeInfo{PeerID: "p-mid", Name: "midflood", State: chaski.StateUp}
				f.mu.Lock()
				f.edges = append(f.edges, e) // the node's own list has it too
				f.mu.Unlock()
				f.events <- &chaski.EdgeUpEvent{Edge: e}
				f.events <- &chaski.TransferEvent{Transfer: chaski.TransferInfo{ID: "t-mid", Name: "mid.bin", Peer: "midflood", Size: 1, State: chaski.TransferActive}}
			}
		}
	}()
	<-done
	waitText(t, tm, "flood line "+strconv.Itoa(n), "midflood", "mid.bin")
	quitFlow(t, tm)
	fm := tm.FinalModel(t, teatest.WithFinalTimeout(flowWait)).(Model)
	r := fm.m.chat.topics["chat"]
	if r.Len() != topicLines {
		t.Errorf("chat ring holds %d lines, want %d", r.Len(), topicLines)
	}
	if last := string(r.At(r.Len() - 1).data); last != "flood line "+strconv.Itoa(n) {
		t.Errorf("last chat line %q", last)
	}
}

func TestRunRejectsUnknownTheme(t *testing.T) {
	if err := Run(t.Context(), newFake(), Options{Theme: "no-such-theme"}); err == nil {
		t.Fatal("Run accepted an unknown theme")
	}
}
