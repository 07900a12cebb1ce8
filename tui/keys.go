package tui

import (
	"fmt"
	"sort"
	"strings"

	"github.com/charmbracelet/bubbles/key"
)

// keyMap is the one table of every key the dashboard knows. The help
// overlay and the short help line are built from it, so they cannot drift
// from what Update does.
type keyMap struct {
	// Global.
	Quit, Help, NextPane, PrevPane, Panes, Filter, Up, Down, PgUp, PgDown, Top, Bottom, Back key.Binding
	// Edges.
	Connect, CloseEdge, Ping, PingPad key.Binding
	// Topics.
	Send, Focus, Blur, NextTopic, PrevTopic, History, Commands, Commands2 key.Binding
	// Discovery.
	Discover, DiscoverOne key.Binding
	// Transfers.
	CancelTransfer, DropFiles key.Binding
	// Storage.
	StoreNew, StoreDelete, StoreFetch, StoreOpen key.Binding
	// Prompts.
	Yes, No key.Binding
}

// noKey is a key no terminal sends: bindings that only document something
// (headings, commands, drops) use it so that bubbles/help shows them.
const noKey = "\x00doc"

func newKeyMap() keyMap {
	b := func(keys []string, k, desc string) key.Binding {
		return key.NewBinding(key.WithKeys(keys...), key.WithHelp(k, desc))
	}
	return keyMap{
		Quit:     b([]string{"q", "ctrl+c"}, "q", "quit"),
		Help:     b([]string{"?", "f1"}, "?", "help"),
		NextPane: b([]string{"tab"}, "tab", "next pane"),
		PrevPane: b([]string{"shift+tab"}, "S-tab", "prev pane"),
		Panes: b([]string{"1", "2", "3", "4", "5", "6", "alt+1", "alt+2", "alt+3", "alt+4", "alt+5", "alt+6"},
			"1-6", "go to pane"),
		Filter: b([]string{"/"}, "/", "filter"),
		Up:     b([]string{"up", "k"}, "↑/k", "up"),
		Down:   b([]string{"down", "j"}, "↓/j", "down"),
		PgUp:   b([]string{"pgup", "ctrl+b"}, "pgup", "page up"),
		PgDown: b([]string{"pgdown", "ctrl+f"}, "pgdn", "page down"),
		Top:    b([]string{"home", "g"}, "g", "top"),
		Bottom: b([]string{"end", "G"}, "G", "bottom / follow"),
		Back:   b([]string{"esc"}, "esc", "close / clear filter"),

		Connect:   b([]string{"c"}, "c", "connect"),
		CloseEdge: b([]string{"x"}, "x", "close edge"),
		Ping:      b([]string{"p"}, "p", "ping now"),
		PingPad:   b([]string{"P"}, "P", "ping with padding"),

		Send:      b([]string{"enter"}, "enter", "publish line"),
		Focus:     b([]string{"i", "enter"}, "i", "type a message"),
		Blur:      b([]string{"esc"}, "esc", "leave input"),
		NextTopic: b([]string{"]", "right", "l", "ctrl+n"}, "]/C-n", "next topic"),
		PrevTopic: b([]string{"[", "left", "h", "ctrl+p"}, "[/C-p", "prev topic"),
		History:   key.NewBinding(key.WithKeys("up", "down"), key.WithHelp("↑/↓", "input history")),
		Commands:  key.NewBinding(key.WithKeys(noKey), key.WithHelp("/cmd", "/sub /unsub /connect /discover")),
		Commands2: key.NewBinding(key.WithKeys(noKey), key.WithHelp("/cmd", "/send /ping /store /fetch /help /quit")),

		Discover:    b([]string{"d"}, "d", "discover all"),
		DiscoverOne: b([]string{"enter"}, "enter", "discover topic"),

		CancelTransfer: b([]string{"x"}, "x", "cancel transfer"),
		DropFiles:      key.NewBinding(key.WithKeys(noKey), key.WithHelp("drop", "file(s) to send")),

		StoreNew:    b([]string{"n"}, "n", "put key"),
		StoreDelete: b([]string{"x"}, "x", "delete key"),
		StoreFetch:  b([]string{"f"}, "f", "fetch from network"),
		StoreOpen:   b([]string{"enter"}, "enter", "show value"),

		Yes: b([]string{"y", "Y"}, "y", "yes"),
		No:  b([]string{"n", "N", "esc"}, "n", "no"),
	}
}

