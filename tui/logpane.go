package tui

import (
	"fmt"
	"strconv"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/chaski-dev/chaski/chaski"
)

type logEntry struct {
	at    time.Time
	level int // -4 debug, 0 info, 4 warn, 8 error (slog levels)
	text  string
}

// logPane is the node's log and the dashboard's own notices: one line per
// entry, the selected one opens in full with Enter.
type logPane struct {
	base
	list
	lines  *ring[logEntry]
	follow bool
}

func newLogPane(sh *shared, n int) *logPane {
	return &logPane{base: base{sh: sh}, lines: newRing[logEntry](n), follow: true}
}

func (p *logPane) id() paneID { return paneLog }

func (p *logPane) add(at time.Time, level int, format string, args ...any) {
	p.lines.Push(logEntry{at: at, level: level, text: sanitize(fmt.Sprintf(format, args...))})
	if p.m != nil {
		p.m.stale(paneLog) // notices are logged from anywhere
	}
}

func (p *logPane) onEvent(ev chaski.Event) {
	switch e := ev.(type) {
	case *chaski.LogEvent:
		text := e.Message
		if e.Attrs != "" {
			text += " " + e.Attrs
		}
		p.lines.Push(logEntry{at: e.When(), level: int(e.Level), text: sanitize(text)})
	case *chaski.EdgeStateEvent: // (edges up and down are in the node's own log)
		if e.State == chaski.StateClosed {
			p.add(e.When(), 4, "gave up on %s %s: %s", e.Name, e.Address, e.Err)
		}
	}
}

func (p *logPane) rows() []int {
	idx := make([]int, 0, p.lines.Len())
	for i := 0; i < p.lines.Len(); i++ {
		e := p.lines.At(i)
		if matches(p.filt, e.text, levelName(e.level)) {
			idx = append(idx, i)
		}
	}
	return idx
}

func (p *logPane) badge() string { return strconv.Itoa(p.lines.Len()) + " lines" }
func (p *logPane) want() int     { return 1 << 20 }

func (p *logPane) shortHelp() []key.Binding {
	k := p.sh.keys
	return []key.Binding{k.Up, k.Open, k.Bottom}
}

func (p *logPane) key(msg tea.KeyMsg) (tea.Cmd, bool) {
	k := p.sh.keys
	rows := p.rows()
	if p.follow {
		p.sel = len(rows) - 1
	}
	if p.move(k, msg, len(rows), 10) {
		p.follow = p.sel >= len(rows)-1
		return nil, true
	}
	if key.Matches(msg, k.Open) {
		if i, ok := selectedOf(rows, p.sel); ok {
			e := p.lines.At(i)
			p.m.openDetail("log "+e.at.Format("15:04:05.000")+" "+levelName(e.level), []byte(e.text))
		}
		return nil, true
	}
	return nil, false
}

func (p *logPane) setFilter(f string) { p.list.setFilter(f); p.follow = true }

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

func logLine(st themeStyles, e *logEntry, w int) string {
	sty := st.LogInfo
	switch {
	case e.level < 0:
		sty = st.LogDebug
	case e.level >= 8:
		sty = st.LogError
	case e.level >= 4:
		sty = st.LogWarn
	}
	head := st.MsgTime.Render(e.at.Format("15:04:05")) + " " + sty.Render(levelName(e.level)) + " "
	return head + trunc(e.text, max(1, w-13))
}

func (p *logPane) view(w, h int, focused bool) []string {
	st := p.sh.st
	rows := p.rows()
	if len(rows) == 0 {
		if p.filt != "" {
			return fill([]string{st.Muted.Render(trunc("no log line matches /"+p.filt+" — esc clears the filter", w))}, h)
		}
		return fill(wrapHint(st, "no log lines yet — the node's log and errors appear here", w), h)
	}
	if p.follow {
		p.sel = len(rows) - 1
	}
	p.sel = clamp(p.sel, 0, len(rows)-1)
	p.off = window(p.sel, p.off, h, len(rows))
	lines := make([]string, 0, h)
	for i := p.off; i < len(rows) && len(lines) < h; i++ {
		l := logLine(st, p.lines.At(rows[i]), w)
		if focused && i == p.sel && !p.follow {
			l = st.RowSelected.Render(fit(stripANSI(l), w, false))
		}
		lines = append(lines, l)
	}
	return fill(lines, h)
}
