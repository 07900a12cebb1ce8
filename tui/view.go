package tui

import (
	"strconv"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"github.com/chaski-dev/chaski/chaski"
	"github.com/chaski-dev/chaski/theme"
)

// The smallest terminal anything useful fits in: a pane with a frame, the
// header, the status line and the help line.
const minWidth, minHeight = 50, 12

// Layout thresholds: below compactW×compactH one pane at a time; below
// wideW×wideH one column (edges above the chat); above, two columns with
// every pane.
const (
	compactW, compactH = 80, 20
	wideW, wideH       = 120, 28
)

// box is a pane placed on the screen.
type box struct {
	p    paneID
	w, h int
}

// column is a stack of boxes of one width.
type column struct {
	w     int
	boxes []box
}

func (m *model) stripShown() bool {
	w, h := m.sh.width, m.sh.height
	return m.zoomed || w < wideW || h < wideH
}

// bodyHeight is the number of rows between the header and the status line.
func (m *model) bodyHeight() int {
	h := m.sh.height - 3
	if m.stripShown() {
		h--
	}
	return max(3, h)
}

// layout places the panes for the terminal size: the focused pane is
// always shown; nothing overlaps and every box keeps its whole frame.
func (m *model) layout() []column {
	w, bh := m.sh.width, m.bodyHeight()
	if m.zoomed || w < compactW || m.sh.height < compactH {
		return []column{{w: w, boxes: []box{{p: m.focus, w: w, h: bh}}}}
	}
	want := func(p paneID) int { return m.panes[p].want() + 2 }
	if w < wideW || m.sh.height < wideH {
		// One column: a list pane above the chat. The list is Edges unless
		// another list pane has the focus.
		top := paneEdges
		if m.focus != paneTopics {
			top = m.focus
		}
		th := clamp(want(top), 4, bh/2)
		if top != paneEdges {
			th = max(th, min(bh/2, 8))
		}
		return []column{{w: w, boxes: []box{{p: top, w: w, h: th}, {p: paneTopics, w: w, h: bh - th}}}}
	}
	lw := w * 56 / 100
	rw := w - lw
	eh := clamp(want(paneEdges), 5, bh*2/5)
	left := column{w: lw, boxes: []box{{p: paneEdges, w: lw, h: eh}, {p: paneTopics, w: lw, h: bh - eh}}}
	right := column{w: rw, boxes: stack(rw, bh, []stackItem{
		{p: paneTransfers, min: 4, want: want(paneTransfers), cap: bh / 3},
		{p: paneDiscovery, min: 4, want: want(paneDiscovery), cap: bh / 3},
		{p: paneStore, min: 4, want: want(paneStore), cap: bh / 4},
		{p: paneLog, min: 4, want: 1 << 20},
	}, m.focus)}
	return []column{left, right}
}

type stackItem struct {
	p              paneID
	min, want, cap int
}

// stack shares h rows among items: each gets its minimum (the lowest
// items go first when even that does not fit, but never the focused one),
// then up to what it wants (within its cap), and the last one the rest.
func stack(w, h int, items []stackItem, focus paneID) []box {
	for {
		sum := 0
		for _, it := range items {
			sum += it.min
		}
		if sum <= h || len(items) <= 1 {
			break
		}
		drop := len(items) - 1
		if items[drop].p == focus {
			drop--
		}
		items = append(items[:drop:drop], items[drop+1:]...)
	}
	hs := make([]int, len(items))
	left := h
	for i, it := range items {
		hs[i] = min(it.min, left)
		left -= hs[i]
	}
	for i, it := range items[:len(items)-1] {
		more := min(max(0, min(it.want, max(it.cap, it.min))-hs[i]), left)
		hs[i] += more
		left -= more
	}
	hs[len(hs)-1] += left
	out := make([]box, len(items))
	for i, it := range items {
		out[i] = box{p: it.p, w: w, h: hs[i]}
	}
	return out
}

