package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/chaski-dev/chaski/chaski/wire"
)

func newSubCmd() (*command, runner) {
	c := newCommand("sub", "[flags] TOPIC [TOPIC ...]",
		"Join the network through --connect (or only listen) subscribed to the TOPICs, and print each message's payload followed by a newline.",
		`With --json, one {"event":"message","topic":...,"from":...,"data":...} object
per line instead (payloads that are not UTF-8 are base64 with
"encoding":"base64"). Without --connect, the listening address is printed
on stderr (as a first "listening" line with --json) so that peers can connect.`)
	o := addNodeFlags(c, true)
	count := c.intFlag("count", 0, "N", "exit 0 after N messages (0: run until interrupted)")
	timeout := c.durationFlag("timeout", 0, "DUR", "exit 1 if the --count messages have not all arrived within DUR (without --count: stop after DUR, exit 0)")
	return c, func(ctx context.Context, e *env, pos []string) error {
		return runSub(ctx, e, o, pos, *count, *timeout)
	}
}

func runSub(ctx context.Context, e *env, o *nodeOpts, pos []string, count int, timeout time.Duration) (err error) {
	topics := dedupe(append(append([]string(nil), pos...), o.subs...))
	if len(topics) == 0 && !o.root {
		return usageErrorf("sub needs at least one TOPIC (see 'chaski help sub')")
	}
	for _, t := range topics {
		if !wire.ValidName(t, wire.MaxTopicLen) {
			return usageErrorf("invalid topic %q (1-%d printable bytes)", t, wire.MaxTopicLen)
		}
	}
	if count < 0 || timeout < 0 {
		return usageErrorf("--count and --timeout must not be negative")
	}
	var deadline <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		deadline = t.C
	}
	out := newPrinter(e.stdout)
	errOut := newPrinter(e.stderr)
	warn := func(s string) { errOut.linef("chaski: %s", s) }
	n, err := o.start(ctx, e, nodeSetup{subs: pos, deliverAll: o.root && len(topics) == 0, warn: warn})
	if err != nil {
		return err
	}
	defer closeNode(n, &err)
	if len(o.connect) == 0 {
		if o.json {
			out.json(event("listening").add("address", n.Addr()).add("name", n.Name()).
				add("subscriptions", nonNil(n.Subscriptions())))
		} else {
			warn(fmt.Sprintf("%s listening on %s, subscribed to %s", n.Name(), n.Addr(), joinComma(topics)))
		}
	}
	if err := n.join(ctx, o, warn); err != nil || ctx.Err() != nil {
		return err
	}
	got := 0
	msgs := n.Messages()
	nl := []byte{'\n'}
	for count == 0 || got < count {
		select {
		case m, ok := <-msgs:
			if !ok {
				out.flush()
				return fmt.Errorf("the node closed")
			}
			got++
			if o.json {
				out.json(messageJSON(m))
				continue
			}
			out.raw(m.Data, nl)
			if len(msgs) == 0 || (count > 0 && got == count) {
				out.flush()
			}
		case <-deadline:
			out.flush()
			if count > 0 {
				return fmt.Errorf("timeout: %d of %d messages arrived within %v", got, count, timeout)
			}
			return nil
		case <-ctx.Done():
			out.flush()
			if count > 0 {
				return fmt.Errorf("interrupted: %d of %d messages arrived", got, count)
			}
			return nil
		}
	}
	out.flush()
	return nil
}
