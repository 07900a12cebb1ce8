package tui

import (
	"context"
	"errors"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/chaski-dev/chaski/theme"
)

// Run shows the dashboard on the terminal until the user quits or ctx is
// cancelled. It uses the alternate screen; bracketed paste is on (dropped
// files arrive as pastes); the mouse is captured only with opts.Mouse,
// because capturing it breaks the terminal's own text selection.
func Run(ctx context.Context, b Backend, opts Options) error {
	if _, err := theme.Load(opts.Theme); err != nil {
		return err
	}
	m := New(b, opts)
	defer m.Close()
	popts := []tea.ProgramOption{tea.WithAltScreen(), tea.WithContext(ctx)}
	if opts.Mouse {
		popts = append(popts, tea.WithMouseCellMotion())
	}
	_, err := tea.NewProgram(m, popts...).Run()
	if err != nil && errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil {
		return nil // cancelled by the caller: a normal way to stop
	}
	return err
}
