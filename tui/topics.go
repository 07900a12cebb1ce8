package tui

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"github.com/chaski-dev/chaski/chaski"
)

const (
	topicLines = 1000 // messages kept per topic
	maxHistory = 200  // input lines remembered
)

// msgEntry is one message of a topic view.
type msgEntry struct {
	at     time.Time
	topic  string
	from   string
	fromID string
	data   []byte
	self   bool
	signed bool   // its origin's signature verified (Message.Signed)
	hist   bool   // from the node's stored history (before this run)
	id     int    // local publish id while pending, 0 otherwise
	failed string // publish error
	// cached rendering: the wrapped lines for width lineW
	lines []string
	lineW int
	all   bool
}

type publishedMsg struct {
	id  int
	err error
}

// topicsPane is the chat: a tab per subscription plus "all", the messages
// (wrapped, newest at the bottom) and the input line.
type topicsPane struct {
	base
	all     *ring[msgEntry]
	topics  map[string]*ring[msgEntry]
	tab     int // 0 = all
	tabSet  bool
	input   textinput.Model
	on      bool // the input has the focus
	hist    []string
	histIdx int
	histTmp string
	scroll  int // entries hidden below the view (0 = follow)
	pubSeq  int
	filt    string
	rows    int // message rows at the last draw (page size)

	comp       *completion
	loaded     map[string]bool // topics whose stored history was asked for
	pendingDup map[string]bool // history lines that may still arrive as messages
	allHist    []msgEntry      // every topic's history, by time (the "all" tab)
	unread     map[string]int  // lines received on a topic while another tab was shown
	lastRead   map[string]int  // per topic: ring sequence when the user left the tab
}

func newTopicsPane(sh *shared) *topicsPane {
	p := &topicsPane{base: base{sh: sh}, all: newRing[msgEntry](topicLines), topics: map[string]*ring[msgEntry]{}, histIdx: -1,
		loaded: map[string]bool{}, pendingDup: map[string]bool{}, unread: map[string]int{}, lastRead: map[string]int{}}
	p.input = newInput(sh.st, "› ", "type a message, or /help")
	return p
}

func (p *topicsPane) id() paneID         { return paneTopics }
func (p *topicsPane) setFilter(f string) { p.filt, p.scroll = f, 0 }
func (p *topicsPane) filter() string     { return p.filt }
func (p *topicsPane) typing() bool       { return p.on }
func (p *topicsPane) want() int          { return 1 << 20 }

func (p *topicsPane) badge() string {
	if t := p.currentTopic(); t != "" {
		return "#" + t
	}
	return strconv.Itoa(len(p.sh.status.Subscriptions)) + " topics"
}

func (p *topicsPane) setTyping(on bool) tea.Cmd {
	p.on = on
	if on {
		return p.input.Focus()
	}
	p.input.Blur()
	return nil
}

func (p *topicsPane) insert(text string) {
	text = strings.TrimRight(text, "\r\n")
	text = strings.ReplaceAll(strings.ReplaceAll(text, "\r\n", " "), "\n", " ")
	p.input.SetValue(p.input.Value() + text)
	p.input.CursorEnd()
}

func (p *topicsPane) shortHelp() []key.Binding {
	k := p.sh.keys
	if p.on {
		return []key.Binding{k.Send, k.Blur, k.NextTopic, k.History, k.NextPane, k.Commands}
	}
	return []key.Binding{k.Type, k.NextTopic, k.Up, k.PgUp}
}

// syncTopics keeps the topic tabs in step with the subscriptions: the
// first subscription is selected the first time there is one.
func (p *topicsPane) syncTopics() {
	subs := p.sh.status.Subscriptions
	for _, t := range subs {
		p.topicRing(t)
	}
	if !p.tabSet && len(subs) > 0 {
		p.tab, p.tabSet = 1, true
	}
	if p.tab > len(subs) {
		p.tab = len(subs)
	}
}

func (p *topicsPane) onEvent(ev chaski.Event) {
	if _, ok := ev.(*chaski.SubscriptionEvent); ok {
		p.syncTopics()
	}
}

