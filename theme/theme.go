// Package theme holds the colour palettes of the Chaski dashboard and the one
// Styles struct every view draws with. Views never build styles ad hoc: they
// take them from a Styles value returned by Load.
//
// Every state the dashboard shows has a text symbol as well as a colour (see
// Symbols), so nothing depends on colour alone; the "colorblind" palette
// additionally never tells two states apart by red versus green, and "mono"
// uses only bold, faint, underline and reverse. When the NO_COLOR environment
// variable is set to a non-empty value, Load always returns the mono styles.
package theme

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/charmbracelet/lipgloss"
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

// Styles is every style the dashboard uses.
type Styles struct {
	Name    string // palette name
	Color   bool   // false for the mono palette
	Symbols Symbols

	// Frame.
	Header      lipgloss.Style // the top status bar
	HeaderKey   lipgloss.Style // labels inside the header
	HeaderValue lipgloss.Style // values inside the header
	Pane        lipgloss.Style // border of an inactive pane
	PaneActive  lipgloss.Style // border of the focused pane
	Title       lipgloss.Style // pane title
	Tab         lipgloss.Style // inactive tab (panes and topics)
	TabActive   lipgloss.Style // selected tab
	StatusBar   lipgloss.Style // bottom line for transient notices
	Overlay     lipgloss.Style // help and detail overlays

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
	gradStart, gradEnd, empty  string
	sender, self               string
	// boldStates makes state words bold so that states differ in weight,
	// not only in hue.
	boldStates bool
}

var palettes = map[string]palette{
	// ANSI-16 only: safe on any terminal and follows the user's own
	// terminal colour scheme.
	"default": {
		fg: "", muted: "8", accent: "6", accent2: "5",
		ok: "2", warn: "3", err: "1", info: "4",
		border: "8", borderActive: "6",
		selFg: "0", selBg: "6",
		headerFg: "15", headerBg: "4",
		tabActiveFg: "0", tabActiveBg: "6",
		gradStart: "4", gradEnd: "6", empty: "8",
		sender: "5", self: "6",
	},
	// 256-colour / truecolor for dark backgrounds.
	"dark": {
		fg: "#d0d0d0", muted: "#6c6c6c", accent: "#5fd7ff", accent2: "#d787ff",
		ok: "#87d787", warn: "#ffd75f", err: "#ff5f5f", info: "#87afff",
		border: "#444444", borderActive: "#5fd7ff",
		selFg: "#000000", selBg: "#5fafd7",
		headerFg: "#ffffff", headerBg: "#303a4a",
		tabActiveFg: "#000000", tabActiveBg: "#5fd7ff",
		gradStart: "#5a56e0", gradEnd: "#5fd7ff", empty: "#3a3a3a",
		sender: "#d787ff", self: "#5fd7ff",
	},
	// Dark inks for light backgrounds.
	"light": {
		fg: "#1c1c1c", muted: "#808080", accent: "#005f87", accent2: "#870087",
		ok: "#005f00", warn: "#875f00", err: "#af0000", info: "#00008b",
		border: "#bcbcbc", borderActive: "#005f87",
		selFg: "#ffffff", selBg: "#005f87",
		headerFg: "#ffffff", headerBg: "#005f87",
		tabActiveFg: "#ffffff", tabActiveBg: "#005f87",
		gradStart: "#005f87", gradEnd: "#0087af", empty: "#d0d0d0",
		sender: "#870087", self: "#005f87",
	},
	// Okabe–Ito colours: blue for good, orange/vermillion for bad, yellow
	// for waiting; no two states differ only by red versus green, and state
	// words are bold.
	"colorblind": {
		fg: "", muted: "#999999", accent: "#56b4e9", accent2: "#cc79a7",
		ok: "#0072b2", warn: "#f0e442", err: "#d55e00", info: "#56b4e9",
		border: "#666666", borderActive: "#56b4e9",
		selFg: "#000000", selBg: "#56b4e9",
		headerFg: "#000000", headerBg: "#e69f00",
		tabActiveFg: "#000000", tabActiveBg: "#56b4e9",
		gradStart: "#0072b2", gradEnd: "#56b4e9", empty: "#555555",
		sender: "#cc79a7", self: "#56b4e9",
		boldStates: true,
	},
}

