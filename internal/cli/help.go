package cli

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version is set at build time with -ldflags
// "-X github.com/chaski-dev/chaski/internal/cli.version=v1.2.3"; when
// empty, the module version or VCS revision recorded by the Go tool is used.
var version = ""

func versionString() string {
	v := version
	rev, modified := "", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if v == "" {
		v = "devel"
	}
	out := "chaski " + v
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if modified {
			rev += "+dirty"
		}
		out += " (" + rev + ")"
	}
	return out + " " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
}

func newVersionCmd() (*command, runner) {
	c := newCommand("version", "", "Print the version of chaski, the Go release it was built with, and the platform.", "")
	return c, func(ctx context.Context, e *env, pos []string) error {
		if len(pos) > 0 {
			return usageErrorf("version takes no arguments")
		}
		return cmdVersion(nil, e)
	}
}

func cmdVersion(_ []string, e *env) error {
	fmt.Fprintln(e.stdout, versionString())
	return nil
}

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
		return usageErrorf("unknown command %q (see 'chaski help')", args[0])
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
