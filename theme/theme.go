// Package theme holds the colour palettes of the Chaski dashboard and the one
// Styles struct every view draws with. Views never build styles ad hoc: they
// take them from a Styles value returned by New (or Load).
//
// Every state the dashboard shows has a text symbol as well as a colour (see
// Symbols), so nothing depends on colour alone; the "colorblind" palette
// additionally never tells two states apart by red versus green, and "mono"
// uses only bold, faint, underline and reverse. When the NO_COLOR environment
// variable is set to a non-empty value, New returns the mono styles, drawn
// with a renderer that keeps text attributes (NO_COLOR forbids colour, not
// reverse video), so focus and selection stay visible.
//
// Text drawn on a highlighted background (header, selection, focused pane
// title, mode badge) keeps a contrast of at least 4.5:1 in every palette,
// whether the terminal shows true colour, 256 colours or the 16 ANSI
// colours (with bold drawn in the bright variant, as xterm does): the
// package's tests compute it from xterm's default palette.
package theme

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
)

// DefaultName is the palette used when none is asked for.
const DefaultName = "default"

// Symbols are the text marks that accompany colours, so every state can be
// read without colour.
type Symbols struct {
	Up           string // a live edge
	Connecting   string // an edge being dialled
	Reconnecting string // a lost peer being re-dialled
	Closed       string // a peer given up on
	OK           string // success (paired, verified, done)
	Fail         string // failure (failed, cancelled, lost)
	Pending      string // waiting (not paired, offered, pending)
	Loss         string // a lost ping in a latency sparkline
	Out          string // outgoing (sent)
	In           string // incoming (received)
	Selected     string // marks the selected row
}

// Border is the set of characters a pane's frame is drawn with.
type Border struct {
	TopLeft, Top, TopRight, Left, Right, BottomLeft, Bottom, BottomRight string
}

// Styles is every style the dashboard uses.
type Styles struct {
	Name    string // palette name
	Color   bool   // false for the mono palette
	Symbols Symbols

	// Frame.
	Header          lipgloss.Style // the top status bar
	HeaderKey       lipgloss.Style // labels inside the header
	HeaderValue     lipgloss.Style // values inside the header
	Pane            lipgloss.Style // frame colour of an unfocused pane
	PaneActive      lipgloss.Style // frame colour of the focused pane
	PaneBorder      Border         // frame of an unfocused pane
	PaneBorderFocus Border         // frame of the focused pane (heavier)
	PaneTitle       lipgloss.Style // title of an unfocused pane
	PaneTitleFocus  lipgloss.Style // title of the focused pane (highlighted)
	Title           lipgloss.Style // headings inside a pane
	Tab             lipgloss.Style // inactive tab (panes and topics)
	TabActive       lipgloss.Style // selected tab
	StatusBar       lipgloss.Style // bottom line for transient notices
	Overlay         lipgloss.Style // help and detail overlays
	ModeTyping      lipgloss.Style // the mode badge while text input has focus
	ModeKeys        lipgloss.Style // the mode badge while single keys are commands

	// Tables.
	TableHeader lipgloss.Style
	Row         lipgloss.Style
	RowSelected lipgloss.Style

	// Text roles.
	Muted  lipgloss.Style
	Accent lipgloss.Style
	OK     lipgloss.Style
	Warn   lipgloss.Style
	Error  lipgloss.Style

	// Edge states.
	EdgeUp           lipgloss.Style
	EdgeConnecting   lipgloss.Style
	EdgeReconnecting lipgloss.Style
	EdgeClosed       lipgloss.Style

	// Latency sparkline.
	Spark     lipgloss.Style
	SparkLoss lipgloss.Style

	// Progress bars (bubbles/progress): gradient colours and empty colour.
	// Empty strings mean "no colour" (mono).
	ProgressStart string
	ProgressEnd   string
	ProgressEmpty string

	// Help.
	HelpKey  lipgloss.Style
	HelpDesc lipgloss.Style
	HelpSep  lipgloss.Style

	// Input line.
	Prompt      lipgloss.Style
	InputText   lipgloss.Style
	Placeholder lipgloss.Style

	// Log levels.
	LogDebug lipgloss.Style
	LogInfo  lipgloss.Style
	LogWarn  lipgloss.Style
	LogError lipgloss.Style

	// Messages.
	MsgSender lipgloss.Style
	MsgSelf   lipgloss.Style
	MsgTime   lipgloss.Style
	MsgText   lipgloss.Style
	MsgBinary lipgloss.Style

	// Peers are distinct styles for peer names (chat senders, edges); a
	// view hands them out in order of first appearance, so the first
	// len(Peers) peers never share a colour.
	Peers []lipgloss.Style

	// Renderer draws every style above (nil: lipgloss's default).
	Renderer *lipgloss.Renderer
}

