package tui

import (
	"fmt"
	"sort"
	"strings"

	"github.com/charmbracelet/bubbles/key"
)

// keyMap is the one table of every key the dashboard knows. The help
// overlay and the short help line are built from it, so they cannot drift
// from what Update does. Each binding has an action name (the names a
// config file uses to rebind keys, see Options.Keys).
type keyMap struct {
	// Global, command mode.
	Quit, Help, NextPane, PrevPane, Panes, Zoom, Filter, Up, Down, PgUp, PgDown, Top, Bottom, Back key.Binding
	// Global, also while typing (keys that are never text).
	PanesAlt, ZoomAlt, Suspend, AcceptAlt, DeclineAlt key.Binding
	// Offers (command mode).
	Accept, Decline key.Binding
	// Edges.
	Connect, CloseEdge, Ping, PingPad key.Binding
	// Edges: the latency chart.
	ChartZoomIn, ChartZoomOut, ChartFreeze, ChartReset, ChartAll, ChartASCII key.Binding
	// Topics.
	Send, Type, Blur, NextTopic, PrevTopic, History, Commands, Commands2 key.Binding
	// Discovery.
	Discover, DiscoverOne, ConnectNearby key.Binding
	// Transfers.
	CancelTransfer, DropFiles, Retry, ClearOne, ClearDone, OpenFolder key.Binding
	// Storage.
	StorePut, StoreDelete, StoreFetch, Open, StoreEdit key.Binding
	// Every pane: its data as JSON in the data dir (ExportAlt also while typing).
	Export, ExportAlt key.Binding
	// Modal questions.
	Yes, No key.Binding

	names map[string]*key.Binding
}

// noKey is a key no terminal sends: bindings that only document something
// (headings, commands, drops) use it so that bubbles/help shows them.
const noKey = "\x00doc"

