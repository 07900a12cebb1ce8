package tui

import (
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/chaski-dev/chaski/chaski"
)

const (
	chartMin  = 7  // rows below which the chart is not drawn (title, stats, 4 plot rows, axis)
	chartWant = 14 // rows the Edges pane asks for the chart
	// chartEvery: the chart is drawn again at most this often for new
	// samples (a ping stream of 1,000/s would otherwise redraw it every
	// frame); keys, resizes and a new selection draw it at once.
	chartEvery = 250 * time.Millisecond
)

// chartCache is the last chart drawn and what it was drawn for.
type chartCache struct {
	at    time.Time
	key   string
	lines []string
}

// chartKey handles the chart's keys; it reports whether msg was one.
func (p *edgesPane) chartKey(msg tea.KeyMsg, r edgeRow, ok bool) bool {
	k, c := p.sh.keys, &p.chart
	p.cache.lines = nil
	switch {
	case key.Matches(msg, k.ChartZoomIn):
		c.span = max(0, c.span-1)
	case key.Matches(msg, k.ChartZoomOut):
		c.span = min(len(chartSpans)-1, c.span+1)
	case key.Matches(msg, k.ChartAll):
		c.all = !c.all
	case key.Matches(msg, k.ChartASCII):
		c.ascii = !c.ascii
	case key.Matches(msg, k.ChartFreeze):
		if c.frozenAt.IsZero() {
			c.frozenAt = p.sh.now()
			c.frozen = make(map[string]*latSeries, len(p.lat.series))
			for id, s := range p.lat.series {
				c.frozen[id] = s.clone()
			}
		} else {
			c.frozenAt, c.frozen = time.Time{}, nil
		}
	case key.Matches(msg, k.ChartReset):
		if c.all || !ok || r.edge == nil {
			for _, s := range p.lat.series {
				s.reset()
			}
			p.sh.setNotice(false, "latency history and statistics reset for every peer")
		} else if s := p.lat.series[r.edge.PeerID]; s != nil {
			s.reset()
			p.sh.setNotice(false, "latency history and statistics of %s reset", r.edge.Name)
		}
		c.frozenAt, c.frozen = time.Time{}, nil
	default:
		return false
	}
	return true
}

// seriesOf is the series shown for a peer: the frozen copy while frozen.
func (p *edgesPane) seriesOf(e *chaski.EdgeInfo) *latSeries {
	p.lat.seed(e, time.Time{})
	if p.chart.frozen != nil {
		if s := p.chart.frozen[e.PeerID]; s != nil {
			return s
		}
		return &latSeries{peerID: e.PeerID, name: e.Name}
	}
	return p.lat.get(e.PeerID, e.Name)
}

// chartLines draws the chart block: a title with the mode, the selected
// edge's statistics (or a legend in "all edges" mode), the plot and its
// time axis.
func (p *edgesPane) chartLines(sel *chaski.EdgeInfo, w, h int) []string {
	key := strconv.Itoa(w) + "x" + strconv.Itoa(h)
	if sel != nil {
		key += sel.PeerID + sel.State.String()
	}
	now := p.sh.now()
	if cc := &p.cache; cc.lines != nil && cc.key == key && now.Sub(cc.at) >= 0 && now.Sub(cc.at) < chartEvery {
		return cc.lines
	}
	lines := p.drawChart(sel, w, h)
	p.cache = chartCache{at: now, key: key, lines: lines}
	return lines
}

func (p *edgesPane) drawChart(sel *chaski.EdgeInfo, w, h int) []string {
	sh, c := p.sh, &p.chart
	st := sh.st
	now := sh.now()
	if !c.frozenAt.IsZero() {
		now = c.frozenAt
	}
	span := chartSpans[c.span]
	var lines []chartLine
	var head, info string
	if c.all {
		var legend []string
		for i := range sh.edges {
			e := &sh.edges[i]
			sty := sh.peerStyle(e.Name)
			lines = append(lines, chartLine{s: p.seriesOf(e), style: sty})
			legend = append(legend, sty.Render("● "+e.Name))
		}
		head = "RTT · all edges"
		info = strings.Join(legend, "  ")
	} else {
		if sel == nil {
			return fill(wrapHint(st, "select an edge to chart its round trips", w), h)
		}
		s := p.seriesOf(sel)
		lines = []chartLine{{s: s, style: st.Spark}}
		head = "RTT · " + sel.Name + " · path " + p.path(sel)
		if s.isDown() {
			head += " · down since " + fmtAge(now.Sub(s.outages[len(s.outages)-1].from)) + " ago"
		}
		info = p.statsLine(s.stats())
	}
	head += " · last " + fmtSpan(span)
	if c.ascii {
		head += " · ascii"
	}
	badge := ""
	if !c.frozenAt.IsZero() {
		badge = st.Warn.Reverse(true).Render(" frozen "+strconv.Itoa(int(sh.now().Sub(c.frozenAt)/time.Second))+" s ") + " "
	}
	keys := "  +/- zoom · space freeze · ? keys"
	out := []string{trunc(badge+st.Accent.Render(head)+st.Muted.Render(keys), w)} // the badge first: a long title must not hide it
	// The figures wrap onto a second line on a narrow pane (at 80 columns
	// loss would be cut) when the plot keeps four rows.
	if lipgloss.Width(info) > w && h-3 >= chartMin-2+1 {
		// Break between figures, never inside one ("loss 0%").
		first, rest := "", ""
		for _, f := range strings.Split(info, "  ") {
			switch {
			case rest == "" && lipgloss.Width(first+"  "+f) <= w:
				first = strings.TrimPrefix(first+"  "+f, "  ")
			default:
				rest = strings.TrimPrefix(rest+"  "+f, "  ")
			}
		}
		out = append(out, trunc(first, w), trunc(rest, w))
	} else {
		out = append(out, trunc(info, w))
	}
	return append(out, renderChart(st, lines, now, span, w, h-len(out), c.ascii)...)
}

