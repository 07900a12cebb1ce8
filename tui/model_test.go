package tui

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"github.com/chaski-dev/chaski/chaski"
)

var sizes = [][2]int{{80, 24}, {120, 40}, {200, 60}}

func newTestModel(t testing.TB, f *fakeBackend, w, h int) Model {
	return newTestModelOpts(t, f, w, h, Options{Now: func() time.Time { return testStart }})
}

func newTestModelOpts(t testing.TB, f *fakeBackend, w, h int, opts Options) Model {
	t.Helper()
	if opts.Now == nil {
		opts.Now = func() time.Time { return testStart }
	}
	m := New(f, opts)
	if c, ok := t.(interface{ Cleanup(func()) }); ok {
		c.Cleanup(m.Close)
	}
	send(m, tea.WindowSizeMsg{Width: w, Height: h})
	return m
}

func send(m Model, msg tea.Msg) tea.Cmd {
	_, cmd := m.Update(msg)
	return cmd
}

func events(evs ...chaski.Event) eventsMsg { return eventsMsg{evs: evs} }

// keys sends key presses: named keys ("enter", "esc", "tab", "ctrl+z",
// "alt+y"…) or a literal string typed one key at a time.
func keys(m Model, ks ...string) []tea.Cmd {
	var cmds []tea.Cmd
	for _, k := range ks {
		var msg tea.KeyMsg
		switch k {
		case "enter":
			msg = tea.KeyMsg{Type: tea.KeyEnter}
		case "esc":
			msg = tea.KeyMsg{Type: tea.KeyEsc}
		case "tab":
			msg = tea.KeyMsg{Type: tea.KeyTab}
		case "shift+tab":
			msg = tea.KeyMsg{Type: tea.KeyShiftTab}
		case "up":
			msg = tea.KeyMsg{Type: tea.KeyUp}
		case "down":
			msg = tea.KeyMsg{Type: tea.KeyDown}
		case "ctrl+z":
			msg = tea.KeyMsg{Type: tea.KeyCtrlZ}
		case "ctrl+c":
			msg = tea.KeyMsg{Type: tea.KeyCtrlC}
		case "alt+y", "alt+n", "alt+z", "alt+1", "alt+2", "alt+3", "alt+4", "alt+5", "alt+6":
			msg = tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{rune(k[4])}, Alt: true}
		default:
			for _, r := range k {
				cmds = append(cmds, send(m, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}}))
			}
			continue
		}
		cmds = append(cmds, send(m, msg))
	}
	return cmds
}

// frame is the screen as text: escapes stripped, so the checks hold with
// or without colour.
func frame(m Model) string { return ansi.Strip(m.View()) }

func checkFits(t *testing.T, view string, w, h int) {
	t.Helper()
	lines := strings.Split(view, "\n")
	if len(lines) != h {
		t.Fatalf("%d×%d: view has %d lines, want %d:\n%s", w, h, len(lines), h, ansi.Strip(view))
	}
	for i, l := range lines {
		if lw := lipgloss.Width(l); lw > w {
			t.Fatalf("%d×%d: line %d is %d cells wide:\n%q", w, h, i, lw, ansi.Strip(l))
		}
	}
}

func wantIn(t *testing.T, view string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(view, s) {
			t.Fatalf("view lacks %q:\n%s", s, view)
		}
	}
}

func wantNot(t *testing.T, view string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if strings.Contains(view, s) {
			t.Fatalf("view has %q:\n%s", s, view)
		}
	}
}

// run executes a command and feeds what it returns back to the model, as
// the program does (batches included, ticks skipped).
func run(m Model, cmd tea.Cmd) {
	if cmd == nil {
		return
	}
	done := make(chan tea.Msg, 1)
	go func() { done <- cmd() }()
	var msg tea.Msg
	select {
	case msg = <-done:
	case <-time.After(200 * time.Millisecond):
		return // a tick or a blocking reader: not ours to wait for
	}
	switch msg := msg.(type) {
	case tea.BatchMsg:
		for _, c := range msg {
			run(m, c)
		}
	case nil, frameMsg, snapshotMsg, dialRetryMsg:
	default:
		run(m, send(m, msg))
	}
}

