package theme

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
)

// xterm's default 16-colour palette (XTerm-col.ad / charproc.c defaults).
var xterm16 = [16][3]uint8{
	{0x00, 0x00, 0x00}, {0xcd, 0x00, 0x00}, {0x00, 0xcd, 0x00}, {0xcd, 0xcd, 0x00},
	{0x00, 0x00, 0xee}, {0xcd, 0x00, 0xcd}, {0x00, 0xcd, 0xcd}, {0xe5, 0xe5, 0xe5},
	{0x7f, 0x7f, 0x7f}, {0xff, 0x00, 0x00}, {0x00, 0xff, 0x00}, {0xff, 0xff, 0x00},
	{0x5c, 0x5c, 0xff}, {0xff, 0x00, 0xff}, {0x00, 0xff, 0xff}, {0xff, 0xff, 0xff},
}

// xtermRGB returns the colour xterm shows for a 256-colour index; bold
// turns colours 0–7 into 8–15 (xterm's boldColors default).
func xtermRGB(i int, bold bool) [3]uint8 {
	if bold && i < 8 {
		i += 8
	}
	switch {
	case i < 16:
		return xterm16[i]
	case i < 232:
		i -= 16
		lv := func(v int) uint8 {
			if v == 0 {
				return 0
			}
			return uint8(55 + 40*v)
		}
		return [3]uint8{lv(i / 36), lv(i / 6 % 6), lv(i % 6)}
	default:
		g := uint8(8 + 10*(i-232))
		return [3]uint8{g, g, g}
	}
}

func hexRGB(t *testing.T, s string) [3]uint8 {
	v, err := strconv.ParseUint(strings.TrimPrefix(s, "#"), 16, 32)
	if err != nil || len(s) != 7 {
		t.Fatalf("bad hex colour %q", s)
	}
	return [3]uint8{uint8(v >> 16), uint8(v >> 8), uint8(v)}
}

// shown is the colour a terminal of profile p displays for lipgloss colour c.
func shown(t *testing.T, c string, p termenv.Profile, bold bool) [3]uint8 {
	t.Helper()
	if c == "" {
		t.Fatalf("a highlighted pair uses the terminal's default colour, whose contrast is unknown")
	}
	if !strings.HasPrefix(c, "#") {
		n, err := strconv.Atoi(c)
		if err != nil {
			t.Fatalf("bad colour %q", c)
		}
		return xtermRGB(n, bold)
	}
	if p == termenv.TrueColor {
		return hexRGB(t, c)
	}
	switch v := p.Color(c).(type) {
	case termenv.ANSIColor:
		return xtermRGB(int(v), bold)
	case termenv.ANSI256Color:
		return xtermRGB(int(v), bold)
	default:
		t.Fatalf("profile %v turned %q into %T", p, c, v)
	}
	return [3]uint8{}
}

func luminance(c [3]uint8) float64 {
	lin := func(v uint8) float64 {
		s := float64(v) / 255
		if s <= 0.03928 {
			return s / 12.92
		}
		return math.Pow((s+0.055)/1.055, 2.4)
	}
	return 0.2126*lin(c[0]) + 0.7152*lin(c[1]) + 0.0722*lin(c[2])
}

func contrast(a, b [3]uint8) float64 {
	la, lb := luminance(a), luminance(b)
	if la < lb {
		la, lb = lb, la
	}
	return (la + 0.05) / (lb + 0.05)
}

func TestContrastHelpers(t *testing.T) {
	// WCAG's reference values: black on white 21:1, and today's (before
	// the fix) active tab, bold black on cyan in xterm: grey on cyan.
	if c := contrast(xterm16[0], xterm16[15]); math.Abs(c-21) > 0.01 {
		t.Fatalf("black/white contrast %.2f", c)
	}
	if c := contrast(xtermRGB(0, true), xtermRGB(6, false)); c >= 4.5 {
		t.Fatalf("bold black on cyan should fail, got %.2f", c)
	}
}

// TestHighlightContrast checks every text-on-highlight pair of every palette
// as xterm shows it in true colour, 256 colours and 16 colours.
func TestHighlightContrast(t *testing.T) {
	for name, p := range palettes {
		for _, pr := range p.highlightPairs() {
			for _, prof := range []termenv.Profile{termenv.TrueColor, termenv.ANSI256, termenv.ANSI} {
				fg, bg := shown(t, pr.fg, prof, pr.bold), shown(t, pr.bg, prof, false)
				if c := contrast(fg, bg); c < 4.5 {
					t.Errorf("%s: %s %s on %s (bold %v) in %s: contrast %.2f < 4.5",
						name, pr.what, pr.fg, pr.bg, pr.bold, profName(prof), c)
				}
			}
		}
	}
}