// Peer returns the style of the i-th distinct peer.
func (s Styles) Peer(i int) lipgloss.Style {
	if len(s.Peers) == 0 {
		return s.MsgSender
	}
	if i < 0 {
		i = -i
	}
	return s.Peers[i%len(s.Peers)]
}

// palette is the colour data a Styles is built from. Colours are lipgloss
// colour strings: ANSI indices "0"–"15", 256-colour indices or "#rrggbb".
// An empty string means "terminal default".
type palette struct {
	fg, muted, accent, accent2 string
	ok, warn, err, info        string
	border, borderActive       string
	selFg, selBg               string
	headerFg, headerBg         string
	tabActiveFg, tabActiveBg   string
	typingFg, typingBg         string
	gradStart, gradEnd, empty  string
	sender, self               string
	peers                      []string
	// boldStates makes state words bold so that states differ in weight,
	// not only in hue.
	boldStates bool
}

// pair is a foreground on a highlighted background, with the boldness it is
// drawn with (xterm draws bold ANSI colours 0–7 in their bright variant).
type pair struct {
	what     string
	fg, bg   string
	bold     bool
	required bool
}

// highlightPairs lists every text-on-background combination the palette
// draws; the contrast test checks each of them.
func (p palette) highlightPairs() []pair {
	return []pair{
		{"header", p.headerFg, p.headerBg, false, true},
		{"header value", p.headerFg, p.headerBg, true, true},
		{"selected row", p.selFg, p.selBg, false, true},
		{"active tab / focused pane title", p.tabActiveFg, p.tabActiveBg, true, true},
		{"typing badge", p.typingFg, p.typingBg, true, true},
	}
}

var palettes = map[string]palette{
	// ANSI-16 only: safe on any terminal and follows the user's own
	// terminal colour scheme. Highlights are white on blue or black on
	// cyan/yellow without bold (bold black turns grey in many terminals).
	"default": {
		fg: "", muted: "8", accent: "6", accent2: "5",
		ok: "2", warn: "3", err: "1", info: "4",
		border: "8", borderActive: "6",
		selFg: "0", selBg: "6",
		headerFg: "15", headerBg: "4",
		tabActiveFg: "15", tabActiveBg: "4",
		typingFg: "15", typingBg: "5",
		gradStart: "4", gradEnd: "6", empty: "8",
		sender: "5", self: "6",
		peers: []string{"5", "2", "3", "4", "1", "6", "13", "10", "11", "12"},
	},
	// 256-colour / truecolor for dark backgrounds.
	"dark": {
		fg: "#d0d0d0", muted: "#8a8a8a", accent: "#5fd7ff", accent2: "#d787ff",
		ok: "#87d787", warn: "#ffd75f", err: "#ff5f5f", info: "#87afff",
		border: "#585858", borderActive: "#5fd7ff",
		selFg: "#ffffff", selBg: "#005f87",
		headerFg: "#ffffff", headerBg: "#00005f",
		tabActiveFg: "#ffffff", tabActiveBg: "#005f87",
		typingFg: "#ffffff", typingBg: "#870087",
		gradStart: "#5a56e0", gradEnd: "#5fd7ff", empty: "#3a3a3a",
		sender: "#d787ff", self: "#5fd7ff",
		peers: []string{"#d787ff", "#87d787", "#ffd75f", "#87afff", "#ff8787", "#5fd7d7", "#ffafd7", "#d7d787"},
	},
	// Dark inks for light backgrounds.
	"light": {
		fg: "#1c1c1c", muted: "#5f5f5f", accent: "#005f87", accent2: "#870087",
		ok: "#005f00", warn: "#875f00", err: "#af0000", info: "#00008b",
		border: "#a8a8a8", borderActive: "#005f87",
		selFg: "#ffffff", selBg: "#00005f",
		headerFg: "#ffffff", headerBg: "#00005f",
		tabActiveFg: "#ffffff", tabActiveBg: "#00005f",
		typingFg: "#ffffff", typingBg: "#5f005f",
		gradStart: "#005f87", gradEnd: "#0087af", empty: "#d0d0d0",
		sender: "#870087", self: "#005f87",
		peers: []string{"#870087", "#005f00", "#875f00", "#00008b", "#af0000", "#005f5f", "#5f0087", "#5f5f00"},
	},
	// Okabe–Ito colours: blue for good, orange/vermillion for bad, yellow
	// for waiting; no two states differ only by red versus green, and state
	// words are bold. Highlights are white on dark blue.
	"colorblind": {
		fg: "", muted: "#999999", accent: "#56b4e9", accent2: "#cc79a7",
		ok: "#0072b2", warn: "#f0e442", err: "#d55e00", info: "#56b4e9",
		border: "#666666", borderActive: "#56b4e9",
		selFg: "#ffffff", selBg: "#00005f",
		headerFg: "#ffffff", headerBg: "#00005f",
		tabActiveFg: "#ffffff", tabActiveBg: "#00005f",
		typingFg: "#ffffff", typingBg: "#5f0087",
		gradStart: "#0072b2", gradEnd: "#56b4e9", empty: "#555555",
		sender: "#cc79a7", self: "#56b4e9",
		peers:      []string{"#e69f00", "#56b4e9", "#f0e442", "#cc79a7", "#0072b2", "#d55e00", "#ffffff", "#999999"},
		boldStates: true,
	},
}