// Names returns the palette names Load accepts, sorted, "mono" included.
func Names() []string {
	names := make([]string, 0, len(palettes)+1)
	for n := range palettes {
		names = append(names, n)
	}
	names = append(names, "mono")
	sort.Strings(names)
	return names
}

// Load returns the styles of the named palette ("" means DefaultName). An
// unknown name is an error. When NO_COLOR is set (non-empty), the mono styles
// are returned whatever the name, as long as the name is valid.
func Load(name string) (Styles, error) {
	name = strings.ToLower(strings.TrimSpace(name))
	if name == "" {
		name = DefaultName
	}
	p, ok := palettes[name]
	if !ok && name != "mono" {
		return Styles{}, fmt.Errorf("theme: unknown theme %q (known: %s)", name, strings.Join(Names(), ", "))
	}
	if name == "mono" || os.Getenv("NO_COLOR") != "" {
		return mono(), nil
	}
	return build(name, p), nil
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

func fgStyle(c string) lipgloss.Style {
	s := lipgloss.NewStyle()
	if c != "" {
		s = s.Foreground(lipgloss.Color(c))
	}
	return s
}

func build(name string, p palette) Styles {
	fg := fgStyle(p.fg)
	border := lipgloss.RoundedBorder()
	state := func(c string) lipgloss.Style { return fgStyle(c).Bold(p.boldStates) }
	return Styles{
		Name:    name,
		Color:   true,
		Symbols: defaultSymbols(),

		Header: lipgloss.NewStyle().
			Foreground(lipgloss.Color(p.headerFg)).
			Background(lipgloss.Color(p.headerBg)),
		HeaderKey: lipgloss.NewStyle().
			Foreground(lipgloss.Color(p.headerFg)).
			Background(lipgloss.Color(p.headerBg)).Faint(false),
		HeaderValue: lipgloss.NewStyle().
			Foreground(lipgloss.Color(p.headerFg)).
			Background(lipgloss.Color(p.headerBg)).Bold(true),
		Pane:       lipgloss.NewStyle().Border(border).BorderForeground(lipgloss.Color(p.border)),
		PaneActive: lipgloss.NewStyle().Border(border).BorderForeground(lipgloss.Color(p.borderActive)),
		Title:      fgStyle(p.accent).Bold(true),
		Tab:        fgStyle(p.muted),
		TabActive: lipgloss.NewStyle().Bold(true).
			Foreground(lipgloss.Color(p.tabActiveFg)).
			Background(lipgloss.Color(p.tabActiveBg)),
		StatusBar: fg,
		Overlay:   fg,

		TableHeader: fgStyle(p.muted).Bold(true),
		Row:         fg,
		RowSelected: lipgloss.NewStyle().
			Foreground(lipgloss.Color(p.selFg)).
			Background(lipgloss.Color(p.selBg)),

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
	}
}

// mono uses attributes only: bold, faint, underline and reverse.
func mono() Styles {
	plain := lipgloss.NewStyle()
	bold := plain.Bold(true)
	faint := plain.Faint(true)
	border := lipgloss.NormalBorder()
	return Styles{
		Name:    "mono",
		Color:   false,
		Symbols: defaultSymbols(),

		Header:      plain.Reverse(true),
		HeaderKey:   plain.Reverse(true),
		HeaderValue: bold.Reverse(true),
		Pane:        plain.Border(border),
		PaneActive:  plain.Border(lipgloss.ThickBorder()),
		Title:       bold,
		Tab:         plain,
		TabActive:   bold.Reverse(true),
		StatusBar:   plain,
		Overlay:     plain,

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
	}
}
