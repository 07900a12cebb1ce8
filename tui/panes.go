package tui

import (
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"

	"github.com/chaski-dev/chaski/chaski"
)

func matches(filter string, fields ...string) bool {
	if filter == "" {
		return true
	}
	f := strings.ToLower(filter)
	for _, s := range fields {
		if strings.Contains(strings.ToLower(s), f) {
			return true
		}
	}
	return false
}

func (m *model) listLen(p pane) int {
	switch p {
	case paneEdges:
		return len(m.filteredEdges())
	case paneDiscovery:
		return len(m.discTopics())
	case paneTransfers:
		return len(m.filteredTransfers())
	case paneStore:
		return len(m.filteredStore())
	}
	return 0
}

// ---- Edges -----------------------------------------------------------

func (m *model) filteredEdges() []int {
	out := make([]int, 0, len(m.edges))
	f := m.filter[paneEdges]
	for i := range m.edges {
		e := &m.edges[i]
		if f == "" || matches(f, e.Name, e.Address, e.State.String(), strings.Join(e.Subscriptions, ","), e.PeerID) {
			out = append(out, i)
		}
	}
	return out
}

func (m *model) selectedEdge() (chaski.EdgeInfo, bool) {
	i, ok := selectedOf(m.filteredEdges(), m.sel[paneEdges])
	if !ok {
		return chaski.EdgeInfo{}, false
	}
	return m.edges[i], true
}

// selectedOf returns the item of a (filtered) list at the pane's selection,
// clamped to the list; false when the list is empty.
func selectedOf[T any](items []T, sel int) (T, bool) {
	if len(items) == 0 {
		var zero T
		return zero, false
	}
	return items[clamp(sel, 0, len(items)-1)], true
}

func (m *model) edgeState(e *chaski.EdgeInfo) (string, lipgloss.Style) {
	sy := m.st.Symbols
	switch e.State {
	case chaski.StateUp:
		return sy.Up + " up", m.st.EdgeUp
	case chaski.StateConnecting:
		return sy.Connecting + " connecting", m.st.EdgeConnecting
	case chaski.StateReconnecting:
		return sy.Reconnecting + " reconnecting", m.st.EdgeReconnecting
	default:
		return sy.Closed + " closed", m.st.EdgeClosed
	}
}

func fmtLoss(l float64, samples int) string {
	if samples == 0 {
		return "–"
	}
	p := l * 100
	switch {
	case p == 0:
		return "0%"
	case p < 10:
		return strconv.FormatFloat(p, 'f', 1, 64) + "%"
	default:
		return strconv.FormatFloat(p, 'f', 0, 64) + "%"
	}
}

var sparkLevels = []rune("▁▂▃▄▅▆▇█")

// sparkline draws the newest w samples, oldest at the left. A lost ping is
// its own mark, never an interpolated bar.
func (m *model) sparkline(h []chaski.LatencySample, w int, plain bool) string {
	if len(h) > w {
		h = h[len(h)-w:]
	}
	lo, hi := time.Duration(-1), time.Duration(0)
	for _, s := range h {
		if s.Lost {
			continue
		}
		if lo < 0 || s.RTT < lo {
			lo = s.RTT
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
				b.WriteString(m.st.Spark.Render(run.String()))
			}
			run.Reset()
		}
	}
	for _, s := range h {
		if s.Lost {
			flush()
			if plain {
				b.WriteString(m.st.Symbols.Loss)
			} else {
				b.WriteString(m.st.SparkLoss.Render(m.st.Symbols.Loss))
			}
			continue
		}
		lvl := 0
		if hi > lo {
			lvl = int(float64(s.RTT-lo) / float64(hi-lo) * float64(len(sparkLevels)-1))
		}
		run.WriteRune(sparkLevels[clamp(lvl, 0, len(sparkLevels)-1)])
	}
	flush()
	return b.String()
}