func runAll(m Model, cmds []tea.Cmd) {
	for _, c := range cmds {
		run(m, c)
	}
}

// ---- layout ----------------------------------------------------------------

func TestLayoutShowsPanesBySize(t *testing.T) {
	for _, sz := range append(sizes, [2]int{120, 32}, [2]int{160, 50}) {
		w, h := sz[0], sz[1]
		t.Run(fmt.Sprintf("%dx%d", w, h), func(t *testing.T) {
			f := newFake()
			f.populate()
			m := newTestModel(t, f, w, h)
			v := m.View()
			checkFits(t, v, w, h)
			s := ansi.Strip(v)
			// Always: the edges (with latency) and the chat with its input.
			wantIn(t, s, "1 Edges", "bravo", "42µs", "2 Topics", "#chat ›")
			if w >= 120 {
				wantIn(t, s, "3 Discovery", "4 Transfers", "5 Storage", "movie.mkv", "greeting")
			}
			// Frames are whole: every body line starts and ends with a frame
			// character.
			lines := strings.Split(s, "\n")
			for i, l := range lines[1 : len(lines)-2] {
				if strings.HasPrefix(l, " 1 Edges") { // the pane strip
					continue
				}
				r := []rune(l)
				if !strings.ContainsRune("│┃╭┏╰┗┌└", r[0]) || !strings.ContainsRune("│┃╮┓╯┛┐┘", r[len(r)-1]) {
					t.Fatalf("line %d is not framed: %q", i+1, l)
				}
			}
		})
	}
}

func TestTooSmallOnlyBelowMinimum(t *testing.T) {
	f := newFake()
	m := newTestModel(t, f, 49, 11)
	wantIn(t, frame(m), "terminal too small", "needs 50×12")
	send(m, tea.WindowSizeMsg{Width: 50, Height: 12})
	v := m.View()
	wantNot(t, ansi.Strip(v), "too small")
	checkFits(t, v, 50, 12)
}

func TestEveryLayoutFits(t *testing.T) {
	f := newFake()
	f.populate()
	f.status.Subscriptions = []string{"chat", "news", "a-very-long-topic-name-indeed"}
	m := newTestModel(t, f, 80, 24)
	for w := 50; w <= 210; w += 9 {
		for h := 12; h <= 62; h += 5 {
			send(m, tea.WindowSizeMsg{Width: w, Height: h})
			for p := paneID(0); p < numPanes; p++ {
				m.m.focusPane(p)
				for _, z := range []bool{false, true} {
					m.m.zoomed = z
					m.m.viewDirty = true
					checkFits(t, m.View(), w, h)
				}
			}
		}
	}
}

func TestFocusVisibleAndZoom(t *testing.T) {
	for _, sz := range sizes {
		t.Run(fmt.Sprintf("%dx%d", sz[0], sz[1]), func(t *testing.T) {
			f := newFake()
			f.populate()
			m := newTestModel(t, f, sz[0], sz[1])
			keys(m, "esc", "1") // command mode, focus Edges
			s := frame(m)
			// The focused pane has the heavy frame.
			wantIn(t, s, "┏━ 1 Edges")
			wantNot(t, s, "┏━ 2 Topics")
			keys(m, "z")
			s = frame(m)
			wantIn(t, s, "zoomed")
			wantNot(t, s, "─ 2 Topics", "━ 2 Topics") // only the zoomed pane (and the strip)
			keys(m, "z")
			wantIn(t, frame(m), "2 Topics")
		})
	}
}

func TestPaneStateSurvivesFocusZoomResize(t *testing.T) {
	for _, sz := range sizes {
		t.Run(fmt.Sprintf("%dx%d", sz[0], sz[1]), func(t *testing.T) {
			f := newFake()
			f.populate()
			m := newTestModel(t, f, sz[0], sz[1])
			keys(m, "esc", "1", "j")
			if m.m.edges.sel != 1 {
				t.Fatalf("sel %d", m.m.edges.sel)
			}
			keys(m, "/")
			keys(m, "char")
			keys(m, "enter")
			keys(m, "z", "4", "z", "1")
			send(m, tea.WindowSizeMsg{Width: 80, Height: 24})
			send(m, tea.WindowSizeMsg{Width: 200, Height: 60})
			if m.m.edges.filt != "char" {
				t.Fatalf("filter lost: %q", m.m.edges.filt)
			}
			wantIn(t, frame(m), "/char", "charlie")
		})
	}
}

