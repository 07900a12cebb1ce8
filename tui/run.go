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
	// Bubble Tea's own SIGINT/SIGTERM handler can block for ever sending
	// its quit message when the caller's context (signal.NotifyContext in
	// main) ended the program first: the process then hung on SIGTERM. Our
	// handler asks the program to quit without blocking.
	popts := []tea.ProgramOption{tea.WithAltScreen(), tea.WithContext(ctx), tea.WithoutSignalHandler()}
	if opts.Mouse {
		popts = append(popts, tea.WithMouseCellMotion())
	}
	p := tea.NewProgram(m, popts...)
	stopCont := restoreOnContinue(p, m)
	defer stopCont()
	stopQuit := quitOnSignal(p)
	defer stopQuit()
	// The model's readers end with the caller's context too.
	stopClose := context.AfterFunc(ctx, m.Close)
	defer stopClose()
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

// quitOnSignal ends the program on SIGINT (when the terminal is not in raw
// mode) and SIGTERM.
func quitOnSignal(p *tea.Program) func() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case <-done:
		case <-ch:
			go p.Quit() // Send gives up once the program has ended
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
	}
}