// Names returns the palette names New accepts, sorted, "mono" included.
func Names() []string {
	names := make([]string, 0, len(palettes)+1)
	for n := range palettes {
		names = append(names, n)
	}
	names = append(names, "mono")
	sort.Strings(names)
	return names
}

// Load is New with lipgloss's default renderer.
func Load(name string) (Styles, error) { return New(name, nil) }

// New returns the styles of the named palette ("" means DefaultName), drawn
// by renderer r (nil: lipgloss's default renderer; an SSH session passes
// its own so that colours fit the client's terminal). An unknown name is an
// error. When NO_COLOR is set (non-empty), the mono styles are returned
// whatever the name, as long as the name is valid.
func New(name string, r *lipgloss.Renderer) (Styles, error) {
	name = strings.ToLower(strings.TrimSpace(name))
	if name == "" {
		name = DefaultName
	}
	p, ok := palettes[name]
	if !ok && name != "mono" {
		return Styles{}, fmt.Errorf("theme: unknown theme %q (known: %s)", name, strings.Join(Names(), ", "))
	}
	if name == "mono" || os.Getenv("NO_COLOR") != "" {
		return mono(attrRenderer(r)), nil
	}
	if r == nil {
		r = lipgloss.DefaultRenderer()
	}
	return build(name, p, r), nil
}

// attrRenderer returns a renderer that draws text attributes (bold,
// reverse, underline) but, given only colourless styles, no colour. A
// NO_COLOR terminal is detected as the Ascii profile, which would drop the
// attributes as well and leave focus invisible.
func attrRenderer(r *lipgloss.Renderer) *lipgloss.Renderer {
	if r == nil {
		r = lipgloss.DefaultRenderer()
	}
	if r.ColorProfile() != termenv.Ascii {
		return r
	}
	out := lipgloss.NewRenderer(r.Output())
	out.SetColorProfile(termenv.ANSI)
	out.SetHasDarkBackground(r.HasDarkBackground())
	return out
}

// MustLoad is Load for names known to be valid; it falls back to the default.
func MustLoad(name string) Styles {
	s, err := Load(name)
	if err != nil {
		s, _ = Load(DefaultName)
	}
	return s
}

func defaultSymbols() Symbols {
	return Symbols{
		Up:           "●",
		Connecting:   "○",
		Reconnecting: "↻",
		Closed:       "✗",
		OK:           "✓",
		Fail:         "✗",
		Pending:      "○",
		Loss:         "×",
		Out:          "↑",
		In:           "↓",
		Selected:     "▶",
	}
}

var (
	roundBorder = Border{"╭", "─", "╮", "│", "│", "╰", "─", "╯"}
	thickBorder = Border{"┏", "━", "┓", "┃", "┃", "┗", "━", "┛"}
	plainBorder = Border{"┌", "─", "┐", "│", "│", "└", "─", "┘"}
)

