package tui

import (
	"strconv"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/lipgloss"
)

func lipglossWidth(s string) int { return lipgloss.Width(s) }

const minWidth, minHeight = 40, 12

// bodyHeight is the number of lines inside the pane box.
func (m *model) bodyHeight() int { return max(1, m.height-6) }

// bodyWidth is the number of columns inside the pane box.
func (m *model) bodyWidth() int { return max(10, m.width-2) }

func (m *model) render() string {
	w, h := m.width, m.height
	if w < minWidth || h < minHeight {
		msg := "terminal too small: " + strconv.Itoa(w) + "×" + strconv.Itoa(h) + " (want 80×24)"
		lines := []string{trunc(msg, w)}
		return strings.Join(lines, "\n")
	}
	var b strings.Builder
	b.Grow(w * h * 2)
	b.WriteString(m.renderHeader())
	b.WriteByte('\n')
	b.WriteString(m.renderPaneTabs())
	b.WriteByte('\n')

	m.writeBox(&b, m.renderBody(), w)
	b.WriteString(m.renderStatus())
	b.WriteByte('\n')
	b.WriteString(m.renderShortHelp())
	return b.String()
}

// renderBody returns exactly bodyHeight lines, each at most bodyWidth wide.
func (m *model) renderBody() []string {
	bw, bh := m.bodyWidth(), m.bodyHeight()
	var lines []string
	switch {
	case m.showHelp:
		lines = m.renderHelp(bw, bh)
	case m.detail:
		lines = m.renderDetail(bw, bh)
	default:
		switch m.pane {
		case paneEdges:
			lines = m.renderEdges(bw, bh)
		case paneTopics:
			lines = m.renderTopics(bw, bh)
		case paneDiscovery:
			lines = m.renderDiscovery(bw, bh)
		case paneTransfers:
			lines = m.renderTransfers(bw, bh)
		case paneStore:
			lines = m.renderStore(bw, bh)
		case paneLog:
			lines = m.renderLog(bw, bh)
		}
	}
	if len(lines) > bh {
		lines = lines[:bh]
	}
	for i, l := range lines {
		lines[i] = trunc(l, bw)
	}
	for len(lines) < bh {
		lines = append(lines, "")
	}
	return lines
}

// writeBox draws the pane border around lines (already fitted to w-2) by
// hand: much cheaper than a lipgloss border, which re-wraps every line.
func (m *model) writeBox(b *strings.Builder, lines []string, w int) {
	if m.boxW != w || m.boxTop == "" {
		bs := m.st.PaneActive.GetBorderStyle()
		fg := lipgloss.NewStyle().Foreground(m.st.PaneActive.GetBorderTopForeground())
		m.boxTop = fg.Render(bs.TopLeft + strings.Repeat(bs.Top, w-2) + bs.TopRight)
		m.boxBottom = fg.Render(bs.BottomLeft + strings.Repeat(bs.Bottom, w-2) + bs.BottomRight)
		m.boxLeft, m.boxRight = fg.Render(bs.Left), fg.Render(bs.Right)
		m.boxW = w
	}
	b.WriteString(m.boxTop)
	b.WriteByte('\n')
	for _, l := range lines {
		b.WriteString(m.boxLeft)
		b.WriteString(l)
		if pad := w - 2 - lipgloss.Width(l); pad > 0 {
			b.WriteString(strings.Repeat(" ", pad))
		}
		b.WriteString(m.boxRight)
		b.WriteByte('\n')
	}
	b.WriteString(m.boxBottom)
	b.WriteByte('\n')
}

