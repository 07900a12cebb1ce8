package cli

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/chaski-dev/chaski/chaski"
)

func newStatusCmd() (*command, runner) {
	c := newCommand("status", "[flags] ADDR",
		"Ask the node at ADDR for its status over UDP and print it as one JSON object.",
		`The object has at least name, address, paired (each subscription → true or
false), serving, reconnecting and edges (the number of live edges). Exits 1
when no answer arrives within --timeout.`)
	timeout := c.fs.Duration("timeout", 2*time.Second, "how long to wait for the answer")
	c.placeholder("timeout", "DUR")
	c.fs.Bool("json", true, "print JSON (always on; accepted for symmetry with the other commands)")
	return c, func(ctx context.Context, e *env, pos []string) error {
		if len(pos) != 1 {
			return usageErrorf("status needs exactly one ADDR (see 'chaski help status')")
		}
		if *timeout <= 0 {
			return usageErrorf("--timeout must be positive")
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
	subs := make([]string, 0, len(st.Paired))
	for t := range st.Paired {
		subs = append(subs, t)
	}
	sort.Strings(subs)
	o := event("status").add("name", st.Name).add("address", st.Address).add("paired", st.Paired).
		add("serving", st.Serving).add("reconnecting", st.Reconnecting).add("edges", st.Edges).
		add("root", st.Root).add("tls", st.TLS).add("subscriptions", subs).add("all_paired", st.AllPaired())
	newPrinter(e.stdout).json(o)
	return nil
}