func (m *model) renderEdges(w, h int) []string {
	idx := m.filteredEdges()
	lines := []string{m.paneTitle(paneEdges, countLabel(len(idx), len(m.edges)), w)}
	if len(m.edges) == 0 {
		return m.emptyHint(lines, h, "no edges yet — press c to connect (or /connect HOST:PORT in Topics)")
	}
	wide := w >= 100
	cols := []col{
		{title: "STATE", min: 14, max: 14},
		{title: "NAME", min: 8, max: 24},
		{title: "ADDRESS", min: 15, max: 24, prio: 2},
		{title: "SUBS", min: 6, max: 28, prio: 4},
		{title: "LAST", min: 7, max: 7, prio: 1, right: true},
		{title: "MEAN", min: 7, max: 7, prio: 1, right: true},
		{title: "JITTER", min: 7, max: 7, prio: 3, right: true},
		{title: "LOSS", min: 6, max: 6, prio: 1, right: true},
		{title: "LATENCY", min: 12, max: 60, prio: 5},
		{title: "MIN–MAX", min: 15, max: 15, prio: 6, right: true},
		{title: "TRAFFIC ↓/↑", min: 13, max: 17, prio: 5, right: true},
	}
	// Wide panes draw a sparkline; narrow ones show the numbers instead.
	hide := 9
	if !wide {
		hide = 8
	}
	cols = append(cols[:hide:hide], cols[hide+1:]...)
	t := m.newTable(cols, w)
	lines = append(lines, t.header())
	rows := h - len(lines)
	sel := clamp(m.sel[paneEdges], 0, len(idx)-1)
	m.off[paneEdges] = window(sel, m.off[paneEdges], rows, len(idx))
	if len(idx) == 0 {
		return m.emptyHint(lines, h, "no edge matches /"+m.filter[paneEdges]+" — esc clears the filter")
	}
	for r := m.off[paneEdges]; r < len(idx) && len(lines) < h; r++ {
		e := &m.edges[idx[r]]
		state, stStyle := m.edgeState(e)
		l := e.Latency
		subs := strings.Join(e.Subscriptions, ",")
		if e.Root {
			subs = "root (all)"
		}
		if subs == "" {
			subs = "–"
		}
		mean, jit := fmtRTT(l.Mean), fmtRTT(l.Jitter)
		lossStyle := m.st.Row
		if l.Loss > 0 {
			lossStyle = m.st.Warn
		}
		if l.Loss >= 0.5 {
			lossStyle = m.st.Error
		}
		hist := l.History
		cells := []cell{
			{text: state, style: &stStyle},
			{text: e.Name},
			{text: e.Address, style: &m.st.Muted},
			{text: subs},
			{text: fmtRTT(l.Last)},
			{text: mean},
			{text: jit},
			{text: fmtLoss(l.Loss, l.Samples), style: &lossStyle},
			{custom: func(w int, selected bool) string { return m.sparkline(hist, w, selected) }},
			{text: fmtRTT(l.Min) + "–" + fmtRTT(l.Max)},
			{text: "↓" + fmtShortBytes(e.BytesIn) + " ↑" + fmtShortBytes(e.BytesOut)},
		}
		if l.Samples == 0 && len(hist) == 0 {
			cells[9].text = "–"
		}
		cells = append(cells[:hide:hide], cells[hide+1:]...)
		lines = append(lines, t.row(cells, r == sel))
	}
	return lines
}

func countLabel(shown, total int) string {
	if shown == total {
		return strconv.Itoa(total)
	}
	return strconv.Itoa(shown) + "/" + strconv.Itoa(total)
}

// ---- Topics ----------------------------------------------------------

// msgRows is the number of message lines in the Topics pane.
func (m *model) msgRows() int { return max(1, m.bodyHeight()-2) }

