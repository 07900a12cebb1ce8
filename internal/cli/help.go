package cli

import (
	"context"
	"fmt"
	"io"
)

func newHelpCmd() (*command, runner) {
	c := newCommand("help", "[COMMAND]", "Show the usage of chaski, or of one command with every flag and its default.", "")
	return c, func(ctx context.Context, e *env, pos []string) error {
		return cmdHelp(pos, e)
	}
}

// cmdHelp prints the overview or one command's usage.
func cmdHelp(args []string, e *env) error {
	if len(args) == 0 {
		writeOverview(e.stdout)
		return nil
	}
	if len(args) > 1 {
		// "chaski help store get" and "chaski help ca serve" show the parent.
		args = args[:1]
	}
	s := findSpec(args[0])
	if s == nil {
		return unknownCommand(args[0])
	}
	c, _ := s.make()
	c.writeUsage(e.stdout)
	return nil
}

func writeOverview(w io.Writer) {
	fmt.Fprintf(w, `chaski: a peer-to-peer messaging node with a terminal dashboard

Usage:
  chaski [flags]                 the interactive dashboard (same as 'chaski tui')
  chaski COMMAND [flags] [ARGS]

Commands:
`)
	width := 0
	for _, s := range specs() {
		if len(s.name) > width {
			width = len(s.name)
		}
	}
	for _, s := range specs() {
		fmt.Fprintf(w, "  %-*s  %s\n", width, s.name, s.synopsis)
	}
	fmt.Fprint(w, `
Flags may stand before or after the arguments; durations use Go's syntax
(500ms, 2s, 1h). With --json, output is one JSON object per line.

Exit status: 0 on success, 1 on failure, 2 on a usage error (and for 'pub'
when no connected peer subscribes to the topic).

Run 'chaski help COMMAND' (or 'chaski COMMAND --help') for a command's flags.
`)
}
