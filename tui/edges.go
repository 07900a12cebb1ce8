package tui

import (
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/chaski-dev/chaski/chaski"
)

// base is what every pane holds: the shared context and the root model
// (for questions, prompts and background commands).
type base struct {
	sh *shared
	m  *model
}

// edgesPane lists the edges with their latency, the peers being
// reconnected, and the connects this dashboard started that are not up.
type edgesPane struct {
	base
	list
	lat   *latBook
	chart chartView
	cache chartCache
}

// chartView is how the latency chart is shown: its time span, frozen or
// live, one edge or all, braille or ASCII.
type chartView struct {
	span     int                   // index into chartSpans
	frozenAt time.Time             // zero while live
	frozen   map[string]*latSeries // copies taken when frozen
	all      bool                  // every edge on one chart
	ascii    bool
}

// chartSpans are the chart's zoom levels (+ and - step through them).
var chartSpans = []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute}

const defaultSpan = 2 // 2 minutes

func newEdgesPane(sh *shared) *edgesPane {
	return &edgesPane{base: base{sh: sh}, lat: newLatBook(), chart: chartView{span: defaultSpan}}
}

func (p *edgesPane) onEvent(ev chaski.Event) {
	if e, ok := ev.(*chaski.LatencyEvent); ok {
		// The first sample of a peer the dashboard has not drawn yet: take
		// the node's history of the edge first.
		if i := p.sh.edgeIndex(e.PeerID); i >= 0 {
			p.lat.seed(&p.sh.edges[i], e.When())
		}
	}
	p.lat.event(ev)
}

func (p *edgesPane) id() paneID { return paneEdges }

// edgeRow is one row: a dial in progress or failed, an edge, or the NATS
// bridge (bridge.go).
type edgeRow struct {
	dial   *dial
	edge   *chaski.EdgeInfo
	bridge *bridgeRow
}

func (p *edgesPane) rows() []edgeRow {
	sh := p.sh
	out := make([]edgeRow, 0, len(sh.dials)+len(sh.edges)+1)
	if b, ok := bridgeOf(sh.status.Extra); ok && matches(p.filt, "nats", b.state, b.server, b.topics, b.err) {
		out = append(out, edgeRow{bridge: &b})
	}
	for _, d := range sh.dials {
		if matches(p.filt, d.addr, d.state, d.err) {
			out = append(out, edgeRow{dial: d})
		}
	}
	for i := range sh.edges {
		e := &sh.edges[i]
		if matches(p.filt, e.Name, e.Address, e.State.String(), strings.Join(e.Subscriptions, ","), e.PeerID) {
			out = append(out, edgeRow{edge: e})
		}
	}
	return out
}

func (p *edgesPane) badge() string {
	up, other := p.sh.liveEdges()
	s := strconv.Itoa(up) + " up"
	if other > 0 {
		s += " · " + strconv.Itoa(other) + " retrying"
	}
	return s
}

func (p *edgesPane) want() int {
	n := len(p.sh.dials) + len(p.sh.edges) + 2
	if len(p.sh.edges) > 0 && p.sh.height >= wideH {
		n += chartWant // room for the chart where the screen has it
	}
	return n
}

func (p *edgesPane) shortHelp() []key.Binding {
	k := p.sh.keys
	return []key.Binding{k.Connect, k.CloseEdge, k.Ping, k.ChartZoomIn, k.ChartFreeze, k.ChartAll}
}

func (p *edgesPane) key(msg tea.KeyMsg) (tea.Cmd, bool) {
	k, m := p.sh.keys, p.m
	rows := p.rows()
	if p.move(k, msg, len(rows), 5) {
		return nil, true
	}
	r, ok := selectedOf(rows, p.sel)
	if p.chartKey(msg, r, ok) {
		return nil, true
	}
	switch {
	case key.Matches(msg, k.Connect):
		if m.denied("connect") {
			return nil, true
		}
		return m.askText("connect to address", "", func(v string) tea.Cmd { return m.startDial(v) }), true
	case key.Matches(msg, k.CloseEdge) && ok && r.bridge != nil:
		p.sh.setNotice(false, "the NATS bridge is not an edge: it runs as long as the node (--nats)")
		return nil, true
	case key.Matches(msg, k.CloseEdge) && ok:
		if m.denied("close edges") {
			return nil, true
		}
		if r.dial != nil {
			p.sh.dialDone(r.dial.addr)
			p.sh.setNotice(false, "stopped connecting to %s", r.dial.addr)
			return nil, true
		}
		id, name, b := r.edge.PeerID, r.edge.Name, p.sh.b
		m.ask("close edge to "+name+" ("+r.edge.Address+")?", func() tea.Cmd {
			return m.call("close edge "+name, "closed edge to "+name, func() error { return b.CloseEdge(id) })
		})
		return nil, true
	case key.Matches(msg, k.Ping) && ok && r.edge != nil:
		return m.ping(*r.edge, 0), true
	case key.Matches(msg, k.PingPad) && ok && r.edge != nil:
		e := *r.edge
		return m.askText("ping "+e.Name+" with padding", "64KiB", func(v string) tea.Cmd {
			size := defaultPad
			if v != "" {
				n, err := parseSize(v)
				if err != nil {
					p.sh.setNotice(true, "%v", err)
					return nil
				}
				size = n
			}
			return m.ping(e, size)
		}), true
	case key.Matches(msg, k.Open) && ok:
		m.openDetail(p.detailTitle(r), []byte(p.detail(r)))
		return nil, true
	}
	return nil, false
}