func (m *model) renderTopicTabs(w int) string {
	subs := m.status.Subscriptions
	if m.topicTab > len(subs) {
		m.topicTab = len(subs)
	}
	var parts []string
	selEnd, pos := 0, 0
	for i := 0; i <= len(subs); i++ {
		name := "all"
		if i > 0 {
			name = subs[i-1]
			if m.status.Paired[name] {
				name += " " + m.st.Symbols.OK
			}
		}
		label := " " + name + " "
		lw := lipgloss.Width(label)
		if i == m.topicTab {
			selEnd = pos + lw
			parts = append(parts, m.st.TabActive.Render(label))
		} else {
			parts = append(parts, m.st.Tab.Render(label))
		}
		pos += lw + 1
	}
	head := m.st.Title.Render("Topics") + " "
	avail := w - lipgloss.Width(head)
	line := strings.Join(parts, " ")
	// Keep the selected tab in view when the tabs overflow: drop tabs from
	// the left (marked "‹ ") until it fits.
	if lipgloss.Width(line) > avail && selEnd > avail {
		const markW = 2
		skip := 0
		for skip < m.topicTab && selEnd+markW >= avail {
			sw := lipgloss.Width(parts[skip]) + 1
			selEnd -= sw
			skip++
		}
		line = m.st.Muted.Render("‹ ") + strings.Join(parts[skip:], " ")
	}
	return trunc(head+line, w)
}

func (m *model) renderTopics(w, h int) []string {
	lines := []string{m.renderTopicTabs(w)}
	topic := m.currentTopic()
	r := m.all
	if topic != "" {
		r = m.topicRing(topic)
	}
	rows := h - 2
	allTab := topic == ""
	f := m.filter[paneTopics]
	// Walk from the newest entry back, skipping m.scroll matches.
	picked := make([]*msgEntry, 0, rows)
	total := 0
	if f == "" {
		total = r.Len()
		m.scroll = clamp(m.scroll, 0, max(0, total-rows))
		for i := r.Len() - 1 - m.scroll; i >= 0 && len(picked) < rows; i-- {
			picked = append(picked, r.At(i))
		}
	} else {
		skip := m.scroll
		for i := r.Len() - 1; i >= 0; i-- {
			e := r.At(i)
			text, _ := payloadText(e.data, w)
			if !matches(f, e.from, text, e.topic) {
				continue
			}
			total++
			if skip > 0 {
				skip--
				continue
			}
			if len(picked) < rows {
				picked = append(picked, e)
			}
		}
		m.scroll = clamp(m.scroll, 0, max(0, total-rows))
	}
	body := make([]string, 0, rows)
	if len(picked) == 0 {
		switch {
		case f != "":
			body = append(body, "", "  "+m.st.Muted.Render("no message matches /"+f+" — esc clears the filter"))
		case len(m.status.Subscriptions) == 0:
			body = append(body, "", "  "+m.st.Muted.Render("no subscriptions yet — type /sub TOPIC, then chat; /help lists commands"))
		default:
			where := "on " + topic
			if allTab {
				where = "yet"
			}
			body = append(body, "", "  "+m.st.Muted.Render("no messages "+where+" — type a line and press enter to publish"))
		}
	}
	for i := len(picked) - 1; i >= 0; i-- {
		body = append(body, m.msgLine(picked[i], w, allTab))
	}
	// Messages sit at the bottom, chat style.
	for len(body) < rows {
		body = append([]string{""}, body...)
	}
	if m.scroll > 0 && len(body) > 0 {
		body[0] = m.st.Muted.Render(fit("  ↑ "+strconv.Itoa(m.scroll)+" newer below — G or end follows", w, false))
	}
	lines = append(lines, body...)
	if m.typing {
		m.input.Width = max(5, w-lipgloss.Width(m.input.Prompt)-2)
		if topic != "" {
			m.input.Prompt = topic + " › "
		} else {
			m.input.Prompt = "› "
		}
		lines = append(lines, trunc(m.input.View(), w))
	} else {
		lines = append(lines, m.st.Muted.Render(trunc("press i or enter to type · [ ] switch topic · / filter", w)))
	}
	return lines
}

