package tui

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/chaski-dev/chaski/chaski"
	"github.com/chaski-dev/chaski/chaski/store"
)

func chatMsg(topic, from, text string) *chaski.Message {
	return &chaski.Message{Topic: topic, From: from, FromID: "id-" + from, Data: []byte(text), Time: testStart}
}

func chatModel(t *testing.T) (Model, *fakeBackend) {
	f := newFake()
	f.populate()
	f.status.Subscriptions = []string{"chat", "news"}
	m := newTestModel(t, f, 120, 40)
	return m, f
}

// Lines on a topic that is not shown count as unread on its tab; showing
// the tab clears the count; coming back to a tab left earlier shows a
// marker line above what arrived since.
func TestChatUnreadCountsAndMarker(t *testing.T) {
	m, _ := chatModel(t)
	send(m, messagesMsg{msgs: []*chaski.Message{chatMsg("news", "bravo", "n1"), chatMsg("news", "bravo", "n2"), chatMsg("chat", "bravo", "c1")}})
	v := frame(m)
	wantIn(t, v, "#chat", "#news •2", "c1")
	wantNot(t, v, "n1")
	keys(m, "esc", "]") // to #news
	v = frame(m)
	wantIn(t, v, "n1", "n2")
	wantNot(t, v, "•2")
	keys(m, "[") // back to #chat, leaving #news after n2
	send(m, messagesMsg{msgs: []*chaski.Message{chatMsg("news", "bravo", "n3")}})
	wantIn(t, frame(m), "#news •1")
	keys(m, "]")
	v = frame(m)
	wantIn(t, v, "new since you left #news")
	if strings.Index(v, "n2") > strings.Index(v, "new since you left") || strings.Index(v, "n3") < strings.Index(v, "new since you left") {
		t.Errorf("marker not between n2 and n3:\n%s", v)
	}
}

// Up and Down walk the input history while typing.
func TestChatInputHistory(t *testing.T) {
	m, _ := chatModel(t)
	keys(m, "one", "enter", "two", "enter", "dra")
	keys(m, "up")
	if got := m.m.chat.input.Value(); got != "two" {
		t.Fatalf("up: %q", got)
	}
	keys(m, "up")
	if got := m.m.chat.input.Value(); got != "one" {
		t.Fatalf("up up: %q", got)
	}
	keys(m, "down", "down")
	if got := m.m.chat.input.Value(); got != "dra" {
		t.Fatalf("back to the draft: %q", got)
	}
}

// Tab completes commands, topics after /sub, and peer names; on an empty
// input it still moves the focus.
func TestChatTabCompletion(t *testing.T) {
	m, _ := chatModel(t)
	keys(m, "/su", "tab")
	if got := m.m.chat.input.Value(); got != "/sub " {
		t.Fatalf("/su<tab> = %q", got)
	}
	keys(m, "ne", "tab")
	if got := m.m.chat.input.Value(); got != "/sub news " {
		t.Fatalf("/sub ne<tab> = %q", got)
	}
	m.m.chat.input.SetValue("")
	keys(m, "br", "tab")
	if got := m.m.chat.input.Value(); got != "bravo: " {
		t.Fatalf("br<tab> = %q", got)
	}
	m.m.chat.input.SetValue("/ping c")
	m.m.chat.input.CursorEnd()
	keys(m, "tab")
	if got := m.m.chat.input.Value(); got != "/ping charlie-with-a-very-long-node-name " {
		t.Fatalf("/ping c<tab> = %q", got)
	}
	m.m.chat.input.SetValue("")
	keys(m, "tab")
	if m.m.focus == paneTopics {
		t.Error("tab on an empty input did not move the focus")
	}
}

