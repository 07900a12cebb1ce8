package tui

import (
	"hash/fnv"
	"sort"
	"strconv"
	"strings"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/chaski-dev/chaski/chaski"
)

// chatCommand is one /command of the chat input, for /help and Tab.
type chatCommand struct {
	name, args, desc string
	complete         string // what Tab completes its arguments with: "topic", "peer", "addr", ""
}

var chatCommands = []chatCommand{
	{"/help", "", "this list", ""},
	{"/me", "TEXT", "an action line (\"* you TEXT\")", "peer"},
	{"/sub", "TOPIC [TOPIC...]", "subscribe", "topic"},
	{"/unsub", "TOPIC [TOPIC...]", "unsubscribe", "topic"},
	{"/connect", "HOST:PORT", "connect to a node", "addr"},
	{"/discover", "[TOPIC...]", "find peers for topics (all subscriptions without one)", "topic"},
	{"/ping", "[PEER]", "ping a peer now (every live edge without one)", "peer"},
	{"/send", "PATH [PATH...]", "send files to the topic's subscribers (as a drop)", ""},
	{"/store", "KEY VALUE", "put a key into the store", ""},
	{"/fetch", "KEY", "fetch a key from the network", ""},
	{"/clear", "", "clear this tab's scrollback from the screen (the stored history stays)", ""},
	{"/quit", "", "leave the dashboard", ""},
}

// commandHelp is /help's text: every command with its arguments.
func commandHelp() string {
	var b strings.Builder
	b.WriteString("Chat commands (a line not starting with / is published; // sends a literal /):\n\n")
	for _, c := range chatCommands {
		b.WriteString("  " + c.name)
		if c.args != "" {
			b.WriteString(" " + c.args)
		}
		b.WriteString("\n      " + c.desc + "\n")
	}
	b.WriteString("\nWhile typing: enter publishes, ↑/↓ input history, tab completes commands, topics and peer\n" +
		"names, pgup/pgdn scroll, ctrl+end jumps to the newest line, esc leaves the input. Without the\n" +
		"input: / searches this tab, G or end jumps to the newest line, [ and ] change tabs.")
	return b.String()
}

// nickStyle is a sender's colour: the peer's colour of every pane (see
// shared.peerStyle: a hash of the name, stable across runs).
func (p *topicsPane) nickStyle(name string) lipgloss.Style { return p.sh.peerStyle(name) }

func nameHash(name string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(name))
	return h.Sum32()
}

// completion is the state of repeated Tab presses.
type completion struct {
	base  string   // the input without the word being completed
	cands []string // candidates, in order
	idx   int
	last  string // the input as Tab left it
}

// complete handles Tab while typing: it completes the word before the
// cursor (commands, topics, peer names, addresses) and cycles through the
// candidates on repeated presses. It reports false when there is nothing
// to complete, so that Tab keeps moving the focus on an empty input.
func (p *topicsPane) complete() bool {
	v := p.input.Value()
	if c := p.comp; c != nil && v == c.last && len(c.cands) > 1 {
		c.idx = (c.idx + 1) % len(c.cands)
		p.setCompleted(c)
		return true
	}
	p.comp = nil
	if strings.TrimSpace(v) == "" || strings.HasSuffix(v, " ") {
		return false
	}
	cut := strings.LastIndexByte(v, ' ') + 1
	base, word := v[:cut], v[cut:]
	var pool []string
	switch {
	case cut == 0 && strings.HasPrefix(word, "/"):
		for _, c := range chatCommands {
			pool = append(pool, c.name+" ")
		}
	default:
		kind := "peer"
		if cut > 0 && strings.HasPrefix(v, "/") {
			first := strings.ToLower(strings.Fields(v)[0])
			kind = ""
			for _, c := range chatCommands {
				if c.name == first {
					kind = c.complete
				}
			}
		}
		switch kind {
		case "topic":
			pool = p.knownTopics()
		case "addr":
			for _, e := range p.sh.edges {
				pool = append(pool, e.Address)
			}
		case "peer":
			for _, e := range p.sh.edges {
				pool = append(pool, e.Name)
			}
			if cut == 0 {
				for i := range pool {
					pool[i] += ": " // a nick at the start addresses the peer
				}
			}
		}
	}
	var cands []string
	seen := map[string]bool{}
	for _, c := range pool {
		if strings.HasPrefix(strings.ToLower(c), strings.ToLower(word)) && !seen[c] && c != word {
			seen[c] = true
			cands = append(cands, c)
		}
	}
	if len(cands) == 0 {
		return false
	}
	sort.Strings(cands)
	c := &completion{base: base, cands: cands}
	p.comp = c
	p.setCompleted(c)
	if len(cands) > 1 {
		p.sh.setNotice(false, "tab: %s", strings.Join(cands, "  "))
	}
	return true
}