// msgLine renders one message, caching the result per width.
func (m *model) msgLine(e *msgEntry, w int, allTab bool) string {
	if e.line != "" && e.lineW == w {
		return e.line
	}
	st := m.st
	var b strings.Builder
	b.WriteString(st.MsgTime.Render(e.at.Format("15:04:05")))
	b.WriteByte(' ')
	if allTab {
		b.WriteString(st.Accent.Render(fit("#"+e.topic, 10, false)))
		b.WriteByte(' ')
	}
	from := e.from
	sender := st.MsgSender
	if e.self {
		from, sender = "you", st.MsgSelf
	}
	b.WriteString(sender.Render(fit(from, 12, false)))
	b.WriteByte(' ')
	used := lipgloss.Width(b.String())
	text, bin := payloadText(e.data, w)
	switch {
	case e.failed != "":
		b.WriteString(st.Error.Render(trunc(st.Symbols.Fail+" "+text+"  ("+e.failed+")", max(1, w-used))))
	case bin:
		b.WriteString(st.MsgBinary.Render(trunc(text, max(1, w-used))))
	default:
		b.WriteString(st.MsgText.Render(trunc(text, max(1, w-used))))
	}
	e.line, e.lineW = b.String(), w
	return e.line
}

// ---- Discovery -------------------------------------------------------

func (m *model) discTopics() []string {
	seen := map[string]bool{}
	var out []string
	f := m.filter[paneDiscovery]
	add := func(t string) {
		if !seen[t] && matches(f, t) {
			seen[t] = true
			out = append(out, t)
		}
	}
	for _, t := range m.status.Subscriptions {
		add(t)
	}
	var extra []string
	for t := range m.disc {
		if !seen[t] {
			extra = append(extra, t)
		}
	}
	sort.Strings(extra)
	for _, t := range extra {
		add(t)
	}
	return out
}

func (m *model) selectedDiscTopic() (string, bool) {
	return selectedOf(m.discTopics(), m.sel[paneDiscovery])
}

func (m *model) renderDiscovery(w, h int) []string {
	ts := m.discTopics()
	title := m.paneTitle(paneDiscovery, strconv.Itoa(len(ts)), w)
	if m.status.Root {
		title += m.st.Muted.Render("  root: paired for every topic")
	}
	lines := []string{trunc(title, w)}
	if len(ts) == 0 && m.discLog.Len() == 0 {
		if m.filter[paneDiscovery] != "" {
			return m.emptyHint(lines, h, "no topic matches /"+m.filter[paneDiscovery])
		}
		return m.emptyHint(lines, h, "no subscriptions — /sub TOPIC in Topics (2), then press d to discover a peer")
	}
	t := m.newTable([]col{
		{title: "TOPIC", min: 10, max: 30},
		{title: "STATE", min: 12, max: 12},
		{title: "WITH", min: 8, max: 20, prio: 2},
		{title: "LAST RUN", min: 9, max: 10, prio: 3, right: true},
		{title: "OUTCOME", min: 12, max: 80, prio: 1},
	}, w)
	lines = append(lines, t.header())
	tableRows := max(1, min(len(ts), (h-2)/2))
	if m.discLog.Len() == 0 {
		tableRows = h - 2
	}
	sel := clamp(m.sel[paneDiscovery], 0, len(ts)-1)
	m.off[paneDiscovery] = window(sel, m.off[paneDiscovery], tableRows, len(ts))
	now := m.now()
	for r := m.off[paneDiscovery]; r < len(ts) && r < m.off[paneDiscovery]+tableRows; r++ {
		topic := ts[r]
		d := m.disc[topic]
		if d == nil {
			d = &discState{}
		}
		paired := m.status.Paired[topic] || m.status.Root
		state, style := m.st.Symbols.Pending+" not paired", m.st.Warn
		if paired {
			state, style = m.st.Symbols.OK+" paired", m.st.OK
		}
		if d.phase == "started" {
			state, style = m.st.Symbols.Reconnecting+" running", m.st.Accent
		}
		with := d.peer
		if d.first {
			with = "(first)"
		}
		if with == "" && paired {
			// Paired without a discovery run: a live neighbour shares the topic.
			with = m.edgeSharing(topic)
		}
		if with == "" {
			with = "–"
		}
		last := "never"
		if !d.lastRun.IsZero() {
			last = fmtAge(now.Sub(d.lastRun)) + " ago"
		}
		outcome, oStyle := discOutcome(d), m.st.Row
		if d.phase == "failed" {
			oStyle = m.st.Error
		}
		lines = append(lines, t.row([]cell{
			{text: topic},
			{text: state, style: &style},
			{text: with},
			{text: last, style: &m.st.Muted},
			{text: outcome, style: &oStyle},
		}, r == sel))
	}
	if m.discLog.Len() > 0 && len(lines) < h-1 {
		lines = append(lines, m.st.TableHeader.Render(fit(" EVENTS", w, false)))
		room := h - len(lines)
		start := max(0, m.discLog.Len()-room)
		for i := start; i < m.discLog.Len(); i++ {
			lines = append(lines, m.logLine(m.discLog.At(i), w))
		}
	}
	return lines
}