func build(name string, p palette, r *lipgloss.Renderer) Styles {
	ns := r.NewStyle
	fgStyle := func(c string) lipgloss.Style {
		s := ns()
		if c != "" {
			s = s.Foreground(lipgloss.Color(c))
		}
		return s
	}
	on := func(fg, bg string) lipgloss.Style {
		return ns().Foreground(lipgloss.Color(fg)).Background(lipgloss.Color(bg))
	}
	fg := fgStyle(p.fg)
	state := func(c string) lipgloss.Style { return fgStyle(c).Bold(p.boldStates) }
	peers := make([]lipgloss.Style, len(p.peers))
	for i, c := range p.peers {
		peers[i] = fgStyle(c).Bold(true)
	}
	return Styles{
		Name:     name,
		Color:    true,
		Symbols:  defaultSymbols(),
		Renderer: r,

		Header:          on(p.headerFg, p.headerBg),
		HeaderKey:       on(p.headerFg, p.headerBg),
		HeaderValue:     on(p.headerFg, p.headerBg).Bold(true),
		Pane:            fgStyle(p.border),
		PaneActive:      fgStyle(p.borderActive).Bold(true),
		PaneBorder:      roundBorder,
		PaneBorderFocus: thickBorder,
		PaneTitle:       fgStyle(p.accent),
		PaneTitleFocus:  on(p.tabActiveFg, p.tabActiveBg).Bold(true),
		Title:           fgStyle(p.accent).Bold(true),
		Tab:             fgStyle(p.muted),
		TabActive:       on(p.tabActiveFg, p.tabActiveBg).Bold(true),
		StatusBar:       fg,
		Overlay:         fg,
		ModeTyping:      on(p.typingFg, p.typingBg).Bold(true),
		ModeKeys:        on(p.tabActiveFg, p.tabActiveBg).Bold(true),

		TableHeader: fgStyle(p.muted).Bold(true),
		Row:         fg,
		RowSelected: on(p.selFg, p.selBg),

		Muted:  fgStyle(p.muted),
		Accent: fgStyle(p.accent),
		OK:     state(p.ok),
		Warn:   state(p.warn),
		Error:  fgStyle(p.err).Bold(true),

		EdgeUp:           state(p.ok),
		EdgeConnecting:   state(p.info),
		EdgeReconnecting: state(p.warn),
		EdgeClosed:       fgStyle(p.err).Bold(true),

		Spark:     fgStyle(p.accent),
		SparkLoss: fgStyle(p.err).Bold(true),

		ProgressStart: p.gradStart,
		ProgressEnd:   p.gradEnd,
		ProgressEmpty: p.empty,

		HelpKey:  fgStyle(p.accent).Bold(true),
		HelpDesc: fgStyle(p.muted),
		HelpSep:  fgStyle(p.muted),

		Prompt:      fgStyle(p.accent).Bold(true),
		InputText:   fg,
		Placeholder: fgStyle(p.muted),

		LogDebug: fgStyle(p.muted),
		LogInfo:  fgStyle(p.info),
		LogWarn:  state(p.warn),
		LogError: fgStyle(p.err).Bold(true),

		MsgSender: fgStyle(p.sender).Bold(true),
		MsgSelf:   fgStyle(p.self).Bold(true),
		MsgTime:   fgStyle(p.muted),
		MsgText:   fg,
		MsgBinary: fgStyle(p.accent2),
		Peers:     peers,
	}
}

// mono uses attributes only: bold, faint, underline and reverse.
func mono(r *lipgloss.Renderer) Styles {
	plain := r.NewStyle()
	bold := plain.Bold(true)
	faint := plain.Faint(true)
	return Styles{
		Name:     "mono",
		Color:    false,
		Symbols:  defaultSymbols(),
		Renderer: r,

		Header:          plain.Reverse(true),
		HeaderKey:       plain.Reverse(true),
		HeaderValue:     bold.Reverse(true),
		Pane:            plain,
		PaneActive:      bold,
		PaneBorder:      plainBorder,
		PaneBorderFocus: thickBorder,
		PaneTitle:       plain,
		PaneTitleFocus:  bold.Reverse(true),
		Title:           bold,
		Tab:             plain,
		TabActive:       bold.Reverse(true),
		StatusBar:       plain,
		Overlay:         plain,
		ModeTyping:      bold.Reverse(true).Underline(true),
		ModeKeys:        bold.Reverse(true),

		TableHeader: bold.Underline(true),
		Row:         plain,
		RowSelected: plain.Reverse(true),

		Muted:  faint,
		Accent: bold,
		OK:     bold,
		Warn:   bold,
		Error:  bold.Underline(true),

		EdgeUp:           bold,
		EdgeConnecting:   plain,
		EdgeReconnecting: plain.Underline(true),
		EdgeClosed:       faint,

		Spark:     plain,
		SparkLoss: bold,

		HelpKey:  bold,
		HelpDesc: plain,
		HelpSep:  faint,

		Prompt:      bold,
		InputText:   plain,
		Placeholder: faint,

		LogDebug: faint,
		LogInfo:  plain,
		LogWarn:  bold,
		LogError: bold.Underline(true),

		MsgSender: bold,
		MsgSelf:   bold.Underline(true),
		MsgTime:   faint,
		MsgText:   plain,
		MsgBinary: plain.Italic(true),
		Peers:     []lipgloss.Style{bold, bold.Underline(true), bold.Italic(true), plain.Underline(true), plain.Italic(true)},
	}
}
