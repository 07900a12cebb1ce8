package tui

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/chaski-dev/chaski/chaski"
)

const (
	connectTimeout = 15 * time.Second
	pingTimeout    = 10 * time.Second
	publishTimeout = 10 * time.Second
	fetchTimeout   = 15 * time.Second
	sendTimeout    = 30 * time.Second
	defaultPad     = 64 << 10
	defaultTTL     = time.Hour
	maxHistory     = 200
)

// onKey dispatches a key press to whichever part of the screen owns the
// keyboard: a confirmation, a prompt, the filter line, an overlay, the chat
// input, or the pane.
func (m *model) onKey(msg tea.KeyMsg) tea.Cmd {
	if msg.String() == "ctrl+c" {
		return m.quit()
	}
	if msg.Paste {
		if cmd, done := m.onPaste(msg); done {
			return cmd
		}
	}
	switch {
	case len(m.confirms) > 0:
		return m.onConfirmKey(msg)
	case m.prompt != nil:
		return m.onPromptKey(msg)
	case m.filtering:
		return m.onFilterKey(msg)
	case m.showHelp:
		return m.onHelpKey(msg)
	case m.detail:
		return m.onDetailKey(msg)
	case m.pane == paneTopics && m.typing:
		return m.onTypingKey(msg)
	}
	return m.onPaneKey(msg)
}

func (m *model) quit() tea.Cmd {
	m.quitting = true
	m.stop()
	return tea.Quit
}

// onPaste offers to send dropped files. It reports done=false when the
// paste is text for whatever input has the focus.
func (m *model) onPaste(msg tea.KeyMsg) (tea.Cmd, bool) {
	if len(m.confirms) > 0 {
		return nil, true // a question is pending: ignore stray pastes
	}
	if m.prompt != nil || m.filtering {
		return nil, false // a path pasted into a prompt is text for it
	}
	files := pastedFiles(string(msg.Runes))
	if files == nil {
		if m.prompt == nil && !m.filtering && !(m.pane == paneTopics && m.typing) {
			// Text pasted while no input is open goes to the chat input.
			m.closeOverlays()
			m.switchPane(paneTopics)
		}
		return nil, false
	}
	topic := m.sendTopic()
	if topic == "" {
		m.setNotice(true, "no topic to send %d file(s) to: subscribe first (/sub TOPIC)", len(files))
		return nil, true
	}
	q := fmt.Sprintf("send %d file(s) to topic %s? (%s)", len(files), topic, fileList(files))
	m.confirms = append(m.confirms, confirm{question: q, yes: func(m *model) tea.Cmd {
		return m.sendFiles(topic, files)
	}})
	return nil, true
}

func fileList(files []string) string {
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = filepath.Base(f)
	}
	return strings.Join(names, ", ")
}

// sendTopic is the topic files and lines go to: the selected topic tab,
// else the only subscription.
func (m *model) sendTopic() string {
	if t := m.currentTopic(); t != "" {
		return t
	}
	if len(m.status.Subscriptions) >= 1 && m.pane != paneTopics {
		return m.status.Subscriptions[0]
	}
	if len(m.status.Subscriptions) == 1 {
		return m.status.Subscriptions[0]
	}
	return ""
}

func (m *model) sendFiles(topic string, files []string) tea.Cmd {
	cmds := make([]tea.Cmd, 0, len(files))
	for _, f := range files {
		path := f
		cmds = append(cmds, func() tea.Msg {
			ctx, cancel := m.timeout(sendTimeout)
			defer cancel()
			if _, err := m.b.SendFile(ctx, topic, path, nil); err != nil {
				return resultMsg{notice: "send " + filepath.Base(path), err: err}
			}
			return resultMsg{notice: "sending " + filepath.Base(path) + " to " + topic}
		})
	}
	m.switchPane(paneTransfers)
	return tea.Batch(cmds...)
}

func (m *model) onConfirmKey(msg tea.KeyMsg) tea.Cmd {
	c := m.confirms[0]
	switch {
	case key.Matches(msg, m.keys.Yes):
		m.confirms = m.confirms[1:]
		if c.yes != nil {
			return c.yes(m)
		}
	case key.Matches(msg, m.keys.No):
		m.confirms = m.confirms[1:]
		if c.no != nil {
			return c.no(m)
		}
	}
	return nil
}