// ---- input model ------------------------------------------------------------

// TestTypeRightAway: started with a subscription, a typed line and Enter
// publish at once (today the first key had to open the input).
func TestTypeRightAway(t *testing.T) {
	for _, sz := range sizes {
		f := newFake()
		m := newTestModel(t, f, sz[0], sz[1])
		wantIn(t, frame(m), "TYPING → #chat")
		runAll(m, keys(m, "hello 123 q?", "enter"))
		pubs, _ := f.snapshot()
		if len(pubs) != 1 || pubs[0].data != "hello 123 q?" || pubs[0].topic != "chat" {
			t.Fatalf("%v: published %+v", sz, pubs)
		}
		wantIn(t, frame(m), "you", "hello 123 q?")
	}
}

// TestTypingKeysAreText: while the input has the focus every printable key
// is text, even with a file offer waiting (today y answered the offer);
// Esc returns to commands, and the mode is always on screen.
func TestTypingKeysAreText(t *testing.T) {
	for _, sz := range sizes {
		t.Run(fmt.Sprintf("%dx%d", sz[0], sz[1]), func(t *testing.T) {
			f := newFake()
			m := newTestModelOpts(t, f, sz[0], sz[1], Options{AcceptFilesPrompt: true})
			send(m, events(&chaski.TransferEvent{Transfer: chaski.TransferInfo{ID: "in-1", Name: "notes.bin", Peer: "bravo", Size: 10, State: chaski.TransferPending}}))
			runAll(m, keys(m, "yn1234/?qzjx"))
			if got := m.m.chat.input.Value(); got != "yn1234/?qzjx" {
				t.Fatalf("input %q", got)
			}
			if len(f.accepted) != 0 || m.m.quitting || m.m.zoomed || m.m.focus != paneTopics {
				t.Fatalf("a key acted while typing: accepted %v quit %v zoom %v focus %v", f.accepted, m.m.quitting, m.m.zoomed, m.m.focus)
			}
			s := frame(m)
			wantIn(t, s, "TYPING", "accept notes.bin", "M-y/M-n")
			// Esc leaves typing, and is not taken by the waiting offer.
			keys(m, "esc")
			if m.m.chat.typing() || len(f.accepted) != 0 {
				t.Fatalf("esc: typing %v, accepted %v", m.m.chat.typing(), f.accepted)
			}
			wantIn(t, frame(m), "KEYS", "accept notes.bin", "y/n")
			runAll(m, keys(m, "y"))
			if acc, ok := f.accepted["in-1"]; !ok || !acc {
				t.Fatalf("y in command mode did not accept: %v", f.accepted)
			}
		})
	}
}

// TestPromptNeverStealsEsc: an offer arriving while typing does not take
// Esc (today it declined the file).
func TestPromptNeverStealsEsc(t *testing.T) {
	for _, sz := range sizes {
		t.Run(fmt.Sprintf("%dx%d", sz[0], sz[1]), func(t *testing.T) {
			f := newFake()
			m := newTestModelOpts(t, f, sz[0], sz[1], Options{AcceptFilesPrompt: true})
			keys(m, "2")
			send(m, events(&chaski.TransferEvent{Transfer: chaski.TransferInfo{ID: "in-2", Name: "x.bin", Peer: "bravo", Size: 10, State: chaski.TransferPending}}))
			runAll(m, keys(m, "esc", "2", "/ping", "enter"))
			if _, answered := f.accepted["in-2"]; answered {
				t.Fatal("esc answered the offer")
			}
			pubs, _ := f.snapshot()
			for _, p := range pubs {
				if strings.Contains(p.data, "ping") {
					t.Fatalf("a command became a message: %+v", pubs)
				}
			}
			if !strings.Contains(m.m.sh.notice, "no live edges to ping") {
				t.Fatalf("/ping did not run as a command: notice %q", m.m.sh.notice)
			}
			// Alt-y answers from the input too.
			runAll(m, keys(m, "alt+y"))
			if !f.accepted["in-2"] {
				t.Fatal("alt+y did not accept")
			}
		})
	}
}