// actions names every binding a user may rebind (Options.Keys, the
// [keys] table of the config file). Bindings that only document something
// (the /commands, dropping files) are not in it.
func (k *keyMap) actions() map[string]*key.Binding {
	return map[string]*key.Binding{
		"quit": &k.Quit, "help": &k.Help, "next_pane": &k.NextPane, "prev_pane": &k.PrevPane, "panes": &k.Panes,
		"filter": &k.Filter, "up": &k.Up, "down": &k.Down, "page_up": &k.PgUp, "page_down": &k.PgDown,
		"top": &k.Top, "bottom": &k.Bottom, "back": &k.Back,
		"connect": &k.Connect, "close_edge": &k.CloseEdge, "ping": &k.Ping, "ping_padded": &k.PingPad,
		"send": &k.Send, "focus": &k.Focus, "blur": &k.Blur, "next_topic": &k.NextTopic, "prev_topic": &k.PrevTopic,
		"history": &k.History, "discover": &k.Discover, "discover_topic": &k.DiscoverOne,
		"cancel_transfer": &k.CancelTransfer, "store_new": &k.StoreNew, "store_delete": &k.StoreDelete,
		"store_fetch": &k.StoreFetch, "store_open": &k.StoreOpen, "yes": &k.Yes, "no": &k.No,
	}
}

// KeyActions lists the action names Options.Keys accepts, sorted.
func KeyActions() []string {
	var k keyMap
	var names []string
	for name := range k.actions() {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// DefaultKeys returns the built-in keys of every action in KeyActions.
func DefaultKeys() map[string][]string {
	k := newKeyMap()
	out := map[string][]string{}
	for name, b := range k.actions() {
		out[name] = b.Keys()
	}
	return out
}

// rebind replaces the keys of the actions in over (action -> keys); the
// help shows the new keys.
func (k *keyMap) rebind(over map[string][]string) error {
	acts := k.actions()
	for name, keys := range over {
		b, ok := acts[name]
		if !ok {
			return fmt.Errorf("unknown key action %q", name)
		}
		if len(keys) == 0 {
			return fmt.Errorf("no keys for the action %q", name)
		}
		b.SetKeys(keys...)
		b.SetHelp(strings.Join(keys, "/"), b.Help().Desc)
	}
	return nil
}

// helpGroups lists every binding, grouped; the first entry of each group is
// its heading (rendered by bubbles/help as a key without description).
func (k keyMap) helpGroups() [][]key.Binding {
	h := func(title string) key.Binding {
		return key.NewBinding(key.WithKeys(noKey), key.WithHelp(title, ""))
	}
	return [][]key.Binding{
		{h("GLOBAL"), k.Panes, k.NextPane, k.PrevPane, k.Filter, k.Up, k.Down, k.PgUp, k.PgDown, k.Top, k.Bottom, k.Back, k.Help, k.Quit},
		{h("EDGES"), k.Connect, k.CloseEdge, k.Ping, k.PingPad},
		{h("TOPICS"), k.Send, k.Focus, k.Blur, k.NextTopic, k.PrevTopic, k.History, k.Commands, k.Commands2},
		{h("DISCOVERY"), k.Discover, k.DiscoverOne},
		{h("TRANSFERS"), k.CancelTransfer, k.DropFiles},
		{h("STORAGE"), k.StoreNew, k.StoreDelete, k.StoreFetch, k.StoreOpen},
		{h("PROMPTS"), k.Yes, k.No},
	}
}

// shortHelp is the one-line help for a pane.
func (k keyMap) shortHelp(p pane, typing bool) []key.Binding {
	if typing {
		return []key.Binding{k.Send, k.Blur, k.NextTopic, k.History, k.PgUp, k.NextPane, k.Commands}
	}
	var s []key.Binding
	switch p {
	case paneEdges:
		s = []key.Binding{k.Connect, k.CloseEdge, k.Ping, k.PingPad}
	case paneTopics:
		s = []key.Binding{k.Focus, k.NextTopic, k.PgUp}
	case paneDiscovery:
		s = []key.Binding{k.Discover, k.DiscoverOne}
	case paneTransfers:
		s = []key.Binding{k.CancelTransfer, k.DropFiles}
	case paneStore:
		s = []key.Binding{k.StoreNew, k.StoreDelete, k.StoreFetch, k.StoreOpen}
	}
	return append(s, k.Filter, k.Panes, k.Help, k.Quit)
}