func newKeyMap() *keyMap {
	b := func(keys []string, k, desc string) key.Binding {
		return key.NewBinding(key.WithKeys(keys...), key.WithHelp(k, desc))
	}
	k := &keyMap{
		Quit:     b([]string{"q"}, "q", "quit (ctrl+c anywhere)"),
		Help:     b([]string{"?", "f1"}, "?", "help"),
		NextPane: b([]string{"tab"}, "tab", "next pane"),
		PrevPane: b([]string{"shift+tab"}, "S-tab", "prev pane"),
		Panes:    b([]string{"1", "2", "3", "4", "5", "6"}, "1-6", "focus pane"),
		Zoom:     b([]string{"z"}, "z", "zoom pane"),
		Filter:   b([]string{"/"}, "/", "filter"),
		Up:       b([]string{"up", "k"}, "↑/k", "up"),
		Down:     b([]string{"down", "j"}, "↓/j", "down"),
		PgUp:     b([]string{"pgup", "ctrl+b"}, "pgup", "page up"),
		PgDown:   b([]string{"pgdown", "ctrl+f"}, "pgdn", "page down"),
		Top:      b([]string{"home", "g"}, "g", "top"),
		Bottom:   b([]string{"end", "G"}, "G", "bottom / follow"),
		Back:     b([]string{"esc"}, "esc", "leave input / clear filter"),

		PanesAlt:   b([]string{"alt+1", "alt+2", "alt+3", "alt+4", "alt+5", "alt+6"}, "M-1…6", "focus pane (also while typing)"),
		ZoomAlt:    b([]string{"alt+z", "ctrl+o"}, "M-z/C-o", "zoom (also while typing)"),
		Suspend:    b([]string{"ctrl+z"}, "C-z", "suspend (fg resumes)"),
		AcceptAlt:  b([]string{"alt+y"}, "M-y", "accept offered file (also while typing)"),
		DeclineAlt: b([]string{"alt+n"}, "M-n", "decline offered file (also while typing)"),
		Accept:     b([]string{"y"}, "y", "accept offered file"),
		Decline:    b([]string{"n"}, "n", "decline offered file"),

		Connect:   b([]string{"c"}, "c", "connect"),
		CloseEdge: b([]string{"x"}, "x", "close edge / stop retrying"),
		Ping:      b([]string{"p"}, "p", "ping now"),
		PingPad:   b([]string{"P"}, "P", "ping with padding"),

		ChartZoomIn:  b([]string{"+", "="}, "+", "chart: shorter span"),
		ChartZoomOut: b([]string{"-"}, "-", "chart: longer span"),
		ChartFreeze:  b([]string{" "}, "space", "chart: freeze / live"),
		ChartReset:   b([]string{"r"}, "r", "chart: reset history and stats"),
		ChartAll:     b([]string{"a"}, "a", "chart: all edges / selected"),
		ChartASCII:   b([]string{"b"}, "b", "chart: ascii / braille"),

		Send:      b([]string{"enter"}, "enter", "publish line"),
		Type:      b([]string{"i", "enter"}, "i", "type a message"),
		Blur:      b([]string{"esc"}, "esc", "stop typing (keys become commands)"),
		NextTopic: b([]string{"]", "ctrl+n"}, "]/C-n", "next topic"),
		PrevTopic: b([]string{"[", "ctrl+p"}, "[/C-p", "prev topic"),
		History:   key.NewBinding(key.WithKeys("up", "down"), key.WithHelp("↑/↓", "input history (typing)")),
		Commands:  key.NewBinding(key.WithKeys(noKey), key.WithHelp("/cmd", "/sub /unsub /connect /discover")),
		Commands2: key.NewBinding(key.WithKeys(noKey), key.WithHelp("/cmd", "/send /ping /store /fetch /help /quit")),

		Discover:      b([]string{"d"}, "d", "discover all"),
		DiscoverOne:   b([]string{"enter"}, "enter", "discover topic"),
		ConnectNearby: b([]string{"enter"}, "enter", "connect to the nearby node"),

		CancelTransfer: b([]string{"x"}, "x", "cancel transfer"),
		DropFiles:      key.NewBinding(key.WithKeys(noKey), key.WithHelp("drop", "file(s) to send")),
		Retry:          b([]string{"r"}, "r", "retry failed send"),
		ClearOne:       b([]string{"c"}, "c", "clear finished row"),
		ClearDone:      b([]string{"C"}, "C", "clear all finished"),
		OpenFolder:     b([]string{"o"}, "o", "open: show + copy folder"),

		StorePut:    b([]string{"a"}, "a", "put key"),
		StoreDelete: b([]string{"x"}, "x", "delete key"),
		StoreFetch:  b([]string{"f"}, "f", "fetch from network"),
		Open:        b([]string{"enter"}, "enter", "details"),
		StoreEdit:   b([]string{"E"}, "E", "edit value"),
		Export:      b([]string{"e"}, "e", "export pane as JSON"),
		ExportAlt:   b([]string{"alt+e"}, "M-e", "export pane (also while typing)"),

		Yes: b([]string{"y", "Y"}, "y", "yes"),
		No:  b([]string{"n", "N", "esc"}, "n", "no"),
	}
	// The action names of the config file's [keys] table (and Options.Keys);
	// the first set came with the config file and must keep working.
	k.names = map[string]*key.Binding{
		"quit": &k.Quit, "help": &k.Help, "next_pane": &k.NextPane, "prev_pane": &k.PrevPane, "panes": &k.Panes,
		"filter": &k.Filter, "up": &k.Up, "down": &k.Down, "page_up": &k.PgUp, "page_down": &k.PgDown,
		"top": &k.Top, "bottom": &k.Bottom, "back": &k.Back,
		"connect": &k.Connect, "close_edge": &k.CloseEdge, "ping": &k.Ping, "ping_padded": &k.PingPad,
		"send": &k.Send, "focus": &k.Type, "blur": &k.Blur, "next_topic": &k.NextTopic, "prev_topic": &k.PrevTopic,
		"history": &k.History, "discover": &k.Discover, "discover_topic": &k.DiscoverOne, "connect_nearby": &k.ConnectNearby,
		"cancel_transfer": &k.CancelTransfer, "store_new": &k.StorePut, "store_delete": &k.StoreDelete,
		"store_fetch": &k.StoreFetch, "store_open": &k.Open, "yes": &k.Yes, "no": &k.No,
		// Added with the multi-pane dashboard.
		"zoom": &k.Zoom, "zoom_always": &k.ZoomAlt, "panes_always": &k.PanesAlt, "suspend": &k.Suspend,
		"accept": &k.Accept, "decline": &k.Decline, "accept_always": &k.AcceptAlt, "decline_always": &k.DeclineAlt,
		// Added with the latency chart.
		"chart_zoom_in": &k.ChartZoomIn, "chart_zoom_out": &k.ChartZoomOut, "chart_freeze": &k.ChartFreeze,
		"chart_reset": &k.ChartReset, "chart_all": &k.ChartAll, "chart_ascii": &k.ChartASCII,
		// Transfers, Storage and export (issue 14).
		"retry_transfer": &k.Retry, "clear_transfer": &k.ClearOne, "clear_finished": &k.ClearDone,
		"open_folder": &k.OpenFolder, "store_edit": &k.StoreEdit, "export": &k.Export, "export_always": &k.ExportAlt,
	}
	return k
}