// ask opens a one-line prompt on the status line.
func (m *model) ask(label, value string, submit func(m *model, v string) tea.Cmd) tea.Cmd {
	in := m.newInput(label+" › ", "")
	in.SetValue(value)
	in.CursorEnd()
	in.Width = max(10, m.width-lipglossWidth(label)-6)
	p := &prompt{label: label, input: in, submit: submit}
	m.prompt = p
	return p.input.Focus()
}

func (m *model) onPromptKey(msg tea.KeyMsg) tea.Cmd {
	p := m.prompt
	switch msg.Type {
	case tea.KeyEsc:
		m.prompt = nil
		return nil
	case tea.KeyEnter:
		m.prompt = nil
		return p.submit(m, strings.TrimSpace(p.input.Value()))
	}
	var cmd tea.Cmd
	p.input, cmd = p.input.Update(msg)
	return cmd
}

func (m *model) onFilterKey(msg tea.KeyMsg) tea.Cmd {
	switch msg.Type {
	case tea.KeyEsc:
		m.filtering = false
		m.filter[m.pane] = ""
		m.filterIn.Blur()
		m.resetSel()
		return nil
	case tea.KeyEnter:
		m.filtering = false
		m.filterIn.Blur()
		return nil
	}
	var cmd tea.Cmd
	m.filterIn, cmd = m.filterIn.Update(msg)
	if f := m.filterIn.Value(); f != m.filter[m.pane] {
		m.filter[m.pane] = f
		m.resetSel()
	}
	return cmd
}

func (m *model) resetSel() {
	m.sel[m.pane], m.off[m.pane] = 0, 0
	if m.pane == paneTopics {
		m.scroll = 0
	}
	if m.pane == paneLog {
		m.logScroll = 0
	}
}

func (m *model) startFilter() tea.Cmd {
	m.filtering = true
	m.filterIn.SetValue(m.filter[m.pane])
	m.filterIn.CursorEnd()
	m.filterIn.Width = max(10, m.width-12)
	return m.filterIn.Focus()
}

func (m *model) onHelpKey(msg tea.KeyMsg) tea.Cmd {
	switch {
	case key.Matches(msg, m.keys.Help), key.Matches(msg, m.keys.Back), msg.String() == "q":
		m.showHelp = false
	case key.Matches(msg, m.keys.Up):
		m.helpView.LineUp(1)
	case key.Matches(msg, m.keys.Down):
		m.helpView.LineDown(1)
	case key.Matches(msg, m.keys.PgUp):
		m.helpView.ViewUp()
	case key.Matches(msg, m.keys.PgDown):
		m.helpView.ViewDown()
	}
	return nil
}

func (m *model) onDetailKey(msg tea.KeyMsg) tea.Cmd {
	switch {
	case key.Matches(msg, m.keys.Back), msg.String() == "q", msg.Type == tea.KeyEnter:
		m.detail = false
	case key.Matches(msg, m.keys.Up):
		m.detailView.LineUp(1)
	case key.Matches(msg, m.keys.Down):
		m.detailView.LineDown(1)
	case key.Matches(msg, m.keys.PgUp):
		m.detailView.ViewUp()
	case key.Matches(msg, m.keys.PgDown):
		m.detailView.ViewDown()
	case key.Matches(msg, m.keys.Top):
		m.detailView.GotoTop()
	case key.Matches(msg, m.keys.Bottom):
		m.detailView.GotoBottom()
	}
	return nil
}

func (m *model) closeOverlays() {
	m.showHelp, m.detail = false, false
}

func (m *model) switchPane(p pane) tea.Cmd {
	if p < 0 {
		p = numPanes - 1
	}
	m.pane = p % numPanes
	m.viewDirty = true
	if m.pane == paneTopics {
		m.typing = true
		return m.input.Focus()
	}
	m.typing = false
	m.input.Blur()
	return nil
}

// onGlobalKey handles the keys every pane shares; it reports whether the
// key was used.
func (m *model) onGlobalKey(msg tea.KeyMsg) (tea.Cmd, bool) {
	k := m.keys
	switch {
	case key.Matches(msg, k.Quit):
		return m.quit(), true
	case key.Matches(msg, k.Help):
		m.showHelp = true
		m.helpView.GotoTop()
		return nil, true
	case key.Matches(msg, k.NextPane):
		return m.switchPane(m.pane + 1), true
	case key.Matches(msg, k.PrevPane):
		return m.switchPane(m.pane - 1), true
	case key.Matches(msg, k.Panes):
		s := strings.TrimPrefix(msg.String(), "alt+")
		return m.switchPane(pane(s[0] - '1')), true
	case key.Matches(msg, k.Filter):
		return m.startFilter(), true
	case key.Matches(msg, k.Back):
		if m.filter[m.pane] != "" {
			m.filter[m.pane] = ""
			m.resetSel()
		}
		return nil, true
	}
	return nil, false
}