// /help lists every command with its arguments; /me publishes an action
// line; /clear empties the tab.
func TestChatCommands(t *testing.T) {
	m, f := chatModel(t)
	keys(m, "/help", "enter")
	v := frame(m)
	wantIn(t, v, "/sub TOPIC [TOPIC...]", "/send PATH [PATH...]", "/connect HOST:PORT", "/me TEXT", "/ping [PEER]", "/clear", "/unsub TOPIC")
	keys(m, "esc")
	runAll(m, keys(m, "/me waves", "enter"))
	pubs, _ := f.snapshot()
	if len(pubs) != 1 || pubs[0].data != "* alpha waves" || pubs[0].topic != "chat" {
		t.Fatalf("published %+v", pubs)
	}
	wantIn(t, frame(m), "* alpha waves")
	keys(m, "/clear", "enter")
	wantNot(t, frame(m), "alpha waves")
}

// A nick has the same colour in every run and every pane: a hash of the
// name, whatever order peers appear in (while their hashes differ); two
// names whose hashes collide still get distinct colours.
func TestNickColourStable(t *testing.T) {
	m1, _ := chatModel(t)
	m2, _ := chatModel(t)
	n := len(m1.m.sh.st.Peers)
	if n < 2 {
		t.Skip("palette without peer colours")
	}
	// Names with distinct hash slots, and one that collides with the first.
	var names []string
	slots := map[uint32]string{}
	var collide string
	for i := 0; len(names) < 3 || collide == ""; i++ {
		name := "peer" + strconv.Itoa(i)
		slot := nameHash(name) % uint32(n)
		if _, ok := slots[slot]; !ok && len(names) < 3 {
			slots[slot] = name
			names = append(names, name)
		} else if slots[slot] == names[0] && collide == "" {
			collide = name
		}
	}
	for _, nm := range names {
		m1.m.sh.peerStyle(nm)
	}
	for i := len(names) - 1; i >= 0; i-- {
		m2.m.sh.peerStyle(names[i]) // another order of appearance
	}
	for _, nm := range names {
		if m1.m.chat.nickStyle(nm).GetForeground() != m2.m.sh.peerStyle(nm).GetForeground() {
			t.Errorf("%s changes colour between runs", nm)
		}
	}
	if m1.m.sh.peerStyle(collide).GetForeground() == m1.m.sh.peerStyle(names[0]).GetForeground() {
		t.Errorf("%s and %s share a colour", collide, names[0])
	}
}