func (p *edgesPane) detailTitle(r edgeRow) string {
	if r.bridge != nil {
		return "NATS bridge"
	}
	if r.dial != nil {
		return "connect " + r.dial.addr
	}
	return "edge " + r.edge.Name
}

func (p *edgesPane) detail(r edgeRow) string {
	if r.bridge != nil {
		return p.bridgeDetail(r.bridge)
	}
	if d := r.dial; d != nil {
		return "address: " + d.addr + "\nstate: " + d.state + "\nattempt: " + strconv.Itoa(d.attempt) + "\nlast error: " + d.err
	}
	e := r.edge
	l := e.Latency
	return strings.Join([]string{
		"name: " + e.Name, "peer id: " + e.PeerID, "address: " + e.Address, "socket: " + e.Remote,
		"state: " + e.State.String(), "subscriptions: " + strings.Join(e.Subscriptions, ", "),
		"root: " + strconv.FormatBool(e.Root), "accepts files: " + strconv.FormatBool(e.AcceptsFiles),
		"TLS: " + strconv.FormatBool(e.TLS), "since: " + e.Since.Format(time.RFC3339),
		"latency: last " + fmtRTT(l.Last) + ", mean " + fmtRTT(l.Mean) + ", min " + fmtRTT(l.Min) + ", max " + fmtRTT(l.Max) +
			", jitter " + fmtRTT(l.Jitter) + ", loss " + fmtLoss(l.Loss, l.Samples),
		"traffic: in " + fmtBytes(int64(e.BytesIn)) + " (" + strconv.FormatUint(e.MsgsIn, 10) + " msgs), out " +
			fmtBytes(int64(e.BytesOut)) + " (" + strconv.FormatUint(e.MsgsOut, 10) + " msgs)",
		"last error: " + e.LastError,
	}, "\n")
}

func (p *edgesPane) edgeState(e *chaski.EdgeInfo) (string, lipgloss.Style) {
	st := p.sh.st
	sy := st.Symbols
	switch e.State {
	case chaski.StateUp:
		return sy.Up + " up", st.EdgeUp
	case chaski.StateConnecting:
		return sy.Connecting + " connecting", st.EdgeConnecting
	case chaski.StateReconnecting:
		s := sy.Reconnecting + " reconnecting"
		if e.Attempt > 0 {
			s += " #" + strconv.Itoa(e.Attempt)
		}
		if !e.NextAttempt.IsZero() {
			if d := e.NextAttempt.Sub(p.sh.now()); d > 0 {
				s += " in " + fmtAge(d+time.Second-1)
			} else {
				s += " now"
			}
		}
		return s, st.EdgeReconnecting
	default:
		return sy.Closed + " closed", st.EdgeClosed
	}
}

// dialState is a dial's short state and the reason with the next retry.
func (p *edgesPane) dialState(d *dial) (string, string, lipgloss.Style) {
	st := p.sh.st
	if d.state == "connecting" {
		s := st.Symbols.Connecting + " connecting"
		why := ""
		if d.attempt > 1 {
			s += " #" + strconv.Itoa(d.attempt)
			why = "last attempt failed: " + d.err
		}
		return s, why, st.EdgeConnecting
	}
	// The retry first: the reason may be long, and Enter shows all of it.
	why := "gave up (c to retry): " + d.err
	if !d.next.IsZero() {
		left := d.next.Sub(p.sh.now())
		why = "retry #" + strconv.Itoa(d.attempt+1) + " in " + fmtAge(max(0, left)+time.Second-1) + " · " + d.err
	}
	return st.Symbols.Fail + " failed", why, st.Error
}

func fmtLoss(l float64, samples int) string {
	if samples == 0 {
		return "–"
	}
	v := l * 100
	switch {
	case v == 0:
		return "0%"
	case v < 10:
		return strconv.FormatFloat(v, 'f', 1, 64) + "%"
	default:
		return strconv.FormatFloat(v, 'f', 0, 64) + "%"
	}
}

var sparkLevels = []rune("▁▂▃▄▅▆▇█")