func (m *model) onPaneKey(msg tea.KeyMsg) tea.Cmd {
	if m.pane == paneTopics {
		if cmd, ok := m.onTopicsKey(msg); ok {
			return cmd
		}
	}
	if cmd, ok := m.onGlobalKey(msg); ok {
		return cmd
	}
	k := m.keys
	n := m.listLen(m.pane)
	switch {
	case key.Matches(msg, k.Up):
		if m.pane == paneLog {
			m.logScroll++
		} else {
			m.sel[m.pane]--
		}
	case key.Matches(msg, k.Down):
		if m.pane == paneLog {
			m.logScroll--
		} else {
			m.sel[m.pane]++
		}
	case key.Matches(msg, k.PgUp):
		if m.pane == paneLog {
			m.logScroll += m.bodyHeight() - 2
		} else {
			m.sel[m.pane] -= max(1, m.bodyHeight()-3)
		}
	case key.Matches(msg, k.PgDown):
		if m.pane == paneLog {
			m.logScroll -= m.bodyHeight() - 2
		} else {
			m.sel[m.pane] += max(1, m.bodyHeight()-3)
		}
	case key.Matches(msg, k.Top):
		if m.pane == paneLog {
			m.logScroll = 1 << 30
		}
		m.sel[m.pane] = 0
	case key.Matches(msg, k.Bottom):
		if m.pane == paneLog {
			m.logScroll = 0
		}
		m.sel[m.pane] = n - 1
	default:
		return m.onPaneAction(msg)
	}
	m.sel[m.pane] = clamp(m.sel[m.pane], 0, n-1)
	m.logScroll = max(0, m.logScroll)
	return nil
}

func clamp(v, lo, hi int) int {
	if v > hi {
		v = hi
	}
	if v < lo {
		v = lo
	}
	return v
}

func (m *model) onPaneAction(msg tea.KeyMsg) tea.Cmd {
	k := m.keys
	switch m.pane {
	case paneEdges:
		e, ok := m.selectedEdge()
		switch {
		case key.Matches(msg, k.Connect):
			return m.ask("connect to address", "", func(m *model, v string) tea.Cmd { return m.connect(v) })
		case key.Matches(msg, k.CloseEdge) && ok:
			id, name := e.PeerID, e.Name
			m.confirms = append(m.confirms, confirm{
				question: "close edge to " + name + " (" + e.Address + ")?",
				yes: func(m *model) tea.Cmd {
					return m.call("close edge "+name, "closed edge to "+name, func() error { return m.b.CloseEdge(id) })
				},
			})
		case key.Matches(msg, k.Ping) && ok:
			return m.ping(e, 0)
		case key.Matches(msg, k.PingPad) && ok:
			return m.ask("ping "+e.Name+" with padding", "64KiB", func(m *model, v string) tea.Cmd {
				size := defaultPad
				if v != "" {
					n, err := parseSize(v)
					if err != nil {
						m.setNotice(true, "%v", err)
						return nil
					}
					size = n
				}
				return m.ping(e, size)
			})
		}
	case paneDiscovery:
		switch {
		case key.Matches(msg, k.Discover):
			return m.discover(nil)
		case key.Matches(msg, k.DiscoverOne):
			if t, ok := m.selectedDiscTopic(); ok {
				return m.discover([]string{t})
			}
		}
	case paneTransfers:
		if key.Matches(msg, k.CancelTransfer) {
			t, ok := m.selectedTransfer()
			if !ok || t.State.Finished() {
				return nil
			}
			id, name := t.ID, t.Name
			m.confirms = append(m.confirms, confirm{
				question: "cancel transfer of " + name + "?",
				yes: func(m *model) tea.Cmd {
					return m.call("cancel "+name, "cancelled "+name, func() error { return m.b.CancelTransfer(id) })
				},
			})
		}
	case paneStore:
		switch {
		case key.Matches(msg, k.StoreNew):
			return m.ask("key", "", func(m *model, keyName string) tea.Cmd {
				if keyName == "" {
					return nil
				}
				return m.ask("value for "+keyName, "", func(m *model, value string) tea.Cmd {
					return m.ask("expires after (e.g. 1h, 0 = never)", defaultTTL.String(), func(m *model, ttlText string) tea.Cmd {
						ttl, err := parseTTL(ttlText)
						if err != nil {
							m.setNotice(true, "%v", err)
							return nil
						}
						return m.storePut(keyName, value, ttl)
					})
				})
			})
		case key.Matches(msg, k.StoreDelete):
			if e, ok := m.selectedStore(); ok {
				name := e.Key
				m.confirms = append(m.confirms, confirm{
					question: "delete key " + name + "?",
					yes: func(m *model) tea.Cmd {
						return m.call("delete "+name, "deleted "+name, func() error { return m.b.StoreDelete(name) })
					},
				})
			}
		case key.Matches(msg, k.StoreFetch):
			return m.ask("fetch key from the network", "", func(m *model, v string) tea.Cmd { return m.fetch(v) })
		case key.Matches(msg, k.StoreOpen):
			if e, ok := m.selectedStore(); ok {
				m.openDetail(e.Key, e.Value)
			}
		}
	}
	return nil
}