// TestKeysInOneReadAllHandled: "jj" arriving as one key message (tmux
// send-keys -l jj) moves two rows (today it did nothing).
func TestKeysInOneReadAllHandled(t *testing.T) {
	for _, sz := range sizes {
		t.Run(fmt.Sprintf("%dx%d", sz[0], sz[1]), func(t *testing.T) {
			f := newFake()
			f.populate()
			f.edges = append(f.edges, chaski.EdgeInfo{PeerID: "p-delta", Name: "delta", State: chaski.StateUp})
			m := newTestModel(t, f, sz[0], sz[1])
			keys(m, "esc", "1")
			send(m, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("jj")})
			if m.m.edges.sel != 2 {
				t.Fatalf("jj moved to %d, want 2", m.m.edges.sel)
			}
			// "2hello" in one read: focus the chat, then the rest is text.
			send(m, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("2hi there")})
			if got := m.m.chat.input.Value(); got != "hi there" || m.m.focus != paneTopics {
				t.Fatalf("input %q focus %v", got, m.m.focus)
			}
		})
	}
}

func TestPastedTextGoesToInput(t *testing.T) {
	for _, sz := range sizes {
		t.Run(fmt.Sprintf("%dx%d", sz[0], sz[1]), func(t *testing.T) {
			f := newFake()
			f.populate()
			m := newTestModel(t, f, sz[0], sz[1])
			keys(m, "esc", "1")
			send(m, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("not a path, just words"), Paste: true})
			if m.m.focus != paneTopics || !m.m.chat.typing() || m.m.chat.input.Value() != "not a path, just words" {
				t.Fatalf("focus %v typing %v input %q", m.m.focus, m.m.chat.typing(), m.m.chat.input.Value())
			}
		})
	}
}

func TestSuspendKey(t *testing.T) {
	f := newFake()
	m := newTestModel(t, f, 80, 24)
	cmds := keys(m, "ctrl+z") // works while typing: Ctrl-Z is never text
	if len(cmds) != 1 || cmds[0] == nil {
		t.Fatal("no command for ctrl+z")
	}
	if _, ok := cmds[0]().(tea.SuspendMsg); !ok || !m.m.suspended.Load() {
		t.Fatal("ctrl+z does not suspend")
	}
	send(m, tea.ResumeMsg{})
	if m.m.suspended.Load() {
		t.Fatal("still marked suspended after resume")
	}
}

func TestNumberKeysAndTab(t *testing.T) {
	for _, sz := range sizes {
		t.Run(fmt.Sprintf("%dx%d", sz[0], sz[1]), func(t *testing.T) {
			f := newFake()
			m := newTestModel(t, f, sz[0], sz[1])
			keys(m, "tab")
			if m.m.focus != paneDiscovery {
				t.Fatalf("tab from the chat went to %v", m.m.focus)
			}
			keys(m, "shift+tab")
			if m.m.focus != paneTopics || !m.m.chat.typing() {
				t.Fatal("shift+tab did not come back to typing in the chat")
			}
			keys(m, "alt+4")
			if m.m.focus != paneTransfers {
				t.Fatal("alt+4 while typing")
			}
			keys(m, "6")
			if m.m.focus != paneLog {
				t.Fatal("6 in command mode")
			}
		})
	}
}

func TestKeyOverridesShowInHelp(t *testing.T) {
	f := newFake()
	m := newTestModelOpts(t, f, 120, 40, Options{Keys: map[string][]string{"zoom": {"Z"}}})
	keys(m, "esc", "?")
	wantIn(t, frame(m), "Z", "zoom pane")
	keys(m, "esc", "Z")
	if !m.m.zoomed {
		t.Fatal("rebound zoom key does nothing")
	}
	if err := newKeyMap().apply(map[string][]string{"bogus": {"x"}}); err == nil {
		t.Fatal("unknown action accepted")
	}
}

