package tui

import (
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"github.com/chaski-dev/chaski/chaski"
	"github.com/chaski-dev/chaski/chaski/wire"
)

var sizes = [][2]int{{80, 24}, {160, 50}}

func newTestModel(t testing.TB, f *fakeBackend, w, h int) Model {
	t.Helper()
	m := New(f, Options{Now: func() time.Time { return testStart }, AcceptFilesPrompt: true})
	m.Update(tea.WindowSizeMsg{Width: w, Height: h})
	return m
}

// send feeds a message and runs the returned command's result back in when
// it is quick (commands that block on channels are skipped).
func send(m Model, msg tea.Msg) Model {
	m.Update(msg)
	return m
}

func events(evs ...chaski.Event) eventsMsg { return eventsMsg{evs: evs} }

func keys(m Model, ks ...string) {
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
		case "pgup":
			msg = tea.KeyMsg{Type: tea.KeyPgUp}
		default:
			msg = tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(k)}
		}
		m.Update(msg)
	}
}

// frame renders the way the program does after a frame tick.
func frame(m Model) string {
	m.Update(frameMsg{})
	return m.View()
}

func checkFits(t *testing.T, view string, w, h int) {
	t.Helper()
	lines := strings.Split(view, "\n")
	if len(lines) > h {
		t.Errorf("view has %d lines, terminal has %d", len(lines), h)
	}
	for i, l := range lines {
		if lw := ansi.StringWidth(l); lw > w {
			t.Errorf("line %d is %d wide (> %d): %q", i, lw, w, l)
		}
	}
}

func wantIn(t *testing.T, view string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(view, s) {
			t.Errorf("view lacks %q:\n%s", s, view)
		}
	}
}

func runCmd(cmd tea.Cmd) tea.Msg {
	if cmd == nil {
		return nil
	}
	return cmd()
}

func TestHeader(t *testing.T) {
	for _, sz := range sizes {
		f := newFake()
		f.populate()
		f.status.Root = true
		m := newTestModel(t, f, sz[0], sz[1])
		v := frame(m)
		checkFits(t, v, sz[0], sz[1])
		wantIn(t, v, "alpha", "*127.0.0.1:8511", "root", "up 1h15m", "edges 2", "TLS off", "1 Edges", "6 Log")
		wantIn(t, v, "↓0/s ↑0/s")
	}
	// Not all paired: no star.
	f := newFake()
	f.status.Paired = map[string]bool{"chat": false}
	m := newTestModel(t, f, 120, 30)
	if v := frame(m); strings.Contains(v, "*127.0.0.1") {
		t.Error("star shown although not all subscriptions are paired")
	}
}

func TestEdgesPane(t *testing.T) {
	for _, sz := range sizes {
		f := newFake()
		f.populate()
		m := newTestModel(t, f, sz[0], sz[1])
		v := frame(m)
		checkFits(t, v, sz[0], sz[1])
		wantIn(t, v, "STATE", "● up", "↻ reconnecting", "bravo", "42µs", "38µs", "1.30ms", "5.0%", "60%", "charlie")
		if sz[0] >= 100 {
			wantIn(t, v, "LATENCY", "×", "▁", "█", "TRAFFIC", "↓121K", "root (all)")
		} else if strings.Contains(v, "LATENCY") {
			t.Errorf("narrow pane still draws the sparkline:\n%s", v)
		}
	}
}

