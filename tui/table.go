package tui

import (
	"strings"

	"github.com/charmbracelet/lipgloss"
)

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
// (sparklines, progress bars) that draws exactly w cells.
type cell struct {
	text   string
	style  *lipgloss.Style
	custom func(w int, selected bool) string
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
	// Hand out the spare room one cell at a time to growable columns.
	for extra > 0 {
		grew := false
		for i, c := range cols {
			if extra == 0 {
				break
			}
			if visible[i] && ws[i] < c.max {
				ws[i]++
				extra--
				grew = true
			}
		}
		if !grew {
			break
		}
	}
	return ws
}

type table struct {
	st     *tableStyles
	cols   []col
	widths []int
	gap    int
	width  int
}

type tableStyles struct {
	header, row, selected lipgloss.Style
}

func (m *model) newTable(cols []col, width int) *table {
	gap := 2
	if width < 100 {
		gap = 1
	}
	return &table{
		st:     &tableStyles{header: m.st.TableHeader, row: m.st.Row, selected: m.st.RowSelected},
		cols:   cols,
		widths: layoutCols(cols, width-1, gap),
		gap:    gap,
		width:  width,
	}
}

// visible reports whether column i survived the layout.
func (t *table) visible(i int) bool { return t.widths[i] > 0 }

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
	return t.st.header.Render(fit(b.String(), t.width, false))
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
		switch {
		case cl.custom != nil:
			b.WriteString(cl.custom(w, selected))
		case cl.style != nil && !selected:
			b.WriteString(cl.style.Render(fit(cl.text, w, c.right)))
		default:
			b.WriteString(fit(cl.text, w, c.right))
		}
	}
	line := b.String()
	if selected {
		line = fit(line, t.width, false)
		return t.st.selected.Render(line)
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

// empty renders an empty-state hint centred-ish in the body.
func (m *model) emptyHint(lines []string, h int, hint string) []string {
	for len(lines) < h/2-1 {
		lines = append(lines, "")
	}
	return append(lines, "  "+m.st.Muted.Render(hint))
}