func (m *model) renderHeader() string {
	st := m.st
	s := m.status
	uptime := "–"
	if !s.Started.IsZero() {
		uptime = fmtAge(m.now().Sub(s.Started))
	}
	key := s.Name + "|" + s.Address + "|" + uptime + "|" + strconv.Itoa(s.Edges) + "|" + fmtRate(m.rateIn) + "|" +
		fmtRate(m.rateOut) + "|" + strconv.FormatBool(s.Root) + strconv.FormatBool(s.TLS) +
		strconv.FormatBool(s.Reconnecting) + strconv.FormatBool(s.AllPaired()) + "|" + strconv.Itoa(m.width) +
		"|" + strconv.FormatUint(s.Dropped, 10)
	if key == m.headerKey {
		return m.headerLine
	}
	m.headerKey = key
	hk := func(k string) string { return st.HeaderKey.Render(k) }
	hv := func(v string) string { return st.HeaderValue.Render(v) }
	sp := st.Header.Render("  ")
	name := s.Name
	if name == "" {
		name = "?"
	}
	addr := s.Address
	if s.AllPaired() {
		addr = "*" + addr
	}
	parts := []string{
		st.HeaderValue.Render(" " + m.title + " "),
		hv(name) + hk(" ") + hv(addr),
	}
	if s.Root {
		parts = append(parts, hv("root"))
	}
	tls := "off"
	if s.TLS {
		tls = "on"
	}
	parts = append(parts,
		hk("up ")+hv(uptime),
		hk("edges ")+hv(strconv.Itoa(s.Edges)),
		hk("↓")+hv(fmtRate(m.rateIn)+"/s")+hk(" ↑")+hv(fmtRate(m.rateOut)+"/s"),
		hk("TLS ")+hv(tls),
	)
	if s.Reconnecting {
		parts = append(parts, hv(m.st.Symbols.Reconnecting+" reconnecting"))
	}
	if s.Dropped > 0 {
		parts = append(parts, hk("dropped ")+hv(strconv.FormatUint(s.Dropped, 10)))
	}
	line := strings.Join(parts, sp)
	line = trunc(line, m.width)
	if pad := m.width - lipgloss.Width(line); pad > 0 {
		line += st.Header.Render(strings.Repeat(" ", pad))
	}
	m.headerLine = line
	return line
}

func (m *model) renderPaneTabs() string {
	var parts []string
	for p := pane(0); p < numPanes; p++ {
		label := " " + strconv.Itoa(int(p)+1) + " " + paneNames[p]
		if n := m.paneBadge(p); n != "" {
			label += " " + n
		}
		label += " "
		if p == m.pane {
			parts = append(parts, m.st.TabActive.Render(label))
		} else {
			parts = append(parts, m.st.Tab.Render(label))
		}
	}
	return trunc(strings.Join(parts, " "), m.width)
}

// paneBadge is a small count beside a pane's tab.
func (m *model) paneBadge(p pane) string {
	switch p {
	case paneEdges:
		return strconv.Itoa(len(m.edges))
	case paneTransfers:
		active := 0
		for _, t := range m.transfers {
			if !t.State.Finished() {
				active++
			}
		}
		if active > 0 {
			return strconv.Itoa(active)
		}
	case paneStore:
		if len(m.store) > 0 {
			return strconv.Itoa(len(m.store))
		}
	}
	return ""
}

func (m *model) renderStatus() string {
	w := m.width
	switch {
	case len(m.confirms) > 0:
		c := m.confirms[0]
		more := ""
		if len(m.confirms) > 1 {
			more = " (+" + strconv.Itoa(len(m.confirms)-1) + " more)"
		}
		q := m.st.Warn.Render("? ") + c.question + " " + m.st.HelpKey.Render("y/n") + m.st.Muted.Render(more)
		return trunc(q, w)
	case m.prompt != nil:
		m.prompt.input.Width = max(5, w-lipgloss.Width(m.prompt.input.Prompt)-2)
		return trunc(m.prompt.input.View(), w)
	case m.filtering:
		m.filterIn.Width = max(5, w-4)
		return trunc(m.filterIn.View(), w)
	case m.notice != "":
		if m.noticeErr {
			return trunc(m.st.Error.Render(m.st.Symbols.Fail+" ")+m.st.StatusBar.Render(m.notice), w)
		}
		return trunc(m.st.OK.Render(m.st.Symbols.OK+" ")+m.st.StatusBar.Render(m.notice), w)
	}
	return ""
}

func (m *model) renderShortHelp() string {
	m.help.Width = m.width
	var bs = m.keys.shortHelp(m.pane, m.pane == paneTopics && m.typing)
	switch {
	case len(m.confirms) > 0:
		bs = bs[:0]
		bs = append(bs, m.keys.Yes, m.keys.No)
	case m.prompt != nil || m.filtering:
		return trunc(m.st.HelpKey.Render("enter")+" "+m.st.HelpDesc.Render("confirm")+
			m.st.HelpSep.Render(" • ")+m.st.HelpKey.Render("esc")+" "+m.st.HelpDesc.Render("cancel"), m.width)
	case m.showHelp || m.detail:
		return trunc(m.st.HelpKey.Render("esc")+" "+m.st.HelpDesc.Render("close")+
			m.st.HelpSep.Render(" • ")+m.st.HelpKey.Render("↑/↓ pgup/pgdn")+" "+m.st.HelpDesc.Render("scroll"), m.width)
	}
	return trunc(m.help.ShortHelpView(bs), m.width)
}