func TestEdgesEmptyAndActions(t *testing.T) {
	f := newFake()
	m := newTestModel(t, f, 80, 24)
	wantIn(t, frame(m), "no edges yet — press c to connect")

	f.populate()
	m.m.applySnapshot(snapshotMsg{status: f.Status(), edges: f.Edges()})
	// c prompts for an address and connects in a command.
	keys(m, "c")
	wantIn(t, frame(m), "connect to address ›")
	keys(m, "1", "2", "7", ".", "0", ".", "0", ".", "1", ":", "9")
	cmd := m.m.update(tea.KeyMsg{Type: tea.KeyEnter})
	f.connectErr = errRefused
	m.Update(runCmd(cmd))
	wantIn(t, frame(m), "connect 127.0.0.1:9: connection refused")
	if len(f.connectTo) != 1 || f.connectTo[0] != "127.0.0.1:9" {
		t.Errorf("Connect calls = %q", f.connectTo)
	}
	// p pings the selected edge.
	m.Update(runCmd(m.m.update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("p")})))
	wantIn(t, frame(m), "ping bravo: 42µs")
	// P asks for a padding size, 64KiB by default.
	keys(m, "P")
	wantIn(t, frame(m), "64KiB")
	m.Update(runCmd(m.m.update(tea.KeyMsg{Type: tea.KeyEnter})))
	if got := f.pinged; len(got) != 2 || got[1] != "p-bravo/65536" {
		t.Errorf("pings = %q", got)
	}
	// x asks before closing.
	keys(m, "down", "x")
	wantIn(t, frame(m), "close edge to charlie-with-a-very-long-node-name")
	m.Update(runCmd(m.m.update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("y")})))
	if len(f.closed) != 1 || f.closed[0] != "p-charlie" {
		t.Errorf("CloseEdge calls = %q", f.closed)
	}
	// Filter.
	keys(m, "/", "b", "r", "a", "enter")
	v := frame(m)
	wantIn(t, v, "/bra", "bravo")
	if n := len(m.m.filteredEdges()); n != 1 {
		t.Errorf("filter /bra shows %d edges", n)
	}
	keys(m, "esc")
	if n := len(m.m.filteredEdges()); n != 2 {
		t.Errorf("esc left the filter on: %d edges", n)
	}
}

func TestLatencyEventsUpdateSparkline(t *testing.T) {
	f := newFake()
	f.edges = []chaski.EdgeInfo{{PeerID: "p1", Name: "p1", State: chaski.StateUp}}
	m := newTestModel(t, f, 160, 30)
	for i := 0; i < 10; i++ {
		m.Update(events(&chaski.LatencyEvent{PeerID: "p1", RTT: time.Duration(20+i) * time.Microsecond, Lost: i == 4}))
	}
	v := frame(m)
	wantIn(t, v, "29µs", "×")
	if n := len(m.m.edges[0].Latency.History); n != 10 {
		t.Errorf("history len %d", n)
	}
}

func TestEdgeEvents(t *testing.T) {
	f := newFake()
	m := newTestModel(t, f, 100, 30)
	up := chaski.EdgeInfo{PeerID: "p9", Name: "nine", Address: "10.0.0.9:1", State: chaski.StateUp}
	m.Update(events(&chaski.EdgeUpEvent{Edge: up}))
	wantIn(t, frame(m), "● up", "nine")
	m.Update(events(&chaski.EdgeDownEvent{Edge: up, Reason: "reset", Reconnect: true}))
	wantIn(t, frame(m), "↻ reconnecting")
	m.Update(events(&chaski.EdgeStateEvent{PeerID: "p9", State: chaski.StateClosed, Err: "gave up"}))
	wantIn(t, frame(m), "no edges yet")
	keys(m, "6")
	wantIn(t, frame(m), "edge down: nine 10.0.0.9:1: reset", "WRN")
}

func msgEvent(topic, from string, seq uint64, data []byte) *chaski.MessageEvent {
	return &chaski.MessageEvent{Msg: &chaski.Message{Topic: topic, From: from, FromID: "id-" + from, Data: data,
		Time: testStart, Seq: seq, ID: wire.MessageID{Origin: wire.NodeID{9}, Seq: seq}}}
}