func parseTTL(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "":
		return defaultTTL, nil
	case "0", "never":
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("bad duration %q (e.g. 30s, 1h, 0 = never)", s)
	}
	return d, nil
}

// onTopicsKey handles the Topics pane when the input is not focused.
func (m *model) onTopicsKey(msg tea.KeyMsg) (tea.Cmd, bool) {
	k := m.keys
	switch {
	case key.Matches(msg, k.Focus):
		m.typing = true
		return m.input.Focus(), true
	case key.Matches(msg, k.NextTopic):
		m.moveTopic(1)
	case key.Matches(msg, k.PrevTopic):
		m.moveTopic(-1)
	case key.Matches(msg, k.Up):
		m.scroll++
	case key.Matches(msg, k.Down):
		m.scroll = max(0, m.scroll-1)
	case key.Matches(msg, k.PgUp):
		m.scroll += max(1, m.msgRows()-1)
	case key.Matches(msg, k.PgDown):
		m.scroll = max(0, m.scroll-max(1, m.msgRows()-1))
	case key.Matches(msg, k.Top):
		m.scroll = 1 << 30
	case key.Matches(msg, k.Bottom):
		m.scroll = 0
	default:
		return nil, false
	}
	return nil, true
}

func (m *model) moveTopic(d int) {
	n := len(m.status.Subscriptions) + 1
	m.topicTab = ((m.topicTab+d)%n + n) % n
	m.scroll = 0
}

// currentTopic is the selected topic tab ("" for "all").
func (m *model) currentTopic() string {
	if m.topicTab <= 0 || m.topicTab > len(m.status.Subscriptions) {
		return ""
	}
	return m.status.Subscriptions[m.topicTab-1]
}

func (m *model) onTypingKey(msg tea.KeyMsg) tea.Cmd {
	k := m.keys
	switch {
	case msg.Type == tea.KeyEnter && !msg.Paste:
		line := m.input.Value()
		m.input.Reset()
		m.histIdx = -1
		return m.submitLine(line)
	case msg.Type == tea.KeyEsc:
		m.typing = false
		m.input.Blur()
		return nil
	case key.Matches(msg, k.NextPane):
		return m.switchPane(m.pane + 1)
	case key.Matches(msg, k.PrevPane):
		return m.switchPane(m.pane - 1)
	case msg.String() == "alt+1" || msg.String() == "alt+2" || msg.String() == "alt+3" ||
		msg.String() == "alt+4" || msg.String() == "alt+5" || msg.String() == "alt+6":
		return m.switchPane(pane(msg.String()[4] - '1'))
	case msg.String() == "ctrl+n":
		m.moveTopic(1)
		return nil
	case msg.String() == "ctrl+p":
		m.moveTopic(-1)
		return nil
	case msg.Type == tea.KeyUp:
		m.historyMove(-1)
		return nil
	case msg.Type == tea.KeyDown:
		m.historyMove(1)
		return nil
	case msg.Type == tea.KeyPgUp:
		m.scroll += max(1, m.msgRows()-1)
		return nil
	case msg.Type == tea.KeyPgDown:
		m.scroll = max(0, m.scroll-max(1, m.msgRows()-1))
		return nil
	case msg.Type == tea.KeyF1:
		m.showHelp = true
		return nil
	}
	var cmd tea.Cmd
	m.input, cmd = m.input.Update(msg)
	return cmd
}

