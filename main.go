// Command chaski is a peer-to-peer messaging node with a terminal dashboard.
// 'chaski help' lists its subcommands and 'chaski help COMMAND' a command's
// flags; README.md has the command table and /docs/ARCHITECTURE.md the map
// of the code, which lives in internal/cli.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/chaski-dev/chaski/internal/cli"
)

// gcPercent is the collector's target for the chaski command when GOGC is
// not set. A node's live heap is small (a few MiB) while a message stream
// allocates hundreds of MB/s of bodies and Message structs, so with Go's
// default of 100 the collector would run every ~4 MB, several hundred times
// a second, and cost a subscriber a fifth of its time. At 400 it runs a
// quarter as often: +25–50% messages/s between processes for 10–30 MiB
// more resident memory under full load (docs/PERFORMANCE.md). The library
// leaves the setting to its host program; GOGC and GOMEMLIMIT override.
const gcPercent = 400

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// A second signal while shutting down kills the process the usual way.
		<-ctx.Done()
		stop()
	}()
	os.Exit(cli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