// The scrollback of a real node is in its store after a restart: the
// dashboard of the restarted node shows the lines, marked as history.
func TestFlowChatHistoryAfterRestart(t *testing.T) {
	if os.Getenv("CHASKI_TUI_SKIP_NODE") != "" {
		t.Skip("CHASKI_TUI_SKIP_NODE set")
	}
	path := filepath.Join(t.TempDir(), "store.db")
	start := func(name string, st *store.Store) *chaski.Node {
		cfg := chaski.Config{Name: name}
		if st != nil {
			cfg.Store, cfg.ChatHistory = st, 1000
		}
		return startChatNode(t, cfg)
	}
	st, err := store.Open(path, store.Options{PurgeInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	a, b := start("tui-a", st), start("peer-b", nil)
	ctx, cancel := context.WithTimeout(context.Background(), flowWait)
	defer cancel()
	if _, err := b.Connect(ctx, a.Addr()); err != nil {
		t.Fatal(err)
	}
	for {
		err := b.Publish(ctx, "chat", []byte("before the restart"))
		if err == nil {
			break
		}
		if !errors.Is(err, chaski.ErrNoSubscribers) || ctx.Err() != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got, err := nextMessage(a, flowWait); err != nil || string(got.Data) != "before the restart" {
		t.Fatalf("a got %v %v", got, err)
	}
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	st.Close()
	st2, err := store.Open(path, store.Options{PurgeInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st2.Close() })
	a2 := start("tui-a", st2)
	m := New(a2, Options{Title: "chaski-real"})
	t.Cleanup(m.Close)
	view := func() string {
		m.m.viewDirty = true
		return frame(m)
	}
	deadline := time.Now().Add(flowWait)
	// Drive the model as the program does: Init's commands, then their results.
	for _, c := range m.m.initCmds {
		run(m, c)
	}
	send(m, tea.WindowSizeMsg{Width: 120, Height: 40})
	for !strings.Contains(view(), "before the restart") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		run(m, m.m.chat.loadHistory())
	}
	v := view()
	wantIn(t, v, "peer-b", "before the restart")
	e := m.m.chat.topicRing("chat").At(0)
	if !e.hist || e.from != "peer-b" {
		t.Errorf("first line %+v is not marked as history", e)
	}
}

// PgUp scrolls back while typing, Ctrl-End jumps to the newest line; /
// (without the input) searches the tab.
func TestChatScrollJumpAndSearch(t *testing.T) {
	m, _ := chatModel(t)
	var msgs []*chaski.Message
	for i := 0; i < 100; i++ {
		msgs = append(msgs, chatMsg("chat", "bravo", "line "+strconv.Itoa(i)))
	}
	send(m, messagesMsg{msgs: msgs})
	wantIn(t, frame(m), "line 99")
	send(m, tea.KeyMsg{Type: tea.KeyPgUp})
	v := frame(m)
	wantIn(t, v, "newer below")
	wantNot(t, v, "line 99")
	send(m, tea.KeyMsg{Type: tea.KeyCtrlEnd})
	v = frame(m)
	wantIn(t, v, "line 99")
	wantNot(t, v, "newer below")
	keys(m, "esc", "/", "line 4", "enter")
	v = frame(m)
	wantIn(t, v, "line 4 ", "line 42")
	wantNot(t, v, "line 99", "line 50")
}

// A message whose origin's signature verified carries a mark after the
// sender's name; an unsigned one does not, and the text column stays put.
func TestChatMarksSignedMessages(t *testing.T) {
	m, _ := chatModel(t)
	signed := chatMsg("chat", "alice", "signed-line")
	signed.Signed = true
	send(m, messagesMsg{msgs: []*chaski.Message{signed, chatMsg("chat", "bob", "plain-line")}})
	v := frame(m)
	var sl, pl string
	for _, l := range strings.Split(v, "\n") {
		switch {
		case strings.Contains(l, "signed-line"):
			sl = l
		case strings.Contains(l, "plain-line"):
			pl = l
		}
	}
	if !strings.Contains(sl, "alice✓") {
		t.Fatalf("signed line without the mark: %q", sl)
	}
	if strings.Contains(pl, "✓") {
		t.Fatalf("unsigned line with the mark: %q", pl)
	}
	if col := func(l, s string) int { return utf8.RuneCountInString(l[:strings.Index(l, s)]) }; col(sl, "signed-line") != col(pl, "plain-line") {
		t.Fatalf("text columns differ:\n%s\n%s", sl, pl)
	}
}

// The header says whether the node signs or requires signatures, and how
// many unsigned or badly signed publishes it dropped.
func TestHeaderShowsSignatures(t *testing.T) {
	f := newFake()
	f.status.RequireSignatures, f.status.Signing, f.status.Unsigned = true, true, 7
	wantIn(t, frame(newTestModel(t, f, 200, 40)), "signed only · unsigned dropped 7")
	f.mu.Lock()
	f.status.RequireSignatures, f.status.Unsigned, f.status.BadSignatures = false, 0, 2
	f.mu.Unlock()
	v := frame(newTestModel(t, f, 200, 40))
	wantIn(t, v, "signed on", "bad signatures 2")
	wantNot(t, v, "signed only")
	f.mu.Lock()
	f.status.Signing, f.status.BadSignatures = false, 0
	f.mu.Unlock()
	wantNot(t, frame(newTestModel(t, f, 200, 40)), "signed")
}

// The help overlay explains the mark of a verified sender.
func TestHelpExplainsSignedMark(t *testing.T) {
	m := newTestModel(t, newFake(), 160, 50)
	keys(m, "esc", "?")
	wantIn(t, frame(m), "after a sender's name: the message carried its publisher's signature")
}