// historyMove walks the input history: -1 older, +1 newer.
func (m *model) historyMove(d int) {
	if len(m.hist) == 0 {
		return
	}
	if m.histIdx < 0 || m.histIdx > len(m.hist) {
		m.histIdx = len(m.hist)
	}
	if m.histIdx == len(m.hist) && d < 0 {
		m.histTmp = m.input.Value()
	}
	m.histIdx = clamp(m.histIdx+d, 0, len(m.hist))
	if m.histIdx == len(m.hist) {
		m.input.SetValue(m.histTmp)
	} else {
		m.input.SetValue(m.hist[m.histIdx])
	}
	m.input.CursorEnd()
}

func (m *model) remember(line string) {
	if n := len(m.hist); n > 0 && m.hist[n-1] == line {
		return
	}
	m.hist = append(m.hist, line)
	if len(m.hist) > maxHistory {
		m.hist = append(m.hist[:0], m.hist[len(m.hist)-maxHistory:]...)
	}
	m.histIdx = len(m.hist)
}

// submitLine publishes a chat line or runs a /command.
func (m *model) submitLine(line string) tea.Cmd {
	if strings.TrimSpace(line) == "" {
		return nil
	}
	m.remember(line)
	m.scroll = 0
	if strings.HasPrefix(line, "/") && !strings.HasPrefix(line, "//") {
		return m.command(line)
	}
	line = strings.TrimPrefix(line, "/") // "//text" sends "/text"
	topic := m.sendTopic()
	if topic == "" {
		if len(m.status.Subscriptions) == 0 {
			m.setNotice(true, "no topic: subscribe first with /sub TOPIC")
		} else {
			m.setNotice(true, "choose a topic tab first (ctrl+n / ctrl+p) — the all tab has no single topic")
		}
		return nil
	}
	return m.publish(topic, []byte(line))
}

func (m *model) publish(topic string, data []byte) tea.Cmd {
	m.pubSeq++
	id := m.pubSeq
	e := msgEntry{at: m.now(), topic: topic, from: "you", data: data, self: true, id: id}
	m.all.Push(e)
	m.topicRing(topic).Push(e)
	m.pending = append(m.pending, id)
	if len(m.pending) > 64 {
		m.pending = m.pending[1:]
	}
	b := m.b
	return func() tea.Msg {
		ctx, cancel := m.timeout(publishTimeout)
		defer cancel()
		return publishedMsg{id: id, err: b.Publish(ctx, topic, data)}
	}
}

func (m *model) command(line string) tea.Cmd {
	fields := strings.Fields(line)
	name := strings.ToLower(fields[0])
	args := fields[1:]
	rest := strings.TrimSpace(strings.TrimPrefix(line, fields[0]))
	need := func(n int, usage string) bool {
		if len(args) < n {
			m.setNotice(true, "usage: %s", usage)
			return false
		}
		return true
	}
	switch name {
	case "/sub", "/subscribe":
		if !need(1, "/sub TOPIC [TOPIC...]") {
			return nil
		}
		ts := append([]string(nil), args...)
		return m.call("subscribe "+strings.Join(ts, " "), "subscribed to "+strings.Join(ts, ", "),
			func() error { return m.b.Subscribe(ts...) })
	case "/unsub", "/unsubscribe":
		if !need(1, "/unsub TOPIC [TOPIC...]") {
			return nil
		}
		ts := append([]string(nil), args...)
		return m.call("unsubscribe "+strings.Join(ts, " "), "unsubscribed from "+strings.Join(ts, ", "),
			func() error { return m.b.Unsubscribe(ts...) })
	case "/connect":
		if !need(1, "/connect HOST:PORT") {
			return nil
		}
		return m.connect(args[0])
	case "/discover":
		return m.discover(args)
	case "/send":
		if !need(1, "/send PATH [PATH...]") {
			return nil
		}
		paths := ParsePastedPaths(rest)
		for _, p := range paths {
			if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
				if err == nil {
					err = fmt.Errorf("not a regular file")
				}
				m.setNotice(true, "send %s: %v", p, err)
				return nil
			}
		}
		topic := m.sendTopic()
		if topic == "" {
			m.setNotice(true, "no topic: choose a topic tab or /sub TOPIC first")
			return nil
		}
		return m.sendFiles(topic, paths)
	case "/ping":
		var cmds []tea.Cmd
		for _, e := range m.edges {
			if e.State == chaski.StateUp {
				cmds = append(cmds, m.ping(e, 0))
			}
		}
		if len(cmds) == 0 {
			m.setNotice(true, "no live edges to ping — /connect ADDR first")
			return nil
		}
		return tea.Batch(cmds...)
	case "/store", "/put":
		if !need(2, "/store KEY VALUE") {
			return nil
		}
		value := strings.TrimSpace(strings.TrimPrefix(rest, args[0]))
		return m.storePut(args[0], value, defaultTTL)
	case "/fetch", "/get":
		if !need(1, "/fetch KEY") {
			return nil
		}
		return m.fetch(args[0])
	case "/help":
		m.showHelp = true
		m.helpView.GotoTop()
		return nil
	case "/quit", "/q", "/exit":
		return m.quit()
	}
	m.setNotice(true, "unknown command %s — try /help (start a line with // to send a literal /)", fields[0])
	return nil
}