func TestTopicsPane(t *testing.T) {
	for _, sz := range sizes {
		f := newFake()
		f.status.Subscriptions = []string{"chat", "news"}
		m := newTestModel(t, f, sz[0], sz[1])
		keys(m, "2")
		wantIn(t, frame(m), "no messages on chat")
		// Subscribed topics come from the subscriber queue; relayed topics
		// only as events.
		m.Update(messagesMsg{msgs: []*chaski.Message{
			msgEvent("chat", "bravo", 1, []byte("hello there")).Msg,
			msgEvent("news", "charlie", 2, []byte{0xde, 0xad, 0xbe, 0xef, 0xff}).Msg,
		}})
		m.Update(events(
			msgEvent("chat", "bravo", 1, []byte("hello there")), // also as an event: shown once
			msgEvent("other", "delta", 3, []byte("relayed\x1b[31m text")),
		))
		v := frame(m)
		checkFits(t, v, sz[0], sz[1])
		wantIn(t, v, "Topics", " all ", " chat ", "12:00:00", "bravo", "hello there")
		if strings.Count(v, "hello there") != 1 {
			t.Errorf("duplicate message:\n%s", v)
		}
		if strings.Contains(v, "deadbeef") {
			t.Error("news message on the chat tab")
		}
		// ctrl+p goes to the "all" tab: every topic.
		m.Update(tea.KeyMsg{Type: tea.KeyCtrlP})
		v = frame(m)
		wantIn(t, v, "#news", "<5 bytes> de ad be ef ff", "#other", "relayed")
		if strings.Contains(v, "\x1b[31m") {
			t.Error("escape sequence from a payload reached the screen")
		}
		checkFits(t, v, sz[0], sz[1])
	}
}

func TestTopicsInputAndCommands(t *testing.T) {
	f := newFake()
	f.emitEcho = false
	m := newTestModel(t, f, 80, 24)
	keys(m, "2")
	if !m.m.typing {
		t.Fatal("the input is not focused in the Topics pane")
	}
	keys(m, "h", "i", "!")
	cmd := m.m.update(tea.KeyMsg{Type: tea.KeyEnter})
	wantIn(t, frame(m), "you", "hi!")
	m.Update(runCmd(cmd))
	if pubs, _ := f.snapshot(); len(pubs) != 1 || pubs[0] != (published{"chat", "hi!"}) {
		t.Errorf("published %v", pubs)
	}
	// History: up recalls the line.
	keys(m, "up")
	if got := m.m.input.Value(); got != "hi!" {
		t.Errorf("history recall = %q", got)
	}
	m.m.input.Reset()
	// /sub runs Subscribe.
	for _, r := range "/sub news" {
		keys(m, string(r))
	}
	m.Update(runCmd(m.m.update(tea.KeyMsg{Type: tea.KeyEnter})))
	wantIn(t, frame(m), "subscribed to news")
	// Unknown commands say so.
	for _, r := range "/bogus" {
		keys(m, string(r))
	}
	keys(m, "enter")
	wantIn(t, frame(m), "unknown command /bogus")
	// /fetch opens the value.
	for _, r := range "/fetch k1" {
		keys(m, string(r))
	}
	m.Update(runCmd(m.m.update(tea.KeyMsg{Type: tea.KeyEnter})))
	wantIn(t, frame(m), "value of k1", "fetched k1")
	keys(m, "esc")
	// Esc leaves the input; q then quits.
	keys(m, "esc")
	if m.m.typing {
		t.Fatal("esc did not leave the input")
	}
	if cmd := m.m.update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("q")}); cmd == nil {
		t.Fatal("q did not quit")
	}
}

func TestPublishFailureShows(t *testing.T) {
	f := newFake()
	m := newTestModel(t, f, 80, 24)
	keys(m, "2", "x")
	m.m.update(tea.KeyMsg{Type: tea.KeyEnter})
	m.Update(publishedMsg{id: m.m.pubSeq, err: chaski.ErrNoSubscribers})
	wantIn(t, frame(m), "✗ x", "no connected peer subscribes")
}