func discOutcome(d *discState) string {
	switch d.phase {
	case "":
		if d.first {
			return "first of topic, no peer found"
		}
		return "not run — press d"
	case "started":
		return "running…"
	case "paired":
		if d.peer != "" {
			return "paired with " + d.peer
		}
		return "paired"
	case "first":
		return "first of topic, no peer found"
	case "skipped":
		return "already paired"
	case "failed":
		if d.detail != "" {
			return "failed: " + d.detail
		}
		return "failed"
	}
	if d.detail != "" {
		return d.phase + ": " + d.detail
	}
	return d.phase
}

// ---- Transfers -------------------------------------------------------

func (m *model) filteredTransfers() []*chaski.TransferInfo {
	out := make([]*chaski.TransferInfo, 0, len(m.transferOrder))
	f := m.filter[paneTransfers]
	for i := len(m.transferOrder) - 1; i >= 0; i-- {
		t := m.transfers[m.transferOrder[i]]
		if t == nil {
			continue
		}
		if f == "" || matches(f, t.Name, t.Peer, t.Topic, t.State.String()) {
			out = append(out, t)
		}
	}
	// Running transfers first, then the newest.
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if fa, fb := a.State.Finished(), b.State.Finished(); fa != fb {
			return !fa
		}
		return a.Started.After(b.Started)
	})
	return out
}

func (m *model) selectedTransfer() (*chaski.TransferInfo, bool) {
	return selectedOf(m.filteredTransfers(), m.sel[paneTransfers])
}

func (m *model) transferState(t *chaski.TransferInfo) (string, lipgloss.Style) {
	sy := m.st.Symbols
	switch t.State {
	case chaski.TransferOffered:
		return sy.Pending + " offered, waiting", m.st.Warn
	case chaski.TransferActive:
		word := "receiving"
		if t.Outgoing {
			word = "sending"
		}
		if t.Size > 0 {
			word += " " + strconv.Itoa(int(t.Done*100/t.Size)) + "%"
		}
		if t.Resumed > 0 && t.Size > 0 {
			word += " (resumed at " + strconv.Itoa(int(t.Resumed*100/t.Size)) + "%)"
		}
		return word, m.st.Accent
	case chaski.TransferVerifying:
		return sy.Pending + " verifying sha256", m.st.Accent
	case chaski.TransferDone:
		if t.SHA256 == "" {
			return sy.OK + " done", m.st.OK
		}
		return "sha256 " + sy.OK + " " + short(t.SHA256, 12), m.st.OK
	case chaski.TransferFailed:
		reason := t.Err
		if reason == "" {
			reason = "unknown error"
		}
		return sy.Fail + " failed: " + reason, m.st.Error
	case chaski.TransferCancelled:
		return sy.Fail + " cancelled", m.st.Muted
	case chaski.TransferPending:
		if m.opts.AcceptFilesPrompt {
			return sy.Pending + " accept? y/n", m.st.Warn
		}
		return sy.Pending + " pending", m.st.Warn
	}
	return t.State.String(), m.st.Row
}