func TestReadOnly(t *testing.T) {
	for _, sz := range sizes {
		t.Run(fmt.Sprintf("%dx%d", sz[0], sz[1]), func(t *testing.T) {
			f := newFake()
			f.populate()
			m := newTestModelOpts(t, f, sz[0], sz[1], Options{ReadOnly: true})
			wantIn(t, frame(m), "read-only")
			runAll(m, keys(m, "2", "i", "hello", "enter", "1", "x", "y"))
			pubs, _ := f.snapshot()
			if len(pubs) != 0 || len(f.closed) != 0 {
				t.Fatalf("read-only viewer published %v / closed %v", pubs, f.closed)
			}
		})
	}
}

// ---- long lines -------------------------------------------------------------

func TestChatWrapsLongMessages(t *testing.T) {
	for _, sz := range sizes {
		t.Run(fmt.Sprintf("%dx%d", sz[0], sz[1]), func(t *testing.T) {
			f := newFake()
			m := newTestModel(t, f, sz[0], sz[1])
			long := strings.Repeat("lorem ipsum dolor ", 12) + "THE-END"
			send(m, messagesMsg{msgs: []*chaski.Message{{Topic: "chat", From: "bravo", FromID: "b", Data: []byte(long), Time: testStart}}})
			s := frame(m)
			wantIn(t, s, "THE-END", "bravo")
			checkFits(t, m.View(), sz[0], sz[1])
		})
	}
}

func TestLogDetailOnEnter(t *testing.T) {
	for _, sz := range sizes {
		t.Run(fmt.Sprintf("%dx%d", sz[0], sz[1]), func(t *testing.T) {
			f := newFake()
			m := newTestModel(t, f, sz[0], sz[1])
			long := "a very long log line " + strings.Repeat("x", 150) + " TAIL"
			send(m, events(&chaski.LogEvent{EventBase: chaski.EventBase{At: testStart}, Message: long}))
			keys(m, "esc", "6", "k", "enter")
			wantIn(t, frame(m), "TAIL", "esc closes")
		})
	}
}

// ---- nothing fails silently -------------------------------------------------

func TestRefusedDropIsAFailedRow(t *testing.T) {
	for _, sz := range sizes {
		t.Run(fmt.Sprintf("%dx%d", sz[0], sz[1]), func(t *testing.T) {
			f := newFake()
			f.pushErr = fmt.Errorf("%w: no subscriber of \"chat\" accepts files", chaski.ErrRefused)
			m := newTestModel(t, f, sz[0], sz[1])
			path := filepath.Join(t.TempDir(), "report.pdf")
			if err := os.WriteFile(path, []byte("pdf"), 0o600); err != nil {
				t.Fatal(err)
			}
			keys(m, "esc", "4", "z")
			cmd := send(m, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(path), Paste: true})
			s := frame(m)
			wantIn(t, s, "report.pdf", "offering")
			run(m, cmd)
			s = frame(m)
			wantIn(t, s, "report.pdf", "failed: no peer accepts")
			keys(m, "enter") // the whole reason
			wantIn(t, frame(m), "no peer accepts files on the topic")
			keys(m, "esc")
			wantNot(t, s, "✓ offering")
			// No subscriber at all says so too.
			f.pushErr = fmt.Errorf("%w: %q", chaski.ErrNoSubscribers, "chat")
			run(m, send(m, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(path), Paste: true}))
			wantIn(t, frame(m), "no connected peer subscribes")
		})
	}
}