func TestScrollAndManyMessages(t *testing.T) {
	f := newFake()
	m := newTestModel(t, f, 80, 24)
	keys(m, "2")
	var msgs []*chaski.Message
	for i := 1; i <= 3000; i++ {
		msgs = append(msgs, msgEvent("chat", "bravo", uint64(i), []byte("line "+itoa(i))).Msg)
	}
	m.Update(messagesMsg{msgs: msgs})
	v := frame(m)
	wantIn(t, v, "line 3000")
	if n := m.m.topics["chat"].Len(); n != topicLines {
		t.Errorf("ring holds %d, want %d", n, topicLines)
	}
	keys(m, "pgup")
	v = frame(m)
	if strings.Contains(v, "line 3000") {
		t.Error("pgup did not scroll")
	}
	wantIn(t, v, "newer below")
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestDiscoveryPane(t *testing.T) {
	for _, sz := range sizes {
		f := newFake()
		f.status.Subscriptions = []string{"chat", "news", "solo"}
		f.status.Paired = map[string]bool{"chat": false, "news": false, "solo": false}
		m := newTestModel(t, f, sz[0], sz[1])
		keys(m, "3")
		v := frame(m)
		wantIn(t, v, "chat", "○ not paired", "not run — press d")
		m.Update(events(
			&chaski.DiscoveryEvent{EventBase: chaski.EventBase{At: testStart.Add(-5 * time.Second)}, Topic: "chat", Phase: "started"},
			&chaski.DiscoveryEvent{EventBase: chaski.EventBase{At: testStart.Add(-4 * time.Second)}, Topic: "chat", Phase: "paired", Peer: "bravo"},
			&chaski.PairedEvent{EventBase: chaski.EventBase{At: testStart.Add(-4 * time.Second)}, Topic: "chat", Peer: "bravo"},
			&chaski.PairedEvent{EventBase: chaski.EventBase{At: testStart.Add(-2 * time.Second)}, Topic: "solo", First: true},
			&chaski.DiscoveryEvent{EventBase: chaski.EventBase{At: testStart}, Topic: "news", Phase: "failed", Detail: "no edges"},
		))
		v = frame(m)
		checkFits(t, v, sz[0], sz[1])
		wantIn(t, v, "✓ paired", "bravo", "4s ago", "first of topic, no peer found", "failed: no edges", "EVENTS")
		cmd := m.m.update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("d")})
		m.Update(runCmd(cmd))
		if f.discover != 1 {
			t.Errorf("Discover called %d times", f.discover)
		}
	}
	f := newFake()
	f.status.Subscriptions = nil
	m := newTestModel(t, f, 80, 24)
	keys(m, "3")
	wantIn(t, frame(m), "no subscriptions — /sub TOPIC")
}

func TestDiscoveryPaneNamesSharingNeighbour(t *testing.T) {
	f := newFake()
	f.status.Subscriptions = []string{"chat"}
	f.status.Paired = map[string]bool{"chat": true}
	f.edges = []chaski.EdgeInfo{
		{Name: "relay", State: chaski.StateUp, Root: true},
		{Name: "delta", State: chaski.StateUp, Subscriptions: []string{"chat"}},
	}
	m := newTestModel(t, f, 120, 30)
	keys(m, "3")
	v := frame(m)
	wantIn(t, v, "✓ paired", "delta")
	if strings.Contains(v, "relay") {
		t.Error("a root relay is not a pairing")
	}
}

func TestTransfersPane(t *testing.T) {
	for _, sz := range sizes {
		f := newFake()
		f.populate()
		m := newTestModel(t, f, sz[0], sz[1])
		keys(m, "4")
		v := frame(m)
		checkFits(t, v, sz[0], sz[1])
		wantIn(t, v, "movie.mkv", "sending 42%", "42M/100M", "notes.txt", "sha256 ✓ 0123456789ab",
			"✗ failed", "✗ cancelled", "8.0M/s", "0:07", "███")
		if sz[0] >= 100 {
			wantIn(t, v, "✗ failed: sha256 mismatch")
		}
		// The running transfer is listed first.
		if i, j := strings.Index(v, "movie.mkv"), strings.Index(v, "notes.txt"); i > j {
			t.Error("active transfer not on top")
		}
	}
}

func TestIncomingOfferPrompt(t *testing.T) {
	f := newFake()
	m := newTestModel(t, f, 80, 24)
	m.Update(events(&chaski.TransferEvent{Transfer: chaski.TransferInfo{ID: "in1", Name: "photo.jpg", Peer: "bravo",
		Size: 3 << 20, State: chaski.TransferPending}}))
	wantIn(t, frame(m), "accept file photo.jpg (3.0 MiB) from bravo? y/n")
	m.Update(runCmd(m.m.update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("y")})))
	if acc, ok := f.accepted["in1"]; !ok || !acc {
		t.Errorf("AcceptTransfer not called: %v", f.accepted)
	}
	// A second offer withdrawn before the answer disappears.
	m.Update(events(&chaski.TransferEvent{Transfer: chaski.TransferInfo{ID: "in2", Name: "b.bin", State: chaski.TransferPending}}))
	m.Update(events(&chaski.TransferEvent{Transfer: chaski.TransferInfo{ID: "in2", Name: "b.bin", State: chaski.TransferCancelled}}))
	if len(m.m.confirms) != 0 {
		t.Errorf("withdrawn offer still asked: %v", m.m.confirms[0].question)
	}
}