func (p *topicsPane) topicRing(topic string) *ring[msgEntry] {
	r := p.topics[topic]
	if r == nil {
		r = newRing[msgEntry](topicLines)
		p.topics[topic] = r
	}
	return r
}

// currentTopic is the selected topic tab ("" for "all").
func (p *topicsPane) currentTopic() string {
	subs := p.sh.status.Subscriptions
	if p.tab <= 0 || p.tab > len(subs) {
		return ""
	}
	return subs[p.tab-1]
}

// sendTopic is the topic lines and files go to: the selected topic tab,
// else the only (or first) subscription.
func (p *topicsPane) sendTopic() string {
	if t := p.currentTopic(); t != "" {
		return t
	}
	if subs := p.sh.status.Subscriptions; len(subs) > 0 {
		return subs[0]
	}
	return ""
}

// addMessage files a received message under "all" and its topic.
func (p *topicsPane) addMessage(msg *chaski.Message) {
	sh := p.sh
	self := msg.FromID != "" && msg.FromID == sh.status.ID
	if self {
		sh.seenOut++
	} else {
		sh.seenIn++
	}
	at := msg.Time
	if at.IsZero() {
		at = sh.now()
	}
	if len(p.pendingDup) > 0 {
		k := msgKey(msg.FromID, at.UnixNano())
		if p.pendingDup[k] {
			delete(p.pendingDup, k) // already shown from the stored history
			return
		}
	}
	e := msgEntry{at: at, topic: msg.Topic, from: msg.From, fromID: msg.FromID, data: msg.Data, self: self, signed: msg.Signed}
	p.push(e)
}

func (p *topicsPane) push(e msgEntry) {
	p.all.Push(e)
	p.topicRing(e.topic).Push(e)
	if cur := p.currentTopic(); !e.self && cur != "" && cur != e.topic {
		p.unread[e.topic]++
	}
	if p.scroll > 0 {
		p.scroll++ // keep the lines the user scrolled to in place
	}
}

func (p *topicsPane) onPublished(r publishedMsg) {
	mark := func(rg *ring[msgEntry]) {
		for i := rg.Len() - 1; i >= 0 && i >= rg.Len()-topicLines; i-- {
			if e := rg.At(i); e.id == r.id {
				if r.err != nil {
					e.failed = r.err.Error()
				}
				e.id, e.lines = 0, nil
				return
			}
		}
	}
	mark(p.all)
	for _, rg := range p.topics {
		mark(rg)
	}
	if r.err != nil {
		p.sh.setNotice(true, "publish: %v", r.err)
	}
}

func (p *topicsPane) moveTopic(d int) {
	n := len(p.sh.status.Subscriptions) + 1
	if t := p.currentTopic(); t != "" {
		// The marker line goes where the user leaves off.
		p.lastRead[t] = p.topicRing(t).pushed
	}
	p.tab = ((p.tab+d)%n + n) % n
	p.scroll = 0
	if t := p.currentTopic(); t != "" {
		delete(p.unread, t)
	} else {
		clear(p.unread) // "all" shows every topic
	}
}

func (p *topicsPane) scrollBy(d int) { p.scroll = max(0, p.scroll+d) }

func (p *topicsPane) msgRows() int { return max(1, p.rows-1) }

// key handles the pane's keys in command mode.
func (p *topicsPane) key(msg tea.KeyMsg) (tea.Cmd, bool) {
	k := p.sh.keys
	switch {
	case key.Matches(msg, k.Type):
		if p.m.denied("publish") {
			return nil, true
		}
		return p.setTyping(true), true
	case key.Matches(msg, k.NextTopic):
		p.moveTopic(1)
	case key.Matches(msg, k.PrevTopic):
		p.moveTopic(-1)
	case key.Matches(msg, k.Up):
		p.scroll++
	case key.Matches(msg, k.Down):
		p.scroll = max(0, p.scroll-1)
	case key.Matches(msg, k.PgUp):
		p.scroll += p.msgRows()
	case key.Matches(msg, k.PgDown):
		p.scroll = max(0, p.scroll-p.msgRows())
	case key.Matches(msg, k.Top):
		p.scroll = 1 << 30
	case key.Matches(msg, k.Bottom):
		p.scroll = 0
	default:
		return nil, false
	}
	return nil, true
}

