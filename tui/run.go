package tui

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/chaski-dev/chaski/theme"
)

// Run shows the dashboard on the terminal until the user quits, ctx is
// cancelled or the process gets SIGTERM. It uses the alternate screen;
// bracketed paste is on (dropped files arrive as pastes); the mouse is
// captured only with opts.Mouse, because capturing it breaks the
// terminal's own text selection. Ctrl-Z suspends (fg resumes); a stop from
// outside (SIGSTOP, then SIGCONT) gets the terminal back into raw mode.
func Run(ctx context.Context, b Backend, opts Options) error {
	if _, err := theme.New(opts.Theme, opts.Renderer); err != nil {
		return err
	}
	m := New(b, opts)
	defer m.Close()
	popts := []tea.ProgramOption{tea.WithAltScreen(), tea.WithContext(ctx)}
	if opts.Mouse {
		popts = append(popts, tea.WithMouseCellMotion())
	}
	p := tea.NewProgram(m, popts...)
	stopCont := restoreOnContinue(p, m)
	defer stopCont()
	_, err := p.Run()
	if err != nil && errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil {
		return nil // cancelled by the caller: a normal way to stop
	}
	return err
}

// restoreOnContinue re-initialises the terminal when the process continues
// after a stop it did not ask for: the shell put the terminal back in
// cooked mode meanwhile. A Ctrl-Z suspend is Bubble Tea's own, which
// restores the terminal itself.
func restoreOnContinue(p *tea.Program, m Model) func() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGCONT)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-ch:
				if m.m.suspended.Load() {
					continue
				}
				if err := p.ReleaseTerminal(); err == nil {
					_ = p.RestoreTerminal()
				}
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
	}
}