// KeyActions lists the action names Options.Keys may rebind.
func KeyActions() []string {
	k := newKeyMap()
	out := make([]string, 0, len(k.names))
	for n := range k.names {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// DefaultKeys returns the built-in keys of every action in KeyActions.
func DefaultKeys() map[string][]string {
	k := newKeyMap()
	out := make(map[string][]string, len(k.names))
	for name, b := range k.names {
		out[name] = b.Keys()
	}
	return out
}

// CheckKeys reports the first unknown action or empty key list in keys.
func CheckKeys(keys map[string][]string) error { return newKeyMap().apply(keys) }

// apply rebinds actions to the given keys (from a config file). The help
// shows the new keys. An unknown action or an empty key list is an error.
func (k *keyMap) apply(over map[string][]string) error {
	names := make([]string, 0, len(over))
	for n := range over {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		b, ok := k.names[n]
		keys := over[n]
		if !ok {
			return fmt.Errorf("unknown key action %q (known: %s)", n, strings.Join(KeyActions(), ", "))
		}
		if len(keys) == 0 {
			return fmt.Errorf("no keys for the action %q", n)
		}
		b.SetKeys(keys...)
		b.SetHelp(strings.Join(keys, "/"), b.Help().Desc)
	}
	return nil
}

// helpGroups lists every binding, grouped; the first entry of each group is
// its heading (rendered by bubbles/help as a key without description).
func (k *keyMap) helpGroups() [][]key.Binding {
	h := func(title string) key.Binding {
		return key.NewBinding(key.WithKeys(noKey), key.WithHelp(title, ""))
	}
	return [][]key.Binding{
		{h("GLOBAL (commands)"), k.Panes, k.NextPane, k.PrevPane, k.Zoom, k.Filter, k.Export, k.Up, k.Down, k.PgUp, k.PgDown, k.Top, k.Bottom, k.Back, k.Help, k.Quit},
		{h("ALWAYS (also typing)"), k.PanesAlt, k.NextPane, k.ZoomAlt, k.ExportAlt, k.Suspend, k.AcceptAlt, k.DeclineAlt, k.Accept, k.Decline},
		{h("EDGES"), k.Connect, k.CloseEdge, k.Ping, k.PingPad, k.ChartZoomIn, k.ChartZoomOut, k.ChartFreeze, k.ChartReset, k.ChartAll, k.ChartASCII},
		{h("TOPICS"), k.Type, k.Send, k.Blur, k.NextTopic, k.PrevTopic, k.History, k.Commands, k.Commands2},
		{h("DISCOVERY"), k.Discover, k.DiscoverOne},
		{h("TRANSFERS"), k.CancelTransfer, k.Retry, k.ClearOne, k.ClearDone, k.OpenFolder, k.Open, k.DropFiles},
		{h("STORAGE"), k.StorePut, k.StoreEdit, k.StoreDelete, k.StoreFetch, k.Open},
		{h("QUESTIONS"), k.Yes, k.No},
	}
}