func TestTransferWordsAndRate(t *testing.T) {
	for _, sz := range sizes {
		t.Run(fmt.Sprintf("%dx%d", sz[0], sz[1]), func(t *testing.T) {
			f := newFake()
			now := testStart
			f.transfers = []chaski.TransferInfo{
				// Offered 10 s before the answer; 50 MiB moved in the last second.
				{ID: "a", Name: "big.bin", Peer: "bravo", Outgoing: true, Size: 50 << 20, Done: 50 << 20, State: chaski.TransferDone,
					Started: now.Add(-11 * time.Second), FirstByte: now.Add(-time.Second), Ended: now, SHA256: "abcdef0123456789"},
				{ID: "b", Name: "nope.bin", Peer: "charlie", Outgoing: true, Size: 5, State: chaski.TransferFailed, Err: "chaski: refused by peer: charlie: declined by the user", Ended: now},
				{ID: "c", Name: "got.txt", Peer: "bravo", Size: 5, Done: 5, State: chaski.TransferDone, Path: "/home/me/Downloads/got.txt", Ended: now,
					HashAlgo: chaski.HashBLAKE3, Hash: "blake3:fedcba9876543210fedcba"},
				{ID: "e", Name: "coming.bin", Peer: "bravo", Size: 5, Done: 5, State: chaski.TransferVerifying, HashAlgo: chaski.HashBLAKE3, Started: now},
				{ID: "d", Name: "stop.bin", Peer: "bravo", Outgoing: true, Size: 5, State: chaski.TransferCancelled, Err: "cancelled", Ended: now},
			}
			m := newTestModel(t, f, sz[0], sz[1])
			keys(m, "esc", "4", "z")
			s := frame(m)
			wantIn(t, s, "50 MiB/s", "declined by charlie", "saved to /home/me/Dow", "cancelled")
			if sz[0] >= 200 {
				wantIn(t, s, "saved to /home/me/Downloads/got.txt", "sha256 abcdef012345", "verifying blake3")
			}
			wantNot(t, s, "4.5 MiB/s", "4.6 MiB/s")
		})
	}
}

func TestFailedConnectIsARow(t *testing.T) {
	for _, sz := range sizes {
		t.Run(fmt.Sprintf("%dx%d", sz[0], sz[1]), func(t *testing.T) {
			f := newFake()
			f.connectErr = errors.New("chaski: cannot connect to 127.0.0.1:9: connect: connection refused")
			m := newTestModel(t, f, sz[0], sz[1])
			keys(m, "esc", "1", "z", "c")
			keys(m, "127.0.0.1:9")
			cmds := keys(m, "enter")
			runAll(m, cmds)
			s := frame(m)
			wantIn(t, s, "127.0.0.1:9", "✗ failed", "retry #2 in 2s · connection refused")
			wantIn(t, s, "edges 0 +1 retrying", "0 up · 1 retrying")

			// x stops retrying.
			keys(m, "x")
			wantNot(t, frame(m), "retry #2")
		})
	}
}

func TestConnectOptionRetries(t *testing.T) {
	f := newFake()
	f.connectErr = errors.New("connection refused")
	m := newTestModelOpts(t, f, 120, 40, Options{Connect: []string{"127.0.0.1:8511"}})
	runAll(m, m.m.initCmds)
	wantIn(t, frame(m), "127.0.0.1:8511", "✗ failed", "connection refused")
}

func TestReconnectingShowsAttemptAndNext(t *testing.T) {
	for _, sz := range sizes {
		t.Run(fmt.Sprintf("%dx%d", sz[0], sz[1]), func(t *testing.T) {
			f := newFake()
			m := newTestModel(t, f, sz[0], sz[1])
			send(m, events(&chaski.EdgeStateEvent{EventBase: chaski.EventBase{At: testStart}, PeerID: "p-x", Name: "xray", Address: "127.0.0.1:9999",
				State: chaski.StateReconnecting, Attempt: 3, Next: testStart.Add(4 * time.Second)}))
			keys(m, "esc", "1", "z")
			wantIn(t, frame(m), "reconnecting #3 in 4s", "edges 0 +1 retrying")
		})
	}
}

func TestHeaderEdgesAgreeWithPane(t *testing.T) {
	for _, sz := range sizes {
		t.Run(fmt.Sprintf("%dx%d", sz[0], sz[1]), func(t *testing.T) {
			f := newFake()
			f.populate() // one up, one reconnecting
			m := newTestModel(t, f, sz[0], sz[1])
			keys(m, "esc", "1", "z")
			s := frame(m)
			wantIn(t, s, "edges 1 +1 retrying", "1 up · 1 retrying", "msg/s")
			if sz[0] >= 200 { // the traffic column is the first to go when narrow
				wantIn(t, s, "↓121 KiB ↑7.5 MiB")
			}
		})
	}
}

func TestStoreProblemShown(t *testing.T) {
	for _, sz := range sizes {
		t.Run(fmt.Sprintf("%dx%d", sz[0], sz[1]), func(t *testing.T) {
			f := newFake()
			note := "store in use by another process: start this one with --data-dir DIR"
			m := newTestModelOpts(t, f, sz[0], sz[1], Options{StoreNote: note})
			keys(m, "esc", "5")
			wantIn(t, frame(m), "store in use by another process", "--data-dir DIR")
		})
	}
}

