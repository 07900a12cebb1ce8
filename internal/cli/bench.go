package cli

import (
	"context"
	"errors"
	"os"
	"strings"

	"github.com/chaski-dev/chaski/internal/bench"
)

// newBenchCmd is 'chaski bench': flags only; internal/bench does the work.
func newBenchCmd() (*command, runner) {
	c := newCommand("bench", "[flags]",
		"Measure messages/s, ping round trips or file throughput between two nodes on 127.0.0.1.",
		`Modes:
  messages  a publisher publishes --count messages of --size bytes on one
            topic; the subscriber counts every one of them and the rate is
            taken at the subscriber, from the first message to the last.
            Latency is publish → delivery (wall clock, same machine), under
            full load, so it includes queueing.
  ping      --count pings of --size bytes on the wire (header included),
            round trips measured by the node (the first tenth warms up).
  files     a file of --file-size random bytes is pushed to a receiver that
            accepts files; both sides verify SHA-256.
By default each side is a separate process (this binary, re-executed);
--inprocess runs both in this process and --via-root (messages) puts a
root relay process between them. Every process reports its peak RSS
(VmHWM). Progress goes to stderr; with --json the result is one JSON object
on stdout.`)
	o := &bench.Options{}
	c.fs.StringVar(&o.Mode, "mode", "messages", strings.Join(bench.Modes[:len(bench.Modes)-1], ", ")+" or "+bench.Modes[len(bench.Modes)-1])
	c.placeholder("mode", "MODE")
	c.fs.IntVar(&o.Count, "count", 0, "messages or pings (default 1000000 messages, 20000 pings)")
	c.placeholder("count", "N")
	c.fs.IntVar(&o.Size, "size", 0, "payload bytes per message (default 100), bytes per ping frame (default 64)")
	c.placeholder("size", "BYTES")
	fileSize := c.fs.String("file-size", "1GiB", "bytes of the file in files mode (suffixes KiB, MiB, GiB)")
	c.placeholder("file-size", "SIZE")
	c.fs.BoolVar(&o.InProcess, "inprocess", false, "run every node in this process")
	c.fs.BoolVar(&o.ViaRoot, "via-root", false, "route through a root relay node")
	c.fs.BoolVar(&o.JSON, "json", false, "print the result as one JSON object")
	c.fs.BoolVar(&o.Quiet, "quiet", false, "no progress on stderr")
	c.fs.StringVar(&o.Dir, "dir", "", "directory for the files of files mode (default the system temp dir)")
	c.fs.StringVar(&o.Hash, "hash", "blake3", "files mode: the transfer hash, blake3 or sha256")
	c.placeholder("dir", "DIR")
	if os.Getenv(bench.ChildEnv) != "" {
		c.fs.StringVar(&o.Role, "role", "", "internal")
		c.fs.StringVar(&o.Peer, "peer", "", "internal")
	}
	return c, func(ctx context.Context, e *env, pos []string) error {
		if len(pos) > 0 {
			return usageErrorf("bench takes no arguments, got %q (see 'chaski help bench')", pos[0])
		}
		fs, err := bench.ParseByteSize(*fileSize)
		if err != nil || fs <= 0 {
			return usageErrorf("--file-size: %q is not a positive size", *fileSize)
		}
		o.FileSize = fs
		if err := o.Check(); err != nil {
			return usageErrorf("%s", strings.TrimPrefix(err.Error(), bench.ErrUsage.Error()+": "))
		}
		if o.Dir == "" {
			o.Dir = os.TempDir()
		}
		bio := bench.IO{Stdin: e.stdin, Stdout: e.stdout, Stderr: e.stderr, StderrTTY: e.stderrTTY}
		if o.Role != "" {
			return withCode(1, bench.Child(ctx, bio, o))
		}
		err = bench.Run(ctx, bio, o)
		if errors.Is(err, bench.ErrUsage) {
			return withCode(2, err)
		}
		return withCode(1, err)
	}
}
