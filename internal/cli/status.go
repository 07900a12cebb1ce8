package cli

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/chaski-dev/chaski/chaski"
	"github.com/chaski-dev/chaski/internal/control"
)

func newStatusCmd() (*command, runner) {
	c := newCommand("status", "[flags] [ADDR]",
		"Ask the node at ADDR for its status over UDP, or without ADDR the node running with --data-dir on this machine (through its control socket), and print it as one JSON object.",
		`The object has at least name, address, paired (each subscription → true or
false), serving, reconnecting and edges (the number of live edges). Exits 1
when no answer arrives within --timeout, or when no node runs with the data
dir.`)
	dataDir := c.fs.String("data-dir", "", "without ADDR: the data dir of the local node (default $XDG_DATA_HOME/chaski, else ~/.local/share/chaski)")
	c.placeholder("data-dir", "DIR")
	c.nodeFlag["data-dir"] = true // the config file's data_dir applies here too
	timeout := c.fs.Duration("timeout", 2*time.Second, "how long to wait for the answer")
	c.placeholder("timeout", "DUR")
	c.fs.Bool("json", true, "print JSON (always on; accepted for symmetry with the other commands)")
	return c, func(ctx context.Context, e *env, pos []string) error {
		if len(pos) > 1 {
			return usageErrorf("status takes one ADDR at most (see 'chaski help status')")
		}
		if *timeout <= 0 {
			return usageErrorf("--timeout must be positive")
		}
		if len(pos) == 0 {
			return runLocalStatus(ctx, e, *dataDir, *timeout)
		}
		return runStatus(ctx, e, pos[0], *timeout)
	}
}

func runStatus(ctx context.Context, e *env, target string, timeout time.Duration) error {
	addr, err := chaski.ParseAddr(target)
	if err != nil {
		return withCode(2, err)
	}
	qctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	st, err := chaski.QueryStatus(qctx, addr)
	if err != nil {
		if errors.Is(err, chaski.ErrTimeout) || qctx.Err() != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("interrupted while waiting for %s", addr)
			}
			return fmt.Errorf("no answer from %s within %v", addr, timeout)
		}
		return err
	}
	printStatus(e, st)
	return nil
}

// runLocalStatus asks the node running with dir through its control socket.
func runLocalStatus(ctx context.Context, e *env, dir string, timeout time.Duration) error {
	if dir == "" {
		dir = defaultDataDir()
	}
	qctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := control.Dial(qctx, control.SocketPath(dir))
	if err != nil {
		if errors.Is(err, control.ErrNoNode) {
			return fmt.Errorf("no chaski node runs with the data dir %s (nothing answers on %s); give ADDR to ask a node over UDP", dir, control.SocketPath(dir))
		}
		return err
	}
	st, err := c.Status(qctx)
	if err != nil {
		return err
	}
	printStatus(e, st)
	return nil
}

// printStatus prints a status as the one JSON object of 'chaski status'.
func printStatus(e *env, st chaski.Status) {
	subs := make([]string, 0, len(st.Paired))
	for t := range st.Paired {
		subs = append(subs, t)
	}
	sort.Strings(subs)
	o := event("status").add("name", st.Name).add("address", st.Address).add("paired", st.Paired).
		add("serving", st.Serving).add("reconnecting", st.Reconnecting).add("edges", st.Edges).
		add("root", st.Root).add("tls", st.TLS).add("subscriptions", subs).add("all_paired", st.AllPaired()).
		add("accepts_files", st.AcceptsFiles)
	if len(st.Extra) > 0 {
		o = o.add("extra", st.Extra) // the node's own fields (chaski.Config.StatusFields)
	}
	if st.PairedOmitted {
		// Too many subscriptions for a datagram: "paired" and
		// "subscriptions" are empty because they are unknown.
		o = o.add("paired_omitted", true)
	}
	// Signatures (docs/SECURITY.md), when set: only the control socket's
	// status carries them, the UDP answer stays as small as it was.
	if st.Signing {
		o = o.add("signing", true)
	}
	if st.RequireSignatures {
		o = o.add("require_signatures", true)
	}
	if st.Unsigned > 0 {
		o = o.add("unsigned_dropped", st.Unsigned)
	}
	if st.BadSignatures > 0 {
		o = o.add("bad_signatures", st.BadSignatures)
	}
	if f := natsStatusJSON(st.Extra); f != nil {
		o = o.add("nats", f)
	}
	newPrinter(e.stdout).json(o)
}