// typeKey handles a key while the input has the focus: every printable key
// is text; Enter publishes, Esc gives the keys back to commands.
func (p *topicsPane) typeKey(msg tea.KeyMsg) tea.Cmd {
	k := p.sh.keys
	switch {
	case msg.Type == tea.KeyEnter:
		line := p.input.Value()
		p.input.Reset()
		p.histIdx = -1
		return p.submitLine(line)
	case msg.Type == tea.KeyEsc:
		// The draft goes to the history (↑ brings it back) so that keys
		// typed after Esc never join a half-written line unseen.
		if d := p.input.Value(); strings.TrimSpace(d) != "" {
			p.remember(d)
			p.input.Reset()
			p.sh.setNotice(false, "draft kept in the input history (↑ while typing brings it back)")
		}
		return p.setTyping(false)
	case msg.Type == tea.KeyCtrlN:
		p.moveTopic(1)
		return nil
	case msg.Type == tea.KeyCtrlP:
		p.moveTopic(-1)
		return nil
	case msg.Type == tea.KeyUp:
		p.historyMove(-1)
		return nil
	case msg.Type == tea.KeyDown:
		p.historyMove(1)
		return nil
	case key.Matches(msg, k.PgUp) && msg.Type != tea.KeyRunes:
		p.scroll += p.msgRows()
		return nil
	case key.Matches(msg, k.PgDown) && msg.Type != tea.KeyRunes:
		p.scroll = max(0, p.scroll-p.msgRows())
		return nil
	case msg.Type == tea.KeyCtrlEnd:
		p.scroll = 0 // the newest line (End itself moves the cursor in the input)
		return nil
	}
	var cmd tea.Cmd
	p.input, cmd = p.input.Update(msg)
	return cmd
}

// historyMove walks the input history: -1 older, +1 newer.
func (p *topicsPane) historyMove(d int) {
	if len(p.hist) == 0 {
		return
	}
	if p.histIdx < 0 || p.histIdx > len(p.hist) {
		p.histIdx = len(p.hist)
	}
	if p.histIdx == len(p.hist) && d < 0 {
		p.histTmp = p.input.Value()
	}
	p.histIdx = clamp(p.histIdx+d, 0, len(p.hist))
	if p.histIdx == len(p.hist) {
		p.input.SetValue(p.histTmp)
	} else {
		p.input.SetValue(p.hist[p.histIdx])
	}
	p.input.CursorEnd()
}

func (p *topicsPane) remember(line string) {
	if n := len(p.hist); n > 0 && p.hist[n-1] == line {
		return
	}
	p.hist = append(p.hist, line)
	if len(p.hist) > maxHistory {
		p.hist = append(p.hist[:0], p.hist[len(p.hist)-maxHistory:]...)
	}
	p.histIdx = len(p.hist)
}

// submitLine publishes a chat line or runs a /command.
func (p *topicsPane) submitLine(line string) tea.Cmd {
	if strings.TrimSpace(line) == "" {
		return nil
	}
	p.remember(line)
	p.scroll = 0
	if strings.HasPrefix(line, "/") && !strings.HasPrefix(line, "//") {
		return p.command(line)
	}
	line = strings.TrimPrefix(line, "/") // "//text" sends "/text"
	if p.m.denied("publish") {
		return nil
	}
	topic := p.sendTopic()
	if topic == "" {
		p.sh.setNotice(true, "no topic: subscribe first with /sub TOPIC")
		return nil
	}
	return p.publish(topic, []byte(line))
}

