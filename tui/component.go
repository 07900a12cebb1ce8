package tui

import (
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/chaski-dev/chaski/chaski"
)

type paneID int

const (
	paneEdges paneID = iota
	paneTopics
	paneDiscovery
	paneTransfers
	paneStore
	paneLog
	numPanes
)

var paneNames = [numPanes]string{"Edges", "Topics", "Discovery", "Transfers", "Storage", "Log"}

// component is one pane: it keeps its own view state (selection, scroll,
// filter, input), draws itself into the box the root gives it, handles the
// keys the root routes to it when it has the focus, and lists its keys for
// the help line and the help overlay. Components share one *shared context
// and never draw outside their box.
type component interface {
	id() paneID
	// badge is the short count shown in the pane's frame and tab.
	badge() string
	// view draws exactly h lines of at most w cells.
	view(w, h int, focused bool) []string
	// key handles a key in command mode; false when it did not use it.
	key(msg tea.KeyMsg) (tea.Cmd, bool)
	// shortHelp is the one-line help while the pane has the focus.
	shortHelp() []key.Binding
	// want is the number of inner rows the pane would like (its list).
	want() int
	// setFilter applies the pane's "/" filter; filter returns it.
	setFilter(f string)
	filter() string
}

// typer is a component with a text input (the Topics chat).
type typer interface {
	typing() bool
	setTyping(on bool) tea.Cmd
	typeKey(msg tea.KeyMsg) tea.Cmd
	insert(text string)
}

// eventer is a component that follows node events itself (the log, the
// discovery history, the chat).
type eventer interface {
	onEvent(ev chaski.Event)
}

// list is the selection, scroll offset and filter every list pane keeps.
type list struct {
	sel, off int
	filt     string
}

func (l *list) setFilter(f string) { l.filt, l.sel, l.off = f, 0, 0 }
func (l *list) filter() string     { return l.filt }

// move handles the list movement keys; it reports whether the key was one.
func (l *list) move(k *keyMap, msg tea.KeyMsg, n, page int) bool {
	switch {
	case key.Matches(msg, k.Up):
		l.sel--
	case key.Matches(msg, k.Down):
		l.sel++
	case key.Matches(msg, k.PgUp):
		l.sel -= max(1, page)
	case key.Matches(msg, k.PgDown):
		l.sel += max(1, page)
	case key.Matches(msg, k.Top):
		l.sel = 0
	case key.Matches(msg, k.Bottom):
		l.sel = n - 1
	default:
		return false
	}
	l.sel = clamp(l.sel, 0, max(0, n-1))
	return true
}

func matches(filter string, fields ...string) bool {
	if filter == "" {
		return true
	}
	f := strings.ToLower(filter)
	for _, s := range fields {
		if strings.Contains(strings.ToLower(s), f) {
			return true
		}
	}
	return false
}

func clamp(v, lo, hi int) int {
	if v > hi {
		v = hi
	}
	if v < lo {
		v = lo
	}
	return v
}

// selectedOf returns the item at sel, clamped; false when items is empty.
func selectedOf[T any](items []T, sel int) (T, bool) {
	if len(items) == 0 {
		var zero T
		return zero, false
	}
	return items[clamp(sel, 0, len(items)-1)], true
}

// fill pads lines to exactly h.
func fill(lines []string, h int) []string {
	if len(lines) > h {
		return lines[:h]
	}
	for len(lines) < h {
		lines = append(lines, "")
	}
	return lines
}