// sparkline draws the newest w samples, oldest at the left. A lost ping is
// its own mark, never an interpolated bar.
func (p *edgesPane) sparkline(h []chaski.LatencySample, w int, plain bool) string {
	st := p.sh.st
	if len(h) > w {
		h = h[len(h)-w:]
	}
	hi := time.Duration(0)
	for _, s := range h {
		if s.Lost {
			continue
		}
		if s.RTT > hi {
			hi = s.RTT
		}
	}
	var b, run strings.Builder
	b.WriteString(strings.Repeat(" ", w-len(h)))
	flush := func() {
		if run.Len() > 0 {
			if plain {
				b.WriteString(run.String())
			} else {
				b.WriteString(st.Spark.Render(run.String()))
			}
			run.Reset()
		}
	}
	for _, s := range h {
		if s.Lost {
			flush()
			if plain {
				b.WriteString(st.Symbols.Loss)
			} else {
				b.WriteString(st.SparkLoss.Render(st.Symbols.Loss))
			}
			continue
		}
		// From zero, so that an 8 µs wobble on 100 µs stays a wobble.
		lvl := 0
		if hi > 0 {
			lvl = int(float64(s.RTT)/float64(hi)*float64(len(sparkLevels)-1) + 0.5)
		}
		run.WriteRune(sparkLevels[clamp(lvl, 0, len(sparkLevels)-1)])
	}
	flush()
	return b.String()
}

func (p *edgesPane) view(w, h int, focused bool) []string {
	sh := p.sh
	st := sh.st
	rows := p.rows()
	if _, bridged := bridgeOf(sh.status.Extra); len(sh.edges)+len(sh.dials) == 0 && !bridged {
		hint := "no edges yet — press c to connect; others reach this node at " + sh.status.Address
		return fill(wrapHint(st, hint, w), h)
	}
	if len(rows) == 0 {
		return fill([]string{st.Muted.Render(trunc("no edge matches /"+p.filt+" — esc clears the filter", w))}, h)
	}
	cols := []col{
		{title: "STATE", min: 24, max: 28},
		{title: "NAME", min: 14, max: 18},
		{title: "ADDRESS", min: 15, max: 22, prio: 2},
		{title: "SUBS", min: 6, max: 24, prio: 4},
		{title: "LAST", min: 7, max: 7, prio: 1, right: true},
		{title: "MEAN", min: 7, max: 7, prio: 3, right: true},
		{title: "JITTER", min: 7, max: 7, prio: 5, right: true},
		{title: "LOSS", min: 5, max: 6, prio: 2, right: true},
		{title: "LATENCY", min: 12, max: 40, prio: 6},
		{title: "TRAFFIC ↓/↑", min: 15, max: 19, prio: 7, right: true},
	}
	t := newTable(st, cols, w)
	lines := []string{t.header()}
	// The chart of the selected edge takes the rows the list does not need.
	tableH, chartH := h, 0
	if h-len(rows)-1 >= chartMin && w >= 30 {
		tableH = max(len(rows)+1, min(h-chartMin, h/3))
		tableH = min(tableH, h-chartMin)
		chartH = h - tableH
	}
	n := tableH - 1
	p.sel = clamp(p.sel, 0, len(rows)-1)
	p.off = window(p.sel, p.off, n, len(rows))
	for i := p.off; i < len(rows) && len(lines) < tableH; i++ {
		r := rows[i]
		sel := focused && i == p.sel
		if r.bridge != nil {
			lines = append(lines, t.row(p.bridgeCells(r.bridge, t), sel))
			continue
		}
		if d := r.dial; d != nil {
			state, why, sty := p.dialState(d)
			lines = append(lines, t.row([]cell{
				{text: state, style: &sty},
				{text: d.addr},
				{text: why, style: &sty, span: true},
			}, sel))
			continue
		}
		e := r.edge
		state, sty := p.edgeState(e)
		l := e.Latency
		subs := strings.Join(e.Subscriptions, ",")
		if e.Root {
			subs = "root (all)"
		}
		if subs == "" {
			subs = "–"
		}
		lossStyle := st.Row
		if l.Loss > 0 {
			lossStyle = st.Warn
		}
		if l.Loss >= 0.5 {
			lossStyle = st.Error
		}
		hist := l.History
		name := sh.peerStyle(e.Name)
		lines = append(lines, t.row([]cell{
			{text: state, style: &sty},
			{text: e.Name, style: &name},
			{text: e.Address, style: &st.Muted},
			{text: subs},
			{text: fmtRTT(l.Last)},
			{text: fmtRTT(l.Mean)},
			{text: fmtRTT(l.Jitter)},
			{text: fmtLoss(l.Loss, l.Samples), style: &lossStyle},
			{custom: func(w int, selected bool) string { return p.sparkline(hist, w, selected) }},
			{text: "↓" + fmtBytes(int64(e.BytesIn)) + " ↑" + fmtBytes(int64(e.BytesOut))},
		}, sel))
	}
	lines = fill(lines, tableH)
	if chartH > 0 {
		sel, _ := selectedOf(rows, p.sel)
		lines = append(lines, p.chartLines(sel.edge, w, chartH)...)
	}
	return fill(lines, h)
}

// wrapHint word-wraps a muted hint to w cells.
func wrapHint(st themeStyles, hint string, w int) []string {
	var out []string
	for _, l := range strings.Split(wrapWords(hint, w), "\n") {
		out = append(out, st.Muted.Render(l))
	}
	return out
}