// statsLine is trippy's columns for one edge, and the path.
func (p *edgesPane) statsLine(s latStats) string {
	loss := "–"
	if s.Sent > 0 {
		loss = fmtLoss(s.Loss, s.Sent) + " (" + strconv.Itoa(s.Lost) + "/" + strconv.Itoa(s.Sent) + ")"
	}
	parts := []string{
		"last " + fmtRTT(s.Last), "mean " + fmtRTT(s.Mean), "min " + fmtRTT(s.Min), "max " + fmtRTT(s.Max),
		"p95 " + fmtRTT(s.P95), "σ " + fmtRTT(s.StdDev), "jitter " + fmtRTT(s.Jitter), "loss " + loss,
	}
	return strings.Join(parts, "  ")
}

// path says how this node reaches the peer. Every edge is a direct TCP
// (or TLS) connection; what differs is who opened it, whether the peer is
// a root that relays every topic, and which topics discovery paired
// through it.
func (p *edgesPane) path(e *chaski.EdgeInfo) string {
	s := "direct"
	if e.Dialed {
		s += " (dialed)"
	} else {
		s += " (accepted)"
	}
	if e.TLS {
		s += " TLS"
	}
	if e.Root {
		s += ", root relay"
	}
	var paired []string
	for _, pr := range p.sh.pairings {
		if pr.Paired && pr.Peer != "" && (pr.Peer == e.Name || pr.Peer == e.PeerID) {
			paired = append(paired, pr.Topic)
		}
	}
	if len(paired) > 0 {
		sort.Strings(paired)
		s += ", paired for " + strings.Join(paired, ",")
	}
	return s
}

// latencyExport is the dashboard's view of one peer's latency for the
// Edges pane's export (the e key): the statistics of the chart and its
// points, lost pings and outages included. The export's edge record can
// carry it as `"latency": p.latencyExportOf(e.PeerID)`.
type latencyExport struct {
	PeerID  string            `json:"peer_id"`
	Name    string            `json:"name"`
	Stats   latStats          `json:"stats"`
	Points  []latPointExport  `json:"points"` // oldest first, the last 10 minutes
	Outages []latOutageExport `json:"outages,omitempty"`
}

type latPointExport struct {
	At   time.Time     `json:"at"`
	RTT  time.Duration `json:"rtt_ns,omitempty"`
	Lost bool          `json:"lost,omitempty"`
}

type latOutageExport struct {
	From time.Time  `json:"from"`
	To   *time.Time `json:"to,omitempty"` // absent while the peer is down
}

// latencyExportOf returns plain values (no pointers into the pane's
// state) for peerID, nil when the dashboard has no samples of it.
func (p *edgesPane) latencyExportOf(peerID string) *latencyExport {
	s := p.lat.series[peerID]
	if s == nil {
		return nil
	}
	out := &latencyExport{PeerID: s.peerID, Name: s.name, Stats: s.stats(), Points: make([]latPointExport, 0, len(s.pts))}
	for _, pt := range s.pts {
		out.Points = append(out.Points, latPointExport{At: pt.at, RTT: pt.rtt, Lost: pt.lost})
	}
	for _, o := range s.outages {
		x := latOutageExport{From: o.from}
		if !o.to.IsZero() {
			to := o.to
			x.To = &to
		}
		out.Outages = append(out.Outages, x)
	}
	return out
}

// latencyExports is every peer's latencyExport, for an export of all edges.
func (p *edgesPane) latencyExports() []*latencyExport {
	ids := make([]string, 0, len(p.lat.series))
	for id := range p.lat.series {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out := make([]*latencyExport, 0, len(ids))
	for _, id := range ids {
		out = append(out, p.latencyExportOf(id))
	}
	return out
}