func (p *topicsPane) setCompleted(c *completion) {
	s := c.base + c.cands[c.idx]
	if !strings.HasSuffix(s, " ") && len(c.cands) == 1 {
		s += " "
	}
	p.input.SetValue(s)
	p.input.CursorEnd()
	c.last = s
}

// knownTopics are this node's subscriptions and its peers'.
func (p *topicsPane) knownTopics() []string {
	set := map[string]bool{}
	for _, t := range p.sh.status.Subscriptions {
		set[t] = true
	}
	for _, e := range p.sh.edges {
		for _, t := range e.Subscriptions {
			set[t] = true
		}
	}
	out := make([]string, 0, len(set))
	for t := range set {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// historyBackend is a Backend whose node keeps the chat's scrollback
// (chaski.Config.ChatHistory); *chaski.Node is one.
type historyBackend interface {
	ChatHistory(topic string, limit int) ([]chaski.HistoryLine, error)
}

var _ historyBackend = (*chaski.Node)(nil)

type historyMsg struct {
	topic string
	lines []chaski.HistoryLine
	err   error
}

// loadHistory asks the node for the stored scrollback of the topics not
// loaded yet.
func (p *topicsPane) loadHistory() tea.Cmd {
	hb, ok := p.sh.b.(historyBackend)
	if !ok {
		return nil
	}
	var cmds []tea.Cmd
	for _, t := range p.sh.status.Subscriptions {
		if p.loaded[t] {
			continue
		}
		p.loaded[t] = true
		topic := t
		cmds = append(cmds, func() tea.Msg {
			lines, err := hb.ChatHistory(topic, topicLines)
			return historyMsg{topic: topic, lines: lines, err: err}
		})
	}
	return tea.Batch(cmds...)
}

func msgKey(fromID string, atNanos int64) string {
	return fromID + "|" + strconv.FormatInt(atNanos, 10)
}

// onHistory puts a topic's stored lines before what the dashboard has
// shown so far, marked as history. Lines the dashboard already shows, or
// that are still on their way through the message queue, appear once.
func (p *topicsPane) onHistory(h historyMsg) {
	if h.err != nil {
		p.sh.setNotice(true, "chat history of #%s: %v", h.topic, h.err)
		return
	}
	if len(h.lines) == 0 {
		return
	}
	r := p.topicRing(h.topic)
	live := make([]msgEntry, 0, r.Len())
	shown := map[string]bool{}
	for i := 0; i < r.Len(); i++ {
		e := *r.At(i)
		live = append(live, e)
		if e.fromID != "" {
			shown[msgKey(e.fromID, e.at.UnixNano())] = true
		}
	}
	var hist []msgEntry
	for _, l := range h.lines {
		k := msgKey(l.FromID, l.Time.UnixNano())
		if shown[k] {
			continue
		}
		p.pendingDup[k] = true
		from := l.From
		if l.Own {
			from = "you"
		}
		hist = append(hist, msgEntry{at: l.Time, topic: h.topic, from: from, fromID: l.FromID, data: l.Data, self: l.Own, hist: true})
	}
	r.Clear()
	for _, e := range append(hist, live...) {
		r.Push(e)
	}
	// "all": every topic's history first, by time, then the live lines.
	p.allHist = append(p.allHist, hist...)
	sort.SliceStable(p.allHist, func(i, j int) bool { return p.allHist[i].at.Before(p.allHist[j].at) })
	var allLive []msgEntry
	for i := 0; i < p.all.Len(); i++ {
		if e := p.all.At(i); !e.hist {
			allLive = append(allLive, *e)
		}
	}
	p.all.Clear()
	for _, e := range append(append([]msgEntry(nil), p.allHist...), allLive...) {
		p.all.Push(e)
	}
}

// markerLine is a full-width rule with a label ("history", "new").
func markerLine(st themeStyles, label string, w int) string {
	l := "── " + label + " "
	if n := w - lipgloss.Width(l); n > 0 {
		l += strings.Repeat("─", n)
	}
	return st.Muted.Render(trunc(l, w))
}