func profName(p termenv.Profile) string {
	return map[termenv.Profile]string{termenv.TrueColor: "truecolor", termenv.ANSI256: "256 colours", termenv.ANSI: "16 colours"}[p]
}

func TestPeerColoursDistinct(t *testing.T) {
	for name, p := range palettes {
		if len(p.peers) < 6 {
			t.Errorf("%s: only %d peer colours", name, len(p.peers))
		}
		for _, prof := range []termenv.Profile{termenv.TrueColor, termenv.ANSI256} {
			seen := map[[3]uint8]string{}
			for _, c := range p.peers {
				rgb := shown(t, c, prof, false)
				if prev, dup := seen[rgb]; dup {
					t.Errorf("%s (%s): peer colours %s and %s look the same", name, profName(prof), prev, c)
				}
				seen[rgb] = c
			}
		}
	}
	t.Setenv("NO_COLOR", "")
	s, _ := Load("default")
	if s.Peer(0).GetForeground() == s.Peer(1).GetForeground() {
		t.Error("first two peers share a colour")
	}
}

// TestNoColorKeepsAttributes: with NO_COLOR, the focused pane title, the
// active tab and the selected row are drawn with reverse video (and no
// colour), even though the terminal profile says "no colour".
func TestNoColorKeepsAttributes(t *testing.T) {
	t.Setenv("NO_COLOR", "1")
	var buf bytes.Buffer
	r := lipgloss.NewRenderer(&buf)
	r.SetColorProfile(termenv.Ascii) // what a NO_COLOR terminal is detected as
	for _, name := range []string{"default", "mono"} {
		s, err := New(name, r)
		if err != nil {
			t.Fatal(err)
		}
		for what, st := range map[string]lipgloss.Style{
			"focused pane title": s.PaneTitleFocus, "active tab": s.TabActive,
			"selected row": s.RowSelected, "mode badge": s.ModeKeys,
		} {
			out := st.Render("x")
			if !strings.Contains(out, "\x1b[") || !strings.Contains(out, "7") {
				t.Errorf("%s: %s has no reverse attribute under NO_COLOR: %q", name, what, out)
			}
			if strings.Contains(out, "38;") || strings.Contains(out, "48;") || strings.Contains(out, "[3") && strings.Contains(out, "m") && hasColourSGR(out) {
				t.Errorf("%s: %s uses colour under NO_COLOR: %q", name, what, out)
			}
		}
		if s.PaneBorderFocus == s.PaneBorder {
			t.Errorf("%s: focused and unfocused frames look the same", name)
		}
	}
}

// hasColourSGR reports whether an SGR sequence in s sets a colour (30–37,
// 40–47, 90–97, 100–107, 38;…, 48;…).
func hasColourSGR(s string) bool {
	for {
		i := strings.Index(s, "\x1b[")
		if i < 0 {
			return false
		}
		s = s[i+2:]
		j := strings.IndexByte(s, 'm')
		if j < 0 {
			return false
		}
		for _, f := range strings.Split(s[:j], ";") {
			n, _ := strconv.Atoi(f)
			if (n >= 30 && n <= 48) || (n >= 90 && n <= 107) {
				return true
			}
		}
		s = s[j:]
	}
}

func TestNewUsesTheGivenRenderer(t *testing.T) {
	t.Setenv("NO_COLOR", "")
	var buf bytes.Buffer
	r := lipgloss.NewRenderer(&buf)
	r.SetColorProfile(termenv.TrueColor)
	s, err := New("dark", r)
	if err != nil {
		t.Fatal(err)
	}
	if s.Renderer != r {
		t.Fatal("styles not bound to the renderer")
	}
	// The package default renderer in tests has no colour; this one does.
	if out := s.TabActive.Render("x"); !strings.Contains(out, "48;2;") {
		t.Fatalf("session renderer not used: %q", out)
	}
	a := lipgloss.NewRenderer(&buf)
	a.SetColorProfile(termenv.Ascii)
	s2, _ := New("dark", a)
	if out := s2.TabActive.Render("x"); out != "x" {
		t.Fatalf("an Ascii session got escapes: %q", out)
	}
	_ = fmt.Sprint()
}
