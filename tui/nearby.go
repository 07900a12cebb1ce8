package tui

import (
	"strconv"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/chaski-dev/chaski/chaski"
)

// NearbyBackend is the optional part of a Backend that finds nodes nearby
// (*chaski.Node has it; it lists nothing unless the node runs with
// Config.LAN). The Discovery pane lists them; Enter connects to one with
// the Backend's Connect, so a wrapper that guards Connect (a read-only SSH
// viewer) guards this too.
type NearbyBackend interface {
	Nearby() []chaski.NearbyNode
}

var _ NearbyBackend = (*chaski.Node)(nil)

// nearbyOf reads the nearby list when the backend has one.
func nearbyOf(b Backend) []chaski.NearbyNode {
	if nb, ok := b.(NearbyBackend); ok {
		return nb.Nearby()
	}
	return nil
}

// nearbyRows is the filtered list the pane shows.
func (p *discoveryPane) nearbyRows() []chaski.NearbyNode {
	var out []chaski.NearbyNode
	for _, n := range p.sh.nearby {
		if matches(p.filt, n.Name, n.Address, n.Status, joinTopics(n.Topics)) {
			out = append(out, n)
		}
	}
	return out
}

func joinTopics(ts []string) string {
	s := ""
	for i, t := range ts {
		if i > 0 {
			s += ", "
		}
		s += t
	}
	return s
}

// connectNearby dials a nearby node the policy did not connect (Enter).
// A TLS mismatch is refused here with the reason; anything else goes
// through the dashboard's own dial, so a failure shows in Edges with
// retries like any connect.
func (m *model) connectNearby(n chaski.NearbyNode) tea.Cmd {
	if m.denied("connect") {
		return nil
	}
	sh := m.sh
	if n.Connected {
		sh.setNotice(false, "already connected to %s", n.Name)
		return nil
	}
	if n.TLS != sh.status.TLS {
		if n.TLS {
			sh.setNotice(true, "%s uses TLS and this node does not: not connected", n.Name)
		} else {
			sh.setNotice(true, "%s is plaintext and this node uses TLS: not connected", n.Name)
		}
		return nil
	}
	sh.setNotice(false, "connecting to %s (%s)…", n.Name, n.Address)
	return m.startDial(n.Address)
}

// nearbyView draws the NEARBY section: at most h lines, the selected row
// (index sel among the nearby rows, -1 for none) kept in view.
func (p *discoveryPane) nearbyView(rows []chaski.NearbyNode, w, h, sel int) []string {
	sh := p.sh
	st := sh.st
	if h < 2 || len(rows) == 0 {
		return nil
	}
	t := newTable(st, []col{
		{title: "NEARBY", min: 8, max: 20},
		{title: "ADDRESS", min: 12, max: 22},
		{title: "TOPICS", min: 6, max: 30, prio: 2},
		{title: "TLS", min: 3, max: 3, prio: 3},
		{title: "FIRST/LAST", min: 10, max: 14, prio: 4, right: true},
		{title: "STATUS", min: 10, max: 60, prio: 1},
	}, w)
	lines := []string{t.header()}
	n := h - 1
	off := 0
	if sel >= n {
		off = sel - n + 1
	}
	now := sh.now()
	for i := off; i < len(rows) && i < off+n; i++ {
		r := rows[i]
		tls := "no"
		if r.TLS {
			tls = "yes"
		}
		status, sty := r.Status, st.Muted
		switch {
		case r.Connected:
			status, sty = st.Symbols.OK+" connected", st.OK
		case status == "":
			status = "press enter to connect"
		case status == "dialing" || status == "waiting for the peer to dial":
			sty = st.Accent
		case status != "no shared topic" && status != "disconnected":
			sty = st.Warn
		}
		via := ""
		if r.Via == "local" {
			via = " (this machine)"
		}
		seen := fmtAge(now.Sub(r.FirstSeen)) + "/" + fmtAge(now.Sub(r.LastSeen)) + " ago"
		topics := joinTopics(r.Topics)
		if topics == "" {
			topics = "–"
		}
		lines = append(lines, t.row([]cell{
			{text: r.Name + via},
			{text: r.Address},
			{text: topics},
			{text: tls},
			{text: seen, style: &st.Muted},
			{text: status, style: &sty},
		}, i == sel))
	}
	return lines
}

func nearbyBadge(n int) string {
	if n == 0 {
		return ""
	}
	return " · " + strconv.Itoa(n) + " nearby"
}