// title renders a pane's first line: name, count and active filter.
func (m *model) paneTitle(p pane, count string, w int) string {
	t := m.st.Title.Render(paneNames[p])
	if count != "" {
		t += " " + m.st.Muted.Render(count)
	}
	if f := m.filter[p]; f != "" {
		t += "  " + m.st.Accent.Render("/"+f) + m.st.Muted.Render(" (esc clears)")
	}
	return trunc(t, w)
}

// renderHelp shows every key binding in a scrollable view.
func (m *model) renderHelp(w, h int) []string {
	m.helpView.Width, m.helpView.Height = w, h
	m.helpView.SetContent(m.helpContentWidth(w))
	return strings.Split(m.helpView.View(), "\n")
}

func (m *model) helpContent() string { return m.helpContentWidth(m.bodyWidth()) }

// helpContentWidth lays out every key binding in columns that fit w.
func (m *model) helpContentWidth(w int) string {
	groups := m.keys.helpGroups()
	m.help.Width = 0
	var rows []string
	var row [][]string
	rowW := 0
	var flush = func() {
		if len(row) == 0 {
			return
		}
		rows = append(rows, lipgloss.JoinHorizontal(lipgloss.Top, joinCols(row)...))
		rows = append(rows, "")
		row, rowW = nil, 0
	}
	for _, g := range groups {
		col := strings.Split(m.help.FullHelpView([][]key.Binding{g}), "\n")
		cw := 0
		for _, l := range col {
			cw = max(cw, lipgloss.Width(l))
		}
		if rowW > 0 && rowW+4+cw > w {
			flush()
		}
		row = append(row, col)
		rowW += cw + 4
	}
	flush()
	return m.st.Title.Render("Keys") + m.st.Muted.Render("  (esc or ? closes)") + "\n\n" + strings.Join(rows, "\n")
}

func joinCols(cols [][]string) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		cw := 0
		for _, l := range c {
			cw = max(cw, lipgloss.Width(l))
		}
		for j, l := range c {
			c[j] = l + strings.Repeat(" ", cw-lipgloss.Width(l))
			if i < len(cols)-1 {
				c[j] += "    "
			}
		}
		out[i] = strings.Join(c, "\n")
	}
	return out
}

func (m *model) openDetail(title string, body []byte) {
	m.detail = true
	m.detailName = title
	m.detailView.SetYOffset(0)
	m.detailBody = body
	m.viewDirty = true
}

func (m *model) renderDetail(w, h int) []string {
	title := m.st.Title.Render(trunc(m.detailName, w-30)) + m.st.Muted.Render("  "+fmtBytes(int64(len(m.detailBody)))+" · esc closes")
	var text string
	if s, bin := payloadText(m.detailBody, 1<<20); !bin {
		text = wrapText(strings.ReplaceAll(string(m.detailBody), "\t", "    "), w)
	} else {
		_ = s
		text = hexDump(m.detailBody, w)
	}
	m.detailView.Width, m.detailView.Height = w, h-1
	m.detailView.SetContent(text)
	return append([]string{title}, strings.Split(m.detailView.View(), "\n")...)
}

// wrapText hard-wraps text to w cells, sanitising control characters.
func wrapText(s string, w int) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		line = sanitize(strings.TrimRight(line, "\r"))
		for lipgloss.Width(line) > w {
			cut := truncPlain(line, w)
			out = append(out, cut)
			line = line[len(cut):]
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}

// truncPlain returns the longest prefix of plain s that fits w cells.
func truncPlain(s string, w int) string {
	n := 0
	for i, r := range s {
		rw := lipgloss.Width(string(r))
		if n+rw > w {
			if i == 0 {
				return s[:len(string(r))]
			}
			return s[:i]
		}
		n += rw
	}
	return s
}

func hexDump(b []byte, w int) string {
	per := 16
	if w < 76 {
		per = 8
	}
	const hexd = "0123456789abcdef"
	var sb strings.Builder
	for off := 0; off < len(b); off += per {
		end := min(off+per, len(b))
		sb.WriteString(strconv.FormatInt(int64(off)+1<<32, 16)[1:])
		sb.WriteString("  ")
		for i := off; i < off+per; i++ {
			if i < end {
				sb.WriteByte(hexd[b[i]>>4])
				sb.WriteByte(hexd[b[i]&15])
				sb.WriteByte(' ')
			} else {
				sb.WriteString("   ")
			}
		}
		sb.WriteString(" ")
		for i := off; i < end; i++ {
			if b[i] >= 0x20 && b[i] < 0x7f {
				sb.WriteByte(b[i])
			} else {
				sb.WriteByte('.')
			}
		}
		sb.WriteByte('\n')
	}
	return strings.TrimRight(sb.String(), "\n")
}