func (p *topicsPane) publish(topic string, data []byte) tea.Cmd {
	p.pubSeq++
	id := p.pubSeq
	p.sh.seenOut++
	p.push(msgEntry{at: p.sh.now(), topic: topic, from: "you", data: data, self: true, id: id})
	b, ctx := p.sh.b, p.m.ctx
	return func() tea.Msg {
		cctx, cancel := withTimeout(ctx, publishTimeout)
		defer cancel()
		return publishedMsg{id: id, err: b.Publish(cctx, topic, data)}
	}
}

func (p *topicsPane) command(line string) tea.Cmd {
	m, sh := p.m, p.sh
	fields := strings.Fields(line)
	name := strings.ToLower(fields[0])
	args := fields[1:]
	rest := strings.TrimSpace(strings.TrimPrefix(line, fields[0]))
	need := func(n int, usage string) bool {
		if len(args) < n {
			sh.setNotice(true, "usage: %s", usage)
			return false
		}
		return true
	}
	switch name {
	case "/sub", "/subscribe":
		if !need(1, "/sub TOPIC [TOPIC...]") || m.denied("subscribe") {
			return nil
		}
		ts := append([]string(nil), args...)
		return m.call("subscribe "+strings.Join(ts, " "), "subscribed to "+strings.Join(ts, ", "),
			func() error { return sh.b.Subscribe(ts...) })
	case "/unsub", "/unsubscribe":
		if !need(1, "/unsub TOPIC [TOPIC...]") || m.denied("unsubscribe") {
			return nil
		}
		ts := append([]string(nil), args...)
		return m.call("unsubscribe "+strings.Join(ts, " "), "unsubscribed from "+strings.Join(ts, ", "),
			func() error { return sh.b.Unsubscribe(ts...) })
	case "/connect":
		if !need(1, "/connect HOST:PORT") || m.denied("connect") {
			return nil
		}
		return m.startDial(args[0])
	case "/discover":
		return m.discover(args)
	case "/send":
		if !need(1, "/send PATH [PATH...]") {
			return nil
		}
		if sh.opts.NoLocalFiles {
			sh.setNotice(true, "files cannot be sent from this dashboard (a path would name a file on the server)")
			return nil
		}
		paths := ParsePastedPaths(rest)
		for _, x := range paths {
			if st, err := os.Stat(x); err != nil || !st.Mode().IsRegular() {
				if err == nil {
					err = fmt.Errorf("not a regular file (directories are not supported yet)")
				}
				sh.setNotice(true, "send %s: %v", x, err)
				return nil
			}
		}
		return m.dropFiles(paths)
	case "/ping":
		var cmds []tea.Cmd
		for _, e := range sh.edges {
			if e.State == chaski.StateUp && (len(args) == 0 || e.Name == args[0] || e.PeerID == args[0]) {
				cmds = append(cmds, m.ping(e, 0))
			}
		}
		if len(cmds) == 0 {
			if len(args) > 0 {
				sh.setNotice(true, "no live edge to %s", args[0])
			} else {
				sh.setNotice(true, "no live edges to ping — /connect ADDR first")
			}
			return nil
		}
		return tea.Batch(cmds...)
	case "/me":
		if !need(1, "/me TEXT") || m.denied("publish") {
			return nil
		}
		topic := p.sendTopic()
		if topic == "" {
			sh.setNotice(true, "no topic: subscribe first with /sub TOPIC")
			return nil
		}
		// Plain text, so every subscriber (chaski sub too) reads it.
		return p.publish(topic, []byte("* "+sh.status.Name+" "+rest))
	case "/clear":
		if t := p.currentTopic(); t != "" {
			p.topicRing(t).Clear()
		} else {
			p.all.Clear()
			for _, r := range p.topics {
				r.Clear()
			}
			p.allHist = nil
		}
		p.scroll = 0
		return nil
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
		m.openDetail("chat commands", []byte(commandHelp()))
		return nil
	case "/quit", "/q", "/exit":
		return m.quit()
	}
	sh.setNotice(true, "unknown command %s — try /help (start a line with // to send a literal /)", fields[0])
	return nil
}