func TestPasteFilesSends(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a b.txt")
	if err := os.WriteFile(a, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := newFake()
	m := newTestModel(t, f, 80, 24)
	m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("'" + a + "'"), Paste: true})
	wantIn(t, frame(m), "send 1 file(s) to topic chat?")
	cmd := m.m.update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("y")})
	for _, c := range batchCmds(cmd) {
		m.Update(c())
	}
	if _, sent := f.snapshot(); len(sent) != 1 || sent[0] != a {
		t.Errorf("SendFile calls = %q", sent)
	}
	// A paste that is not a file is text for the input.
	m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("just words"), Paste: true})
	if got := m.m.input.Value(); got != "just words" {
		t.Errorf("pasted text went to %q", got)
	}
}

func batchCmds(cmd tea.Cmd) []tea.Cmd {
	if cmd == nil {
		return nil
	}
	msg := cmd()
	if b, ok := msg.(tea.BatchMsg); ok {
		var out []tea.Cmd
		for _, c := range b {
			if c != nil {
				out = append(out, c)
			}
		}
		return out
	}
	return []tea.Cmd{func() tea.Msg { return msg }}
}

func TestStoragePane(t *testing.T) {
	for _, sz := range sizes {
		f := newFake()
		f.populate()
		m := newTestModel(t, f, sz[0], sz[1])
		m.Update(runCmd(m.m.snapshotCmd(true)))
		keys(m, "5")
		v := frame(m)
		checkFits(t, v, sz[0], sz[1])
		wantIn(t, v, "KEY", "greeting", "hello world", "in 59m00s", "never", "<4 bytes> ff 00 fe 01", "11 B")
		// Enter opens the value; esc closes.
		keys(m, "down", "enter")
		wantIn(t, frame(m), "greeting", "esc closes", "hello world")
		keys(m, "esc")
		if m.m.detail {
			t.Error("esc did not close the detail view")
		}
	}
	f := newFake()
	m := newTestModel(t, f, 80, 24)
	keys(m, "5")
	wantIn(t, frame(m), "store is empty — press n to put a key")
	// n: key, value, TTL.
	keys(m, "n", "k", "enter", "v", "enter")
	wantIn(t, frame(m), "expires after")
	m.Update(runCmd(m.m.update(tea.KeyMsg{Type: tea.KeyEnter})))
	wantIn(t, frame(m), "stored k (expires in 1h0m0s)")
	if len(f.store) != 1 || f.store[0].Key != "k" || !f.store[0].Expires.Equal(testStart.Add(time.Hour)) {
		t.Errorf("store = %+v", f.store)
	}
}

func TestLogPane(t *testing.T) {
	for _, sz := range sizes {
		f := newFake()
		m := newTestModel(t, f, sz[0], sz[1])
		keys(m, "6")
		wantIn(t, frame(m), "no log lines yet")
		m.Update(events(
			&chaski.LogEvent{EventBase: chaski.EventBase{At: testStart}, Level: slog.LevelInfo, Message: "listening", Attrs: "addr=127.0.0.1:8511"},
			&chaski.LogEvent{EventBase: chaski.EventBase{At: testStart}, Level: slog.LevelError, Message: "handshake failed", Attrs: "peer=x " + strings.Repeat("z", 300)},
			&chaski.LogEvent{EventBase: chaski.EventBase{At: testStart}, Level: slog.LevelDebug, Message: "tick"},
		))
		v := frame(m)
		checkFits(t, v, sz[0], sz[1])
		wantIn(t, v, "INF listening addr=127.0.0.1:8511", "ERR handshake failed", "DBG tick", "…")
		keys(m, "/", "h", "a", "n", "d", "enter")
		v = frame(m)
		if strings.Contains(v, "listening") || !strings.Contains(v, "handshake") {
			t.Errorf("log filter failed:\n%s", v)
		}
	}
}