func (m *model) connect(addr string) tea.Cmd {
	addr = strings.TrimSpace(addr)
	if addr == "" {
		return nil
	}
	b := m.b
	return func() tea.Msg {
		ctx, cancel := m.timeout(connectTimeout)
		defer cancel()
		e, err := b.Connect(ctx, addr)
		if err != nil {
			return resultMsg{notice: "connect " + addr, err: err}
		}
		return resultMsg{notice: fmt.Sprintf("connected to %s (%s)", e.Name, e.Address)}
	}
}

func (m *model) ping(e chaski.EdgeInfo, size int) tea.Cmd {
	b := m.b
	id, name := e.PeerID, e.Name
	return func() tea.Msg {
		ctx, cancel := m.timeout(pingTimeout)
		defer cancel()
		rtt, err := b.Ping(ctx, id, size)
		what := "ping " + name
		if size > 0 {
			what += " (" + fmtBytes(int64(size)) + ")"
		}
		if err != nil {
			return resultMsg{notice: what, err: err}
		}
		return resultMsg{notice: what + ": " + fmtRTT(rtt)}
	}
}

func (m *model) discover(topics []string) tea.Cmd {
	b := m.b
	ts := append([]string(nil), topics...)
	what := "discovery"
	if len(ts) > 0 {
		what += " " + strings.Join(ts, ", ")
	}
	m.setNotice(false, "%s: running…", what)
	return func() tea.Msg {
		ctx, cancel := m.timeout(5 * time.Minute)
		defer cancel()
		if err := b.Discover(ctx, chaski.DiscoverOptions{Topics: ts}); err != nil {
			return resultMsg{notice: what, err: err}
		}
		return resultMsg{notice: what + ": finished"}
	}
}

func (m *model) storePut(k, v string, ttl time.Duration) tea.Cmd {
	b := m.b
	exp := "never expires"
	if ttl > 0 {
		exp = "expires in " + ttl.String()
	}
	return m.call("store "+k, "stored "+k+" ("+exp+")", func() error { return b.StorePut(k, []byte(v), ttl) })
}

func (m *model) fetch(k string) tea.Cmd {
	if k == "" {
		return nil
	}
	b := m.b
	return func() tea.Msg {
		ctx, cancel := m.timeout(fetchTimeout)
		defer cancel()
		v, err := b.Fetch(ctx, k)
		if err != nil {
			return resultMsg{notice: "fetch " + k, err: err}
		}
		return resultMsg{notice: fmt.Sprintf("fetched %s (%s)", k, fmtBytes(int64(len(v)))),
			openTitle: k, openBody: v, refresh: true}
	}
}

func (m *model) onMouse(msg tea.MouseMsg) tea.Cmd {
	if !tea.MouseEvent(msg).IsWheel() {
		return nil
	}
	up := msg.Button == tea.MouseButtonWheelUp
	switch {
	case m.showHelp:
		if up {
			m.helpView.LineUp(3)
		} else {
			m.helpView.LineDown(3)
		}
	case m.detail:
		if up {
			m.detailView.LineUp(3)
		} else {
			m.detailView.LineDown(3)
		}
	case m.pane == paneTopics:
		if up {
			m.scroll += 3
		} else {
			m.scroll = max(0, m.scroll-3)
		}
	case m.pane == paneLog:
		if up {
			m.logScroll += 3
		} else {
			m.logScroll = max(0, m.logScroll-3)
		}
	default:
		d := 1
		if up {
			d = -1
		}
		m.sel[m.pane] = clamp(m.sel[m.pane]+d, 0, m.listLen(m.pane)-1)
	}
	m.viewDirty = true
	return nil
}