func (m *model) renderTransfers(w, h int) []string {
	ts := m.filteredTransfers()
	lines := []string{m.paneTitle(paneTransfers, countLabel(len(ts), len(m.transfers)), w)}
	if len(m.transfers) == 0 {
		return m.emptyHint(lines, h, "no transfers — drop a file on this window (or /send PATH) to send it to the current topic")
	}
	t := m.newTable([]col{
		{title: " ", min: 1, max: 1},
		{title: "NAME", min: 10, max: 40},
		{title: "PEER", min: 6, max: 16, prio: 2},
		{title: "PROGRESS", min: 8, max: 40, prio: 3},
		{title: "BYTES", min: 11, max: 15, prio: 2, right: true},
		{title: "RATE", min: 7, max: 10, prio: 2, right: true},
		{title: "ETA", min: 5, max: 8, prio: 4, right: true},
		{title: "STATE", min: 21, max: 44},
	}, w)
	lines = append(lines, t.header())
	if len(ts) == 0 {
		return m.emptyHint(lines, h, "no transfer matches /"+m.filter[paneTransfers]+" — esc clears the filter")
	}
	rows := h - len(lines)
	sel := clamp(m.sel[paneTransfers], 0, len(ts)-1)
	m.off[paneTransfers] = window(sel, m.off[paneTransfers], rows, len(ts))
	for r := m.off[paneTransfers]; r < len(ts) && len(lines) < h; r++ {
		tr := ts[r]
		dir := m.st.Symbols.In
		if tr.Outgoing {
			dir = m.st.Symbols.Out
		}
		pct := 0.0
		if tr.Size > 0 {
			pct = float64(tr.Done) / float64(tr.Size)
		} else if tr.State == chaski.TransferDone {
			pct = 1
		}
		pct = max(0, min(1, pct))
		total := "?"
		if tr.Size >= 0 {
			total = fmtShortBytes(uint64(tr.Size))
		}
		rate, eta := "–", "–"
		if tr.State == chaski.TransferActive {
			rate = fmtShortBytes(uint64(tr.Rate)) + "/s"
			eta = fmtETA(tr.ETA)
		} else if tr.State == chaski.TransferDone && !tr.Ended.IsZero() && tr.Ended.After(tr.Started) {
			rate = fmtShortBytes(uint64(float64(tr.Done-tr.Resumed)/tr.Ended.Sub(tr.Started).Seconds())) + "/s"
		}
		state, stStyle := m.transferState(tr)
		peer := tr.Peer
		if peer == "" {
			peer = "–"
		}
		lines = append(lines, t.row([]cell{
			{text: dir},
			{text: tr.Name},
			{text: peer},
			{custom: func(w int, selected bool) string { return m.progressBar(pct, w, selected) }},
			{text: fmtShortBytes(uint64(max(0, tr.Done))) + "/" + total},
			{text: rate},
			{text: eta},
			{text: state, style: &stStyle},
		}, r == sel))
	}
	return lines
}

func (m *model) progressBar(pct float64, w int, plain bool) string {
	if plain || !m.st.Color {
		n := int(pct*float64(w) + 0.5)
		return strings.Repeat("█", n) + strings.Repeat("░", w-n)
	}
	m.bar.Width = w
	return m.bar.ViewAs(pct)
}

// ---- Storage ---------------------------------------------------------

func (m *model) filteredStore() []*chaski.StoreEntry {
	out := make([]*chaski.StoreEntry, 0, len(m.store))
	f := m.filter[paneStore]
	for i := range m.store {
		e := &m.store[i]
		if f == "" || matches(f, e.Key) {
			out = append(out, e)
		}
	}
	return out
}

func (m *model) selectedStore() (*chaski.StoreEntry, bool) {
	return selectedOf(m.filteredStore(), m.sel[paneStore])
}

