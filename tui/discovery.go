package tui

import (
	"strconv"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/chaski-dev/chaski/chaski"
)

// discoveryPane shows each subscription's pairing (from the node's own
// record, so a discovery started before the dashboard shows as running),
// the nodes found nearby (NearbyBackend; Enter connects to one) and the
// recent discovery events. The selection runs over the pairing rows, then
// the nearby rows.
type discoveryPane struct {
	base
	list
	hist    *ring[logEntry]
	started map[string]bool // topics this dashboard asked about, until the node's record says
}

func newDiscoveryPane(sh *shared) *discoveryPane {
	return &discoveryPane{base: base{sh: sh}, hist: newRing[logEntry](200), started: map[string]bool{}}
}

func (p *discoveryPane) id() paneID { return paneDiscovery }

func (p *discoveryPane) rows() []chaski.PairingInfo {
	var out []chaski.PairingInfo
	for _, pi := range p.sh.pairings {
		if matches(p.filt, pi.Topic, pi.Peer, pi.Outcome) {
			out = append(out, pi)
		}
	}
	return out
}

func (p *discoveryPane) isRunning(pi chaski.PairingInfo) bool {
	return pi.Running || p.started[pi.Topic]
}

func (p *discoveryPane) running(topics []string) {
	if len(topics) == 0 {
		for _, pi := range p.sh.pairings {
			if !pi.Paired {
				p.started[pi.Topic] = true
			}
		}
		return
	}
	for _, t := range topics {
		p.started[t] = true
	}
}

func (p *discoveryPane) badge() string {
	paired, run := 0, 0
	for _, pi := range p.sh.pairings {
		if pi.Paired {
			paired++
		}
		if p.isRunning(pi) {
			run++
		}
	}
	s := strconv.Itoa(paired) + "/" + strconv.Itoa(len(p.sh.pairings)) + " paired"
	if run > 0 {
		s += " · " + strconv.Itoa(run) + " running"
	}
	return s + nearbyBadge(len(p.sh.nearby))
}

func (p *discoveryPane) want() int {
	n := len(p.sh.pairings) + 1 + min(3, p.hist.Len())
	if len(p.sh.nearby) > 0 {
		n += len(p.sh.nearby) + 1
	}
	return n
}

func (p *discoveryPane) shortHelp() []key.Binding {
	k := p.sh.keys
	if len(p.sh.nearby) > 0 && p.sel >= len(p.rows()) {
		return []key.Binding{k.Discover, k.ConnectNearby}
	}
	return []key.Binding{k.Discover, k.DiscoverOne}
}

func (p *discoveryPane) onEvent(ev chaski.Event) {
	switch e := ev.(type) {
	case *chaski.DiscoveryEvent:
		if e.Phase != "started" {
			delete(p.started, e.Topic)
		}
		text := "discovery #" + e.Topic + ": " + e.Phase
		if e.Peer != "" {
			text += " with " + e.Peer
		}
		if e.Detail != "" {
			text += " (" + e.Detail + ")"
		}
		lvl := 0
		if e.Phase == "failed" {
			lvl = 8
		}
		p.hist.Push(logEntry{at: e.When(), level: lvl, text: sanitize(text)})
	case *chaski.PairedEvent:
		delete(p.started, e.Topic)
	}
}

func (p *discoveryPane) key(msg tea.KeyMsg) (tea.Cmd, bool) {
	k, m := p.sh.keys, p.m
	rows := p.rows()
	near := p.nearbyRows()
	if p.move(k, msg, len(rows)+len(near), 5) {
		return nil, true
	}
	switch {
	case key.Matches(msg, k.Discover):
		return m.discover(nil), true
	case p.sel >= len(rows) && key.Matches(msg, k.ConnectNearby):
		if n, ok := selectedOf(near, p.sel-len(rows)); ok {
			return m.connectNearby(n), true
		}
	case key.Matches(msg, k.DiscoverOne):
		if pi, ok := selectedOf(rows, p.sel); ok {
			return m.discover([]string{pi.Topic}), true
		}
	}
	return nil, false
}