func (p *topicsPane) renderTabs(w int) string {
	st := p.sh.st
	subs := p.sh.status.Subscriptions
	if p.tab > len(subs) {
		p.tab = len(subs)
	}
	parts := make([]string, 0, len(subs)+1)
	selEnd, pos := 0, 0
	for i := 0; i <= len(subs); i++ {
		name := "all"
		if i > 0 {
			name = "#" + subs[i-1]
			if p.sh.status.Paired[subs[i-1]] {
				name += " " + st.Symbols.OK
			}
		}
		unread := 0
		if i > 0 {
			unread = p.unread[subs[i-1]]
		}
		if unread > 0 {
			// The activity marker: a count of lines not seen yet.
			name += " •" + strconv.Itoa(min(unread, 999))
		}
		label := " " + name + " "
		lw := lipgloss.Width(label)
		switch {
		case i == p.tab:
			selEnd = pos + lw
			parts = append(parts, st.TabActive.Render(label))
		case unread > 0:
			parts = append(parts, st.Warn.Bold(true).Render(label))
		default:
			parts = append(parts, st.Tab.Render(label))
		}
		pos += lw + 1
	}
	line := strings.Join(parts, " ")
	// Keep the selected tab in view when the tabs overflow.
	if lipgloss.Width(line) > w && selEnd > w-2 {
		skip := 0
		for skip < p.tab && selEnd+2 >= w {
			selEnd -= lipgloss.Width(parts[skip]) + 1
			skip++
		}
		line = st.Muted.Render("‹ ") + strings.Join(parts[skip:], " ")
	}
	return trunc(line, w)
}

func (p *topicsPane) view(w, h int, focused bool) []string {
	st := p.sh.st
	if h < 2 {
		return fill([]string{p.inputLine(w)}, h)
	}
	topic := p.currentTopic()
	r := p.all
	if topic != "" {
		r = p.topicRing(topic)
	}
	allTab := topic == ""
	rows := h - 2
	p.rows = rows
	body := make([]string, 0, rows)
	// Walk from the newest entry back, skipping p.scroll matching entries,
	// until the rows are full; an entry's wrapped lines stay together
	// (the oldest may be cut at its top).
	total, skip := 0, p.scroll
	var picked [][]string
	used := 0
	readAt, hasRead := -1, false
	if topic != "" {
		readAt, hasRead = p.lastRead[topic]
	}
	newerHist, newerSeq := true, r.pushed
	for i := r.Len() - 1; i >= 0 && used < rows; i-- {
		e := r.At(i)
		seq := r.Seq(i)
		if p.filt != "" {
			text, _ := payloadText(e.data, 256)
			if !matches(p.filt, e.from, text, e.topic) {
				continue
			}
		}
		total++
		if skip > 0 {
			skip--
			newerHist, newerSeq = e.hist, seq
			continue
		}
		// Marker lines between this entry and the newer one above it.
		if hasRead && seq < readAt && newerSeq >= readAt && newerSeq < r.pushed && len(picked) > 0 {
			picked = append(picked, []string{markerLine(st, "new since you left #"+topic, w)})
			used++
		}
		if e.hist && !newerHist && len(picked) > 0 {
			picked = append(picked, []string{markerLine(st, "history (stored before this run) above", w)})
			used++
		}
		newerHist, newerSeq = e.hist, seq
		ls := p.entryLines(e, w, allTab)
		picked = append(picked, ls)
		used += len(ls)
	}
	if skip > 0 {
		p.scroll -= skip // scrolled past the oldest entry
	}
	for i := len(picked) - 1; i >= 0; i-- {
		body = append(body, picked[i]...)
	}
	if len(body) > rows {
		body = body[len(body)-rows:]
	}
	if len(picked) == 0 {
		var hint string
		switch {
		case p.filt != "":
			hint = "no message matches /" + p.filt + " — esc clears the filter"
		case len(p.sh.status.Subscriptions) == 0:
			hint = "no subscriptions yet — type /sub TOPIC, then chat; /help lists commands"
		case allTab:
			hint = "no messages yet — type a line and press enter to publish"
		default:
			hint = "no messages on #" + topic + " — type a line and press enter to publish"
		}
		body = wrapHint(st, hint, w)
	}
	for len(body) < rows {
		body = append([]string{""}, body...)
	}
	if p.scroll > 0 && len(body) > 0 {
		body[0] = st.Muted.Render(fit("↓ "+strconv.Itoa(p.scroll)+" newer below — G or end follows", w, false))
	}
	lines := make([]string, 0, h)
	lines = append(lines, p.renderTabs(w))
	lines = append(lines, body...)
	lines = append(lines, p.inputLine(w))
	return lines
}