func (m *model) renderStore(w, h int) []string {
	es := m.filteredStore()
	lines := []string{m.paneTitle(paneStore, countLabel(len(es), len(m.store)), w)}
	if m.storeErr != nil && len(m.store) == 0 {
		lines = append(lines, "", "  "+m.st.Error.Render(m.st.Symbols.Fail+" "+m.storeErr.Error()))
		return m.emptyHint(lines, h, "start the node with --data-dir to keep a store")
	}
	if len(m.store) == 0 {
		return m.emptyHint(lines, h, "store is empty — press n to put a key, f to fetch one from the network")
	}
	t := m.newTable([]col{
		{title: "KEY", min: 10, max: 32},
		{title: "VALUE", min: 10, max: 200, prio: 1},
		{title: "SIZE", min: 8, max: 9, prio: 2, right: true},
		{title: "EXPIRES", min: 9, max: 10, prio: 1, right: true},
		{title: "UPDATED", min: 9, max: 10, prio: 3, right: true},
	}, w)
	lines = append(lines, t.header())
	if len(es) == 0 {
		return m.emptyHint(lines, h, "no key matches /"+m.filter[paneStore]+" — esc clears the filter")
	}
	rows := h - len(lines)
	sel := clamp(m.sel[paneStore], 0, len(es)-1)
	m.off[paneStore] = window(sel, m.off[paneStore], rows, len(es))
	now := m.now()
	for r := m.off[paneStore]; r < len(es) && len(lines) < h; r++ {
		e := es[r]
		val, bin := payloadText(e.Value, w)
		vStyle := m.st.Row
		if bin {
			vStyle = m.st.MsgBinary
		}
		exp, eStyle := "never", m.st.Muted
		if !e.Expires.IsZero() {
			if d := e.Expires.Sub(now); d > 0 {
				exp, eStyle = "in "+fmtAge(d), m.st.Row
				if d < time.Minute {
					eStyle = m.st.Warn
				}
			} else {
				exp, eStyle = "expired", m.st.Error
			}
		}
		upd := "–"
		if !e.Updated.IsZero() {
			upd = fmtAge(now.Sub(e.Updated)) + " ago"
		}
		size := e.Size
		if size == 0 {
			size = len(e.Value)
		}
		lines = append(lines, t.row([]cell{
			{text: sanitize(e.Key)},
			{text: val, style: &vStyle},
			{text: fmtBytes(int64(size))},
			{text: exp, style: &eStyle},
			{text: upd, style: &m.st.Muted},
		}, r == sel))
	}
	return lines
}

// ---- Log ---------------------------------------------------------------

func levelName(l int) string {
	switch {
	case l < 0:
		return "DBG"
	case l < 4:
		return "INF"
	case l < 8:
		return "WRN"
	default:
		return "ERR"
	}
}

func (m *model) logLine(e *logEntry, w int) string {
	st := m.st.LogInfo
	switch {
	case e.level < 0:
		st = m.st.LogDebug
	case e.level >= 8:
		st = m.st.LogError
	case e.level >= 4:
		st = m.st.LogWarn
	}
	head := m.st.MsgTime.Render(e.at.Format("15:04:05")) + " " + st.Render(levelName(e.level)) + " "
	return head + trunc(e.text, max(1, w-13))
}

func (m *model) renderLog(w, h int) []string {
	f := m.filter[paneLog]
	var idx []int
	for i := 0; i < m.logs.Len(); i++ {
		e := m.logs.At(i)
		if f == "" || matches(f, e.text, levelName(e.level)) {
			idx = append(idx, i)
		}
	}
	lines := []string{m.paneTitle(paneLog, countLabel(len(idx), m.logs.Len()), w)}
	if len(idx) == 0 {
		if f != "" {
			return m.emptyHint(lines, h, "no log line matches /"+f+" — esc clears the filter")
		}
		return m.emptyHint(lines, h, "no log lines yet — the node's log and errors appear here")
	}
	rows := h - 1
	m.logScroll = clamp(m.logScroll, 0, max(0, len(idx)-rows))
	end := len(idx) - m.logScroll
	start := max(0, end-rows)
	for _, i := range idx[start:end] {
		lines = append(lines, m.logLine(m.logs.At(i), w))
	}
	if m.logScroll > 0 {
		lines[0] += m.st.Muted.Render("  ↑ scrolled · G follows")
	}
	return lines
}

// edgeSharing names a live neighbour that subscribes to topic (not a root,
// which relays everything), or "".
func (m *model) edgeSharing(topic string) string {
	for _, e := range m.edges {
		if e.State != chaski.StateUp || e.Root {
			continue
		}
		for _, s := range e.Subscriptions {
			if s == topic {
				return e.Name
			}
		}
	}
	return ""
}