func (p *discoveryPane) view(w, h int, focused bool) []string {
	sh := p.sh
	st := sh.st
	rows := p.rows()
	near := p.nearbyRows()
	p.sel = clamp(p.sel, 0, max(0, len(rows)+len(near)-1))
	// Pairings first, then the nodes nearby (up to half the pane when
	// there are pairings too), then the recent events in what is left.
	nearH := 0
	if len(near) > 0 {
		nearH = min(len(near)+1, h)
		if len(sh.pairings) > 0 || sh.status.Root {
			nearH = min(nearH, max(2, h/2))
		}
	}
	nearSel := -1
	if focused && p.sel >= len(rows) {
		nearSel = p.sel - len(rows)
	}
	var top []string
	switch {
	case sh.status.Root:
		top = []string{st.Muted.Render(trunc("root: paired for every topic (relays them all)", w))}
	case len(sh.pairings) == 0:
		top = wrapHint(st, "no subscriptions — /sub TOPIC in the chat, then d here discovers a peer", w)
	default:
		top = p.pairingLines(rows, w, h-nearH, focused)
	}
	if len(top) > h-nearH {
		top = top[:h-nearH]
	}
	lines := append(top, p.nearbyView(near, w, nearH, nearSel)...)
	if len(sh.pairings) > 0 && !sh.status.Root && p.hist.Len() > 0 && len(lines) < h-1 {
		lines = append(lines, st.TableHeader.Render(fit(" RECENT", w, false)))
		room := h - len(lines)
		for i := max(0, p.hist.Len()-room); i < p.hist.Len(); i++ {
			lines = append(lines, logLine(st, p.hist.At(i), w))
		}
	}
	return fill(lines, h)
}

// pairingLines is the table of pairings in at most h lines, leaving room
// for three recent events when there are some.
func (p *discoveryPane) pairingLines(rows []chaski.PairingInfo, w, h int, focused bool) []string {
	sh := p.sh
	st := sh.st
	t := newTable(st, []col{
		{title: "TOPIC", min: 8, max: 24},
		{title: "STATE", min: 12, max: 14},
		{title: "WITH", min: 8, max: 18, prio: 2},
		{title: "LAST RUN", min: 9, max: 10, prio: 3, right: true},
		{title: "OUTCOME", min: 12, max: 80, prio: 1},
	}, w)
	lines := []string{t.header()}
	tableRows := max(1, min(len(rows), h-1))
	if p.hist.Len() > 0 && h >= 6 {
		tableRows = max(1, min(len(rows), h-1-min(3, p.hist.Len())-1))
	}
	p.off = window(min(p.sel, max(0, len(rows)-1)), p.off, tableRows, len(rows))
	now := sh.now()
	for i := p.off; i < len(rows) && i < p.off+tableRows; i++ {
		pi := rows[i]
		state, sty := st.Symbols.Pending+" not paired", st.Warn
		if pi.Paired {
			state, sty = st.Symbols.OK+" paired", st.OK
		}
		outcome := pi.Outcome
		if p.isRunning(pi) {
			state, sty = st.Symbols.Reconnecting+" running", st.Accent
			outcome = "searching…"
		}
		if outcome == "" {
			if pi.Paired {
				outcome = "a neighbour shares the topic"
			} else {
				outcome = "not run — press d"
			}
		}
		with := pi.Peer
		if pi.First {
			with = "(first)"
		}
		if with == "" {
			with = "–"
		}
		last := "never"
		if !pi.LastRun.IsZero() {
			last = fmtAge(now.Sub(pi.LastRun)) + " ago"
		}
		lines = append(lines, t.row([]cell{
			{text: "#" + pi.Topic},
			{text: state, style: &sty},
			{text: with},
			{text: last, style: &st.Muted},
			{text: outcome},
		}, focused && i == p.sel))
	}
	return lines
}