func TestHelpOverlayListsEveryKey(t *testing.T) {
	for _, sz := range [][2]int{{80, 24}, {160, 50}} {
		f := newFake()
		m := newTestModel(t, f, sz[0], sz[1])
		keys(m, "?")
		v := frame(m)
		checkFits(t, v, sz[0], sz[1])
		wantIn(t, v, "Keys", "GLOBAL", "quit", "filter")
		// Every binding appears somewhere in the (scrollable) help.
		content := m.m.helpContent()
		for _, g := range m.m.keys.helpGroups() {
			for _, b := range g {
				if !strings.Contains(content, b.Help().Key) {
					t.Errorf("help lacks key %q", b.Help().Key)
				}
			}
		}
		keys(m, "esc")
		if m.m.showHelp {
			t.Error("esc did not close help")
		}
	}
}

func TestEveryPaneFitsManySizes(t *testing.T) {
	f := newFake()
	f.populate()
	f.status.Subscriptions = []string{"chat", "a-rather-long-topic-name", "news", "sports", "weather", "music", "video"}
	m := newTestModel(t, f, 80, 24)
	m.Update(runCmd(m.m.snapshotCmd(true)))
	m.Update(events(msgEvent("chat", "bravo", 1, []byte(strings.Repeat("wide 世界 ", 40)))))
	for _, sz := range [][2]int{{80, 24}, {81, 25}, {100, 30}, {120, 40}, {160, 50}, {237, 61}, {40, 12}, {30, 8}} {
		m.Update(tea.WindowSizeMsg{Width: sz[0], Height: sz[1]})
		for p := 1; p <= 6; p++ {
			m.m.switchPane(pane(p - 1))
			m.m.typing = false
			v := frame(m)
			checkFits(t, v, sz[0], sz[1])
		}
		m.m.switchPane(paneTopics)
		checkFits(t, frame(m), sz[0], sz[1])
	}
}

func TestThemesRender(t *testing.T) {
	for _, name := range []string{"default", "dark", "light", "colorblind", "mono"} {
		f := newFake()
		f.populate()
		m := New(f, Options{Theme: name, Now: func() time.Time { return testStart }})
		m.Update(tea.WindowSizeMsg{Width: 120, Height: 30})
		for p := 0; p < int(numPanes); p++ {
			m.m.switchPane(pane(p))
			checkFits(t, frame(m), 120, 30)
		}
	}
}

func TestFormatting(t *testing.T) {
	cases := map[time.Duration]string{
		0: "–", 42 * time.Microsecond: "42µs", 999 * time.Microsecond: "999µs",
		1300 * time.Microsecond: "1.30ms", 12340 * time.Microsecond: "12.3ms", 250 * time.Millisecond: "250ms",
		1500 * time.Millisecond: "1.50s", 300 * time.Nanosecond: "1µs",
	}
	for d, want := range cases {
		if got := fmtRTT(d); got != want {
			t.Errorf("fmtRTT(%v) = %q, want %q", d, got, want)
		}
	}
	if got := fmtBytes(1536); got != "1.5 KiB" {
		t.Errorf("fmtBytes = %q", got)
	}
	if n, err := parseSize("64KiB"); err != nil || n != 65536 {
		t.Errorf("parseSize = %d, %v", n, err)
	}
	if _, err := parseSize("lots"); err == nil {
		t.Error("parseSize accepted junk")
	}
	if got := fmtETA(75 * time.Second); got != "1:15" {
		t.Errorf("fmtETA = %q", got)
	}
	if got := sanitize("a\nb\x1b[2Jc"); strings.ContainsRune(got, 0x1b) {
		t.Errorf("sanitize kept ESC: %q", got)
	}
}

func TestRing(t *testing.T) {
	r := newRing[int](3)
	for i := 1; i <= 5; i++ {
		r.Push(i)
	}
	if r.Len() != 3 || *r.At(0) != 3 || *r.At(2) != 5 {
		t.Errorf("ring = %d %d %d", *r.At(0), *r.At(1), *r.At(2))
	}
}
