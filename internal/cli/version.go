package cli

import (
	"context"
	"fmt"
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
