package tui

import (
	"strings"

	"github.com/charmbracelet/lipgloss"

	"github.com/chaski-dev/chaski/theme"
)

type themeStyles = theme.Styles

// col describes a table column: its width range, whether numbers align
// right, and how important it is (prio 0 is never dropped; higher values
// go first when the pane is narrow).
type col struct {
	title    string
	min, max int
	prio     int
	right    bool
}

// cell is one table cell: plain text with a style, or a custom renderer
// (sparklines, progress bars) that draws exactly w cells. A span cell
// takes the room of every column after it too.
type cell struct {
	text   string
	style  *lipgloss.Style
	custom func(w int, selected bool) string
	span   bool
}

// layoutCols gives each column a width, 0 for a dropped column, so that the
// row fits width with gap spaces between visible columns.
func layoutCols(cols []col, width, gap int) []int {
	ws := make([]int, len(cols))
	visible := make([]bool, len(cols))
	for i := range cols {
		visible[i] = true
	}
	need := func() int {
		n, sum := 0, 0
		for i, c := range cols {
			if visible[i] {
				n++
				sum += c.min
			}
		}
		if n > 1 {
			sum += gap * (n - 1)
		}
		return sum
	}
	for need() > width {
		drop, worst := -1, 0
		for i, c := range cols {
			if visible[i] && c.prio > 0 && c.prio >= worst {
				drop, worst = i, c.prio
			}
		}
		if drop < 0 {
			break
		}
		visible[drop] = false
	}
	extra := width - need()
	for i, c := range cols {
		if visible[i] {
			ws[i] = c.min
		}
	}
	// A column that cannot have its minimum (a very narrow pane) shrinks.
	for i := len(ws) - 1; extra < 0 && i >= 0; i-- {
		if ws[i] > 1 {
			cut := min(ws[i]-1, -extra)
			ws[i] -= cut
			extra += cut
		}
	}
	// Hand out the spare room by importance: the columns that are never
	// dropped grow to their maximum first (a state with its reason, a
	// name), then the others, one priority level at a time.
	for lvl := 0; extra > 0 && lvl <= maxPrio(cols); lvl++ {
		for extra > 0 {
			grew := false
			for i, c := range cols {
				if extra > 0 && visible[i] && c.prio == lvl && ws[i] < c.max {
					ws[i]++
					extra--
					grew = true
				}
			}
			if !grew {
				break
			}
		}
	}
	return ws
}

type table struct {
	header_, row_, selected lipgloss.Style
	cols                    []col
	widths                  []int
	gap                     int
	width                   int
}

func newTable(st theme.Styles, cols []col, width int) *table {
	gap := 2
	if width < 100 {
		gap = 1
	}
	return &table{
		header_: st.TableHeader, row_: st.Row, selected: st.RowSelected,
		cols:   cols,
		widths: layoutCols(cols, width-1, gap),
		gap:    gap,
		width:  width,
	}
}

func (t *table) header() string {
	var b strings.Builder
	b.WriteByte(' ')
	first := true
	for i, c := range t.cols {
		w := t.widths[i]
		if w == 0 {
			continue
		}
		if !first {
			b.WriteString(strings.Repeat(" ", t.gap))
		}
		first = false
		b.WriteString(fit(c.title, w, c.right))
	}
	return t.header_.Render(fit(b.String(), t.width, false))
}

func (t *table) row(cells []cell, selected bool) string {
	var b strings.Builder
	if selected {
		b.WriteString("▌")
	} else {
		b.WriteByte(' ')
	}
	first := true
	for i, c := range t.cols {
		w := t.widths[i]
		if w == 0 || i >= len(cells) {
			continue
		}
		if !first {
			b.WriteString(strings.Repeat(" ", t.gap))
		}
		first = false
		cl := cells[i]
		right := c.right
		if cl.span {
			for j := i + 1; j < len(t.cols); j++ {
				if t.widths[j] > 0 {
					w += t.gap + t.widths[j]
				}
			}
			right = false
		}
		switch {
		case cl.custom != nil:
			b.WriteString(cl.custom(w, selected))
		case cl.style != nil && !selected:
			b.WriteString(cl.style.Render(fit(cl.text, w, right)))
		default:
			b.WriteString(fit(cl.text, w, right))
		}
		if cl.span {
			break
		}
	}
	line := b.String()
	if selected {
		line = fit(line, t.width, false)
		return t.selected.Render(line)
	}
	return line
}

// window returns the first index to show so that sel is visible in n rows.
func window(sel, off, rows, total int) int {
	if rows <= 0 {
		return 0
	}
	if sel < off {
		off = sel
	}
	if sel >= off+rows {
		off = sel - rows + 1
	}
	if off > total-rows {
		off = total - rows
	}
	return max(0, off)
}

func maxPrio(cols []col) int {
	m := 0
	for _, c := range cols {
		m = max(m, c.prio)
	}
	return m
}
