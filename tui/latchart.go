package tui

import (
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"
)

// The latency chart is drawn here rather than with NimbleMarkets/ntcharts:
// ntcharts v0.5.1 builds with our bubbletea/lipgloss (checked with go get:
// it adds nothing else), but its time-series chart joins every pair of
// consecutive points with a line, so a lost ping would be bridged by an
// interpolated segment; a chart that must show losses as gaps, outages
// as shaded columns and fall back to ASCII needs the drawing loop itself,
// which is small (see docs/ARCHITECTURE.md).

// chartLine is one series to draw and its colour.
type chartLine struct {
	s     *latSeries
	style lipgloss.Style
}

// chartCell is one terminal cell of the plot area.
type chartCell struct {
	bits   uint8 // braille dots (or "set" in ASCII)
	owner  int8  // 1 + index of the series that set it last
	lost   bool  // a lost ping falls in this column (bottom row)
	outage bool  // the peer was not connected during this column
}

// brailleBit maps a dot (x 0–1, y 0–3 from the top) to its bit.
var brailleBit = [2][4]uint8{{0x01, 0x02, 0x04, 0x40}, {0x08, 0x10, 0x20, 0x80}}

// niceCeil rounds d up to 1, 2 or 5 times a power of ten (in ns), so the
// axis reads "2ms", "500µs" rather than "1.37ms".
func niceCeil(d time.Duration) time.Duration {
	if d <= 0 {
		return time.Millisecond
	}
	p := time.Duration(1)
	for p*10 <= d {
		p *= 10
	}
	for _, m := range []time.Duration{1, 2, 5, 10} {
		if m*p >= d {
			return m * p
		}
	}
	return 10 * p
}

func fmtSpan(d time.Duration) string {
	if d >= time.Minute && d%time.Minute == 0 {
		return strconv.Itoa(int(d/time.Minute)) + "m"
	}
	return strconv.Itoa(int(d/time.Second)) + "s"
}