func (m *model) render() string {
	sh := m.sh
	w, h := sh.width, sh.height
	if w < minWidth || h < minHeight {
		msg := "terminal too small: " + strconv.Itoa(w) + "×" + strconv.Itoa(h) +
			" (needs " + strconv.Itoa(minWidth) + "×" + strconv.Itoa(minHeight) + ")"
		return strings.Join(strings.Split(wrapWords(msg, max(10, w)), "\n"), "\n")
	}
	var b strings.Builder
	b.Grow(w * h * 3)
	b.WriteString(m.takeClipboard()) // zero width: an OSC 52 copy, once
	b.WriteString(m.renderHeader())
	b.WriteByte('\n')
	if m.stripShown() {
		b.WriteString(m.renderStrip())
		b.WriteByte('\n')
	}
	var body []string
	if m.overlay != "" {
		body = m.renderOverlay(w, m.bodyHeight())
	} else {
		body = m.renderColumns(m.layout())
	}
	for _, l := range body {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	b.WriteString(m.renderStatus())
	b.WriteByte('\n')
	b.WriteString(m.renderShortHelp())
	return b.String()
}

// renderColumns draws every column's boxes and joins them side by side.
func (m *model) renderColumns(cols []column) []string {
	var out []string
	for ci, c := range cols {
		var lines []string
		for _, bx := range c.boxes {
			lines = append(lines, m.renderBox(bx)...)
		}
		if ci == 0 {
			out = lines
			continue
		}
		for i := range out {
			if i < len(lines) {
				out[i] += lines[i]
			}
		}
	}
	return out
}

// renderBox draws one pane in its frame: the title (number, name, count,
// filter) in the top edge; the focused pane has a heavier frame and a
// highlighted title, visible without colour too.
func (m *model) renderBox(bx box) []string {
	st := m.sh.st
	c := m.panes[bx.p]
	focused := bx.p == m.focus
	br, fs, ts := st.PaneBorder, st.Pane, st.PaneTitle
	if focused {
		br, fs, ts = st.PaneBorderFocus, st.PaneActive, st.PaneTitleFocus
	}
	iw, ih := max(1, bx.w-2), max(0, bx.h-2)
	title := " " + strconv.Itoa(int(bx.p)+1) + " " + paneNames[bx.p] + " "
	extra := ""
	if b := c.badge(); b != "" {
		extra = " " + b + " "
	}
	if f := c.filter(); f != "" {
		extra += " /" + f + " "
	}
	if focused && m.zoomed {
		extra += " zoomed (z) "
	}
	titleW := lipgloss.Width(title)
	extra = trunc(extra, max(0, iw-titleW-2))
	fill := max(0, iw-1-titleW-lipgloss.Width(extra))
	top := fs.Render(br.TopLeft+br.Top) + ts.Render(trunc(title, iw-1)) + st.Muted.Render(extra) +
		fs.Render(strings.Repeat(br.Top, fill)+br.TopRight)
	lines := make([]string, 0, bx.h)
	lines = append(lines, top)
	pc := &m.cache[bx.p]
	if !pc.ok || pc.w != iw || pc.h != ih || pc.focused != focused || noPaneCache {
		pc.lines = c.view(iw, ih, focused)
		pc.w, pc.h, pc.focused, pc.ok = iw, ih, focused, true
	}
	inner := pc.lines
	left, right, bottom := m.frameParts(focused, iw)
	for i := 0; i < ih; i++ {
		l := ""
		if i < len(inner) {
			l = trunc(inner[i], iw)
		}
		if pad := iw - lipgloss.Width(l); pad > 0 {
			l += strings.Repeat(" ", pad)
		}
		lines = append(lines, left+l+right)
	}
	if bx.h >= 2 {
		lines = append(lines, bottom)
	}
	return lines
}

// noPaneCache turns the pane cache off (the benchmark's A/B comparison).
var noPaneCache = false

type frameKey struct {
	focused bool
	w       int
}

type frameStrings struct{ left, right, bottom string }

// frameParts returns a frame's styled sides and bottom edge, drawn once per
// width: styling a string costs more than all the rest of a row.
func (m *model) frameParts(focused bool, iw int) (string, string, string) {
	k := frameKey{focused, iw}
	if f, ok := m.frames[k]; ok {
		return f.left, f.right, f.bottom
	}
	st := m.sh.st
	br, fs := st.PaneBorder, st.Pane
	if focused {
		br, fs = st.PaneBorderFocus, st.PaneActive
	}
	f := frameStrings{fs.Render(br.Left), fs.Render(br.Right), fs.Render(br.BottomLeft + strings.Repeat(br.Bottom, iw) + br.BottomRight)}
	if m.frames == nil || len(m.frames) > 64 {
		m.frames = map[frameKey]frameStrings{}
	}
	m.frames[k] = f
	return f.left, f.right, f.bottom
}

func (m *model) renderHeader() string {
	sh := m.sh
	st := sh.st
	s := sh.status
	uptime := "–"
	if !s.Started.IsZero() {
		uptime = fmtAge(sh.now().Sub(s.Started))
	}
	hk := func(k string) string { return st.HeaderKey.Render(k) }
	hv := func(v string) string { return st.HeaderValue.Render(v) }
	sp := st.Header.Render("  ")
	title := sh.opts.Title
	if title == "" {
		title = "chaski"
	}
	name := s.Name
	if name == "" {
		name = "?"
	}
	addr := s.Address
	if s.AllPaired() {
		addr = "*" + addr
	}
	up, other := sh.liveEdges()
	edges := hk("edges ") + hv(strconv.Itoa(up))
	if other > 0 {
		edges += hk(" +" + strconv.Itoa(other) + " retrying")
	}
	parts := []string{hv(" " + title + " "), hv(name) + hk(" ") + hv(addr)}
	if sh.readOnly {
		parts = append(parts, hv("read-only"))
	}
	if s.Root {
		parts = append(parts, hv("root"))
	}
	tls := "off"
	if s.TLS {
		tls = "on"
	}
	parts = append(parts,
		edges,
		hk("↓")+hv(fmtRate(sh.rateIn)+" msg/s")+hk(" ↑")+hv(fmtRate(sh.rateOut)+" msg/s"),
		hk("up ")+hv(uptime),
		hk("TLS ")+hv(tls),
	)
	switch {
	case s.RequireSignatures:
		sig := hk("signed ") + hv("only")
		if s.Unsigned > 0 {
			sig += hk(" · unsigned dropped ") + hv(strconv.FormatUint(s.Unsigned, 10))
		}
		parts = append(parts, sig)
	case s.Signing:
		parts = append(parts, hk("signed ")+hv("on"))
	}
	if s.BadSignatures > 0 {
		parts = append(parts, st.Error.Render("bad signatures "+strconv.FormatUint(s.BadSignatures, 10)))
	}
	if s.Dropped > 0 {
		parts = append(parts, hk("events dropped ")+hv(strconv.FormatUint(s.Dropped, 10)))
	}
	line := trunc(strings.Join(parts, sp), sh.width)
	if pad := sh.width - lipgloss.Width(line); pad > 0 {
		line += st.Header.Render(strings.Repeat(" ", pad))
	}
	return line
}

// renderStrip lists every pane (the ones not on screen too), the focused
// one highlighted.
func (m *model) renderStrip() string {
	st := m.sh.st
	var parts []string
	for p := paneID(0); p < numPanes; p++ {
		label := " " + strconv.Itoa(int(p)+1) + " " + paneNames[p] + " "
		if p == m.focus {
			parts = append(parts, st.TabActive.Render(label))
		} else {
			parts = append(parts, st.Tab.Render(label))
		}
	}
	return trunc(strings.Join(parts, ""), m.sh.width)
}

// renderStatus is the line above the help: the mode badge (typing or
// commands, always shown), then the open question or prompt, a waiting
// file offer, or the last notice.
func (m *model) renderStatus() string {
	sh := m.sh
	st := sh.st
	w := sh.width
	var badge string
	switch {
	case m.prompt != nil:
		badge = st.ModeTyping.Render(" INPUT ")
	case m.confirm != nil:
		badge = st.ModeKeys.Render(" ANSWER y/n ")
	case m.textFocus():
		badge = st.ModeTyping.Render(" TYPING → #" + m.chat.sendTopic() + " ")
	default:
		badge = st.ModeKeys.Render(" KEYS ")
	}
	rest := w - lipgloss.Width(badge) - 1
	var text string
	switch {
	case m.confirm != nil:
		text = st.Warn.Render("? ") + m.confirm.question + " " + st.HelpKey.Render("y/n")
	case m.prompt != nil:
		m.prompt.input.Width = max(5, rest-lipgloss.Width(m.prompt.input.Prompt)-2)
		text = m.prompt.input.View()
	default:
		if t, ok := sh.offer(); ok {
			size := "unknown size"
			if t.Size >= 0 {
				size = fmtBytes(t.Size)
			}
			keys := "y/n"
			if m.textFocus() {
				keys = "M-y/M-n (or Esc, then y/n)"
			}
			more := ""
			if n := len(sh.offers); n > 1 {
				more = " (+" + strconv.Itoa(n-1) + " more)"
			}
			text = st.Warn.Render(st.Symbols.In+" accept "+t.Name+" ("+size+") from "+t.Peer+"? ") + st.HelpKey.Render(keys) + st.Muted.Render(more)
			if sh.notice != "" {
				text += st.Muted.Render("  · ") + st.StatusBar.Render(sh.notice)
			}
		} else if sh.notice != "" {
			sym, sty := st.Symbols.OK, st.OK
			if sh.noticeErr {
				sym, sty = st.Symbols.Fail, st.Error
			}
			text = sty.Render(sym+" ") + st.StatusBar.Render(sh.notice)
		}
	}
	return trunc(badge+" "+text, w)
}

func (m *model) renderShortHelp() string {
	st := m.sh.st
	k := m.sh.keys
	m.help.Width = m.sh.width
	pair := func(a, b, c, d string) string {
		return trunc(st.HelpKey.Render(a)+" "+st.HelpDesc.Render(b)+st.HelpSep.Render(" • ")+st.HelpKey.Render(c)+" "+st.HelpDesc.Render(d), m.sh.width)
	}
	switch {
	case m.confirm != nil:
		return pair("y", "yes", "n/esc", "no")
	case m.prompt != nil:
		return pair("enter", "confirm", "esc", "cancel")
	case m.overlay != "":
		return pair("esc", "close", "↑/↓ pgup/pgdn", "scroll")
	}
	bs := m.panes[m.focus].shortHelp()
	if m.textFocus() {
		bs = append(bs, k.ZoomAlt)
	} else {
		bs = append(bs, k.Panes, k.Zoom, k.Filter, k.Help, k.Quit)
	}
	return trunc(m.help.ShortHelpView(bs), m.sh.width)
}

// renderOverlay draws the help or detail view in one frame over the body.
func (m *model) renderOverlay(w, h int) []string {
	st := m.sh.st
	iw := max(1, w-2)
	if len(m.overlayLines) == 0 {
		if m.overlay == "help" {
			m.overlayLines = m.helpLines(iw)
		} else {
			m.overlayLines, m.detailKind = viewerLines(m.detailBody, iw)
		}
	}
	ih := max(0, h-2)
	m.overlayOff = clamp(m.overlayOff, 0, max(0, len(m.overlayLines)-ih))
	br, fs := st.PaneBorderFocus, st.PaneActive
	title := " " + trunc(sanitize(m.overlayTitle), max(1, iw-30)) + " "
	extra := " esc closes "
	if m.overlay == "detail" {
		extra = " " + m.detailKind + " · " + fmtBytes(int64(len(m.detailBody))) + " · esc closes "
	}
	fillW := max(0, iw-1-lipgloss.Width(title)-lipgloss.Width(extra))
	out := []string{fs.Render(br.TopLeft+br.Top) + st.PaneTitleFocus.Render(title) + st.Muted.Render(extra) + fs.Render(strings.Repeat(br.Top, fillW)+br.TopRight)}
	for i := 0; i < ih; i++ {
		l := ""
		if j := m.overlayOff + i; j < len(m.overlayLines) {
			l = trunc(m.overlayLines[j], iw)
		}
		if pad := iw - lipgloss.Width(l); pad > 0 {
			l += strings.Repeat(" ", pad)
		}
		out = append(out, fs.Render(br.Left)+l+fs.Render(br.Right))
	}
	return append(out, fs.Render(br.BottomLeft+strings.Repeat(br.Bottom, iw)+br.BottomRight))
}

// helpLines lays out every key binding in columns that fit w.
func (m *model) helpLines(w int) []string {
	groups := m.sh.keys.helpGroups()
	m.help.Width = 0
	var rows []string
	var row [][]string
	rowW := 0
	flush := func() {
		if len(row) == 0 {
			return
		}
		rows = append(rows, lipgloss.JoinHorizontal(lipgloss.Top, joinCols(row)...), "")
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
	intro := "Typing mode (badge TYPING): every printable key is text; Tab, Esc, Enter, Ctrl and Alt keys act. " +
		"Command mode (badge KEYS): single keys are commands. Esc leaves typing, i or Enter starts it. " +
		"In the chat, " + m.sh.st.Symbols.OK + " after a sender's name: the message carried its publisher's signature and it verified (chaski --sign)."
	out := strings.Split(wrapWords(intro, w), "\n")
	out = append(out, "")
	return append(out, strings.Split(strings.Join(rows, "\n"), "\n")...)
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

// wrapText hard-wraps text to w cells, sanitising control characters.
func wrapText(s string, w int) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		line = sanitize(strings.TrimRight(line, "\r"))
		out = append(out, ansi.Wrap(line, w, ""))
	}
	return strings.Join(out, "\n")
}

// wrapWords word-wraps plain text to w cells.
func wrapWords(s string, w int) string { return ansi.Wrap(s, max(1, w), "") }

func stripANSI(s string) string { return ansi.Strip(s) }

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

var _ = chaski.StateUp
var _ theme.Styles