func TestDiscoveryShowsRunning(t *testing.T) {
	for _, sz := range sizes {
		t.Run(fmt.Sprintf("%dx%d", sz[0], sz[1]), func(t *testing.T) {
			f := newFake()
			f.pairings = []chaski.PairingInfo{{Topic: "chat", Running: true, LastRun: testStart}}
			m := newTestModel(t, f, sz[0], sz[1])
			keys(m, "esc", "3", "z")
			wantIn(t, frame(m), "running", "searching…")
			f.pairings = []chaski.PairingInfo{{Topic: "chat", Paired: true, Peer: "bravo", Outcome: "paired with bravo"}}
			send(m, m.m.snapshot(true))
			send(m, frameMsg{})
			wantIn(t, frame(m), "paired with bravo")
		})
	}
}

// ---- seen by everyone -------------------------------------------------------

// TestNoColorKeepsFocusVisible: with NO_COLOR the screen has no colour but
// the focused pane, the active tab and the mode badge are in reverse video
// (today a NO_COLOR screen had no attribute at all).
func TestNoColorKeepsFocusVisible(t *testing.T) {
	t.Setenv("NO_COLOR", "1")
	f := newFake()
	f.populate()
	for _, sz := range sizes {
		m := newTestModel(t, f, sz[0], sz[1])
		v := m.View()
		if !strings.Contains(v, "\x1b[1;7m") && !strings.Contains(v, "\x1b[7;1m") && !strings.Contains(v, ";7m") && !strings.Contains(v, "[7m") {
			t.Fatalf("%v: no reverse video under NO_COLOR:\n%q", sz, v[:min(400, len(v))])
		}
		for _, seq := range []string{"[38;", "[48;", "[31m", "[32m", "[33m", "[34m", "[36m"} {
			if strings.Contains(v, seq) {
				t.Fatalf("%v: colour %q under NO_COLOR", sz, seq)
			}
		}
		checkFits(t, v, sz[0], sz[1])
	}
}

func TestPeersGetDistinctColours(t *testing.T) {
	t.Setenv("NO_COLOR", "")
	f := newFake()
	m := newTestModelOpts(t, f, 120, 40, Options{Theme: "dark"})
	a, b := m.m.sh.peerStyle("bravo"), m.m.sh.peerStyle("charlie")
	if a.GetForeground() == b.GetForeground() {
		t.Fatal("two peers share a colour")
	}
	if m.m.sh.peerStyle("bravo").GetForeground() != a.GetForeground() {
		t.Fatal("a peer's colour changed")
	}
}

func TestThemesRender(t *testing.T) {
	t.Setenv("NO_COLOR", "")
	f := newFake()
	f.populate()
	for _, th := range []string{"default", "dark", "light", "colorblind", "mono"} {
		m := newTestModelOpts(t, f, 120, 40, Options{Theme: th})
		checkFits(t, m.View(), 120, 40)
	}
}

func TestFormatting(t *testing.T) {
	for in, want := range map[time.Duration]string{
		0: "–", 40 * time.Microsecond: "40µs", 1500 * time.Microsecond: "1.50ms", 25 * time.Millisecond: "25.0ms", 2 * time.Second: "2.00s",
	} {
		if got := fmtRTT(in); got != want {
			t.Errorf("fmtRTT(%v) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 50 << 20: "50 MiB"} {
		if got := fmtBytes(in); got != want {
			t.Errorf("fmtBytes(%d) = %q, want %q", in, got, want)
		}
	}
	if got := fmtRate(12); got != "12" {
		t.Errorf("fmtRate = %q", got)
	}
}

func TestRing(t *testing.T) {
	r := newRing[int](3)
	for i := 0; i < 5; i++ {
		r.Push(i)
	}
	if r.Len() != 3 || *r.At(0) != 2 || *r.At(2) != 4 {
		t.Fatalf("ring: len %d first %d last %d", r.Len(), *r.At(0), *r.At(2))
	}
	_ = strconv.Itoa
}