// renderChart draws the RTT of lines over [now-span, now] into exactly h
// rows of w cells: a y axis from zero with labels, the plot, and a time
// axis. Answered pings are dots joined to the previous answered ping; a
// lost ping is a red mark on the bottom row and breaks the line; columns
// when the peer was not connected are shaded. ascii draws with "*", "x"
// and "." for fonts without braille.
func renderChart(st themeStyles, lines []chartLine, now time.Time, span time.Duration, w, h int, ascii bool) []string {
	const lw = 7 // y labels
	pw, ph := w-lw-1, h-1
	if pw < 4 || ph < 2 {
		return fill(nil, h)
	}
	dx, dy := 2, 4
	if ascii {
		dx, dy = 1, 1
	}
	cols, rows := pw*dx, ph*dy
	from := now.Add(-span)
	xOf := func(t time.Time) int {
		return int(float64(t.Sub(from)) / float64(span) * float64(cols-1))
	}
	// The y range starts at zero, so a wobble of a few µs stays small.
	var top time.Duration
	for _, l := range lines {
		for _, p := range l.s.pts {
			if !p.lost && !p.at.Before(from) && p.rtt > top {
				top = p.rtt
			}
		}
	}
	top = niceCeil(top)
	yOf := func(d time.Duration) int {
		y := rows - 1 - int(float64(d)/float64(top)*float64(rows-1)+0.5)
		return clamp(y, 0, rows-1)
	}
	grid := make([]chartCell, pw*ph)
	set := func(x, y, owner int) {
		if x < 0 || x >= cols || y < 0 || y >= rows {
			return
		}
		c := &grid[(y/dy)*pw+x/dx]
		if ascii {
			c.bits = 1
		} else {
			c.bits |= brailleBit[x%dx][y%dy]
		}
		c.owner = int8(owner)
	}
	for li, l := range lines {
		owner := li + 1
		for _, o := range l.s.outages {
			end := o.to
			if end.IsZero() || end.After(now) {
				end = now
			}
			if end.Before(from) {
				continue
			}
			for x := max(0, xOf(o.from)); x <= min(cols-1, xOf(end)); x++ {
				for r := 0; r < ph; r++ {
					grid[r*pw+x/dx].outage = true
				}
			}
		}
		px, py, have := 0, 0, false
		for _, p := range l.s.pts {
			if p.at.Before(from) {
				continue
			}
			x := xOf(p.at)
			if p.lost {
				c := &grid[(ph-1)*pw+min(pw-1, x/dx)]
				c.lost, c.owner = true, int8(owner)
				have = false // never draw across a lost ping
				continue
			}
			y := yOf(p.rtt)
			if have && !l.s.downBetween(px, x, xOf) {
				line(px, py, x, y, func(x, y int) { set(x, y, owner) })
			} else {
				set(x, y, owner)
			}
			px, py, have = x, y, true
		}
	}
	out := make([]string, 0, h)
	var run strings.Builder
	for r := 0; r < ph; r++ {
		var label string
		switch r {
		case 0:
			label = fmtRTT(top)
		case ph / 2:
			if ph >= 4 {
				label = fmtRTT(top / 2)
			}
		case ph - 1:
			label = "0"
		}
		var b strings.Builder
		b.WriteString(st.Muted.Render(fit(label, lw, true) + "┤"))
		runStyle, runKind := -1, -2
		flush := func() {
			if run.Len() == 0 {
				return
			}
			switch {
			case runKind == -1:
				b.WriteString(st.Muted.Render(run.String()))
			case runKind == 0:
				b.WriteString(run.String())
			case runStyle == -3:
				b.WriteString(st.SparkLoss.Render(run.String()))
			default:
				b.WriteString(lines[runStyle].style.Render(run.String()))
			}
			run.Reset()
		}
		for c := 0; c < pw; c++ {
			cell := grid[r*pw+c]
			kind, sty := 0, -1
			var ch string
			switch {
			case cell.lost:
				kind, sty, ch = 1, -3, st.Symbols.Loss
				if ascii {
					ch = "x"
				}
			case cell.bits != 0:
				kind, sty = 1, int(cell.owner)-1
				if ascii {
					ch = "*"
				} else {
					ch = string(rune(0x2800 + int(cell.bits)))
				}
			case cell.outage:
				kind, ch = -1, "░"
				if ascii {
					ch = "."
				}
			default:
				ch = " "
			}
			if kind != runKind || sty != runStyle {
				flush()
				runKind, runStyle = kind, sty
			}
			run.WriteString(ch)
		}
		flush()
		out = append(out, b.String())
	}
	// The time axis: "-2m ──── -1m ──── now".
	axis := []rune(strings.Repeat("─", pw))
	put := func(at int, s string) {
		rs := []rune(s)
		at = clamp(at, 0, max(0, pw-len(rs)))
		for i, r := range rs {
			if at+i < len(axis) {
				axis[at+i] = r
			}
		}
	}
	put(0, "-"+fmtSpan(span))
	if pw >= 30 {
		put(pw/2-2, "-"+fmtSpan(span/2))
	}
	put(pw-3, "now")
	out = append(out, st.Muted.Render(strings.Repeat(" ", lw)+"└"+string(axis)))
	return out
}

// downBetween reports whether an outage lies between two dot columns.
func (s *latSeries) downBetween(x0, x1 int, xOf func(time.Time) int) bool {
	for _, o := range s.outages {
		a := xOf(o.from)
		if a >= x0 && a <= x1 {
			return true
		}
	}
	return false
}

// line calls plot for the dots of a straight line (Bresenham).
func line(x0, y0, x1, y1 int, plot func(x, y int)) {
	dx, dy := x1-x0, y1-y0
	if dx < 0 {
		dx = -dx
	}
	if dy < 0 {
		dy = -dy
	}
	sx, sy := 1, 1
	if x0 > x1 {
		sx = -1
	}
	if y0 > y1 {
		sy = -1
	}
	e := dx - dy
	for {
		plot(x0, y0)
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 > -dy {
			e -= dy
			x0 += sx
		}
		if e2 < dx {
			e += dx
			y0 += sy
		}
	}
}