// inputLine is the input: live while typing, else a reminder of how to type.
func (p *topicsPane) inputLine(w int) string {
	st := p.sh.st
	prompt := "› "
	if t := p.sendTopic(); t != "" {
		prompt = "#" + t + " › "
	}
	if p.sh.readOnly {
		return st.Muted.Render(trunc("read-only: watching, not publishing", w))
	}
	if p.on {
		p.input.Prompt = prompt
		p.input.Width = max(1, w-lipgloss.Width(prompt)-1)
		return trunc(p.input.View(), w)
	}
	draft := p.input.Value()
	hint := "press i or enter to type (Esc leaves typing)"
	if draft != "" {
		hint = sanitize(draft) + "  (i continues)"
	}
	return trunc(st.Muted.Render(prompt+hint), w)
}

// entryLines renders one message, wrapped to w cells, cached per width.
func (p *topicsPane) entryLines(e *msgEntry, w int, allTab bool) []string {
	if e.lines != nil && e.lineW == w && e.all == allTab {
		return e.lines
	}
	st := p.sh.st
	var head strings.Builder
	head.WriteString(st.MsgTime.Render(e.at.Format("15:04:05")))
	head.WriteByte(' ')
	nameW := 12
	if w < 50 {
		nameW = 8
	}
	if allTab {
		head.WriteString(st.Accent.Render(fit("#"+e.topic, 10, false)))
		head.WriteByte(' ')
	}
	from := e.from
	sender := p.nickStyle(e.from)
	if e.self {
		from, sender = "you", st.MsgSelf
	}
	text, bin := payloadText(e.data, 4096)
	if !bin && strings.HasPrefix(text, "* ") {
		// A /me line: the name is in the text.
		from = "*"
	}
	if e.signed && !e.self && from != "*" {
		// The origin's signature verified: a mark after the name, which
		// keeps its column.
		mark := st.Symbols.OK
		name := trunc(from, max(1, nameW-lipgloss.Width(mark)))
		head.WriteString(sender.Render(name))
		head.WriteString(st.OK.Render(mark))
		head.WriteString(strings.Repeat(" ", max(0, nameW-lipgloss.Width(name)-lipgloss.Width(mark))))
	} else {
		head.WriteString(sender.Render(fit(from, nameW, false)))
	}
	head.WriteByte(' ')
	headW := lipgloss.Width(head.String())
	style := st.MsgText
	switch {
	case e.hist:
		style = st.Muted
	case e.failed != "":
		text = st.Symbols.Fail + " " + text + "  (not delivered: " + e.failed + ")"
		style = st.Error
	case e.id != 0:
		text += " " + st.Symbols.Pending
	case bin:
		style = st.MsgBinary
	}
	var lines []string
	if headW+8 > w {
		// Too narrow for a text column: one truncated line.
		lines = []string{head.String() + style.Render(trunc(text, max(1, w-headW)))}
	} else {
		parts := strings.Split(ansi.Wrap(text, w-headW, ""), "\n")
		if len(parts) > 50 {
			parts = append(parts[:49], ellipsis)
		}
		pad := strings.Repeat(" ", headW)
		for i, s := range parts {
			if i == 0 {
				lines = append(lines, head.String()+style.Render(s))
			} else {
				lines = append(lines, pad+style.Render(s))
			}
		}
	}
	e.lines, e.lineW, e.all = lines, w, allTab
	return lines
}
