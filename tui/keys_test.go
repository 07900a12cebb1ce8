package tui

import (
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
)

// Keys from Options (the config file's [keys] table) replace the defaults:
// the new key acts, the old one no longer does, and the ? help shows it.
func TestOptionsKeysRebindAndShowInHelp(t *testing.T) {
	f := newFake()
	m := New(f, Options{Now: func() time.Time { return testStart },
		Keys: map[string][]string{"quit": {"ctrl+q"}, "help": {"f2"}, "next_pane": {"ctrl+l", "tab"}}})
	defer m.Close()
	m.Update(tea.WindowSizeMsg{Width: 160, Height: 50})
	m.Update(tea.KeyMsg{Type: tea.KeyF2})
	if m.m.overlay != "help" {
		t.Fatal("f2 (rebound help) did not open the help")
	}
	content := strings.Join(m.m.helpLines(150), "\n")
	for _, want := range []string{"ctrl+q", "quit", "f2", "ctrl+l/tab", "next pane"} {
		if !strings.Contains(content, want) {
			t.Errorf("help lacks %q:\n%s", want, content)
		}
	}
	m.Update(tea.KeyMsg{Type: tea.KeyEsc})
	if _, cmd := m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("q")}); m.m.quitting || isQuit(cmd) {
		t.Error("q still quits after quit was rebound to ctrl+q")
	}
	if _, cmd := m.Update(tea.KeyMsg{Type: tea.KeyCtrlQ}); !m.m.quitting && !isQuit(cmd) {
		t.Error("ctrl+q does not quit")
	}
}

func isQuit(cmd tea.Cmd) bool {
	if cmd == nil {
		return false
	}
	_, ok := cmd().(tea.QuitMsg)
	return ok
}

func TestCheckKeys(t *testing.T) {
	if err := CheckKeys(map[string][]string{"quit": {"ctrl+q"}, "store_fetch": {"F"}}); err != nil {
		t.Fatal(err)
	}
	if err := CheckKeys(map[string][]string{"explode": {"x"}}); err == nil || !strings.Contains(err.Error(), `"explode"`) {
		t.Errorf("unknown action: %v", err)
	}
	if err := CheckKeys(map[string][]string{"quit": {}}); err == nil {
		t.Error("an empty key list was accepted")
	}
	if len(KeyActions()) < 30 {
		t.Errorf("KeyActions = %v", KeyActions())
	}
}
