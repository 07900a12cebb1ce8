package cli

import (
	"context"
	"sync"

	"github.com/chaski-dev/chaski/chaski"
)

func newNodeCmd() (*command, runner) {
	c := newCommand("node", "[flags]",
		"Run a headless node until SIGINT or SIGTERM, then shut down cleanly (exit 0).",
		`Without --json, events (edges, pairings, messages, files) are printed as
lines for people on stdout, warnings on stderr. With --json, the first line
is {"event":"listening","address":"HOST:PORT","name":...} with the real port
(and "metrics" and "ssh" with the real addresses of --metrics and --ssh),
then one line per event: edge_up, edge_down, edge_state, paired, discovery,
peer_subscriptions, message, file_received, bridge_up, bridge_down.
With --nats the node bridges its topics to a NATS cluster (topic T is
subject <prefix>.T, both ways); a bad URL, refused credentials or a denied
subject end it with exit status 1 (2 for a malformed URL).`)
	o := addNodeFlags(c, true)
	sv := addServeFlags(c, true)
	o.nats = addNATSFlags(c, true)
	return c, func(ctx context.Context, e *env, pos []string) error {
		if len(pos) > 0 {
			return usageErrorf("node takes no arguments, got %q (see 'chaski help node')", pos[0])
		}
		if err := sv.validate(); err != nil {
			return err
		}
		return runHeadless(ctx, e, o, sv)
	}
}

// runHeadless runs a node that reports its events until ctx ends.
func runHeadless(ctx context.Context, e *env, o *nodeOpts, so *serveOpts) (err error) {
	out := newPrinter(e.stdout)
	errOut := newPrinter(e.stderr)
	warn := func(s string) { errOut.linef("chaski: %s", s) }
	fileHandler := func(f chaski.FileReceived) {
		if o.json {
			out.json(fileReceivedJSON(f))
		} else {
			out.linef("file received on %q from %s: %s (%d bytes, %s)", f.Topic, f.From, f.Path, f.Size, f.Hash)
		}
	}
	n, err := o.start(ctx, e, nodeSetup{tryStore: true, fileHandler: fileHandler, warn: warn, deferLAN: true})
	if err != nil {
		return err
	}
	events, stopWatch := n.Watch(8192)
	// Nearby discovery starts once the events are watched: a node nearby
	// may connect at once, and its edge_up belongs in the output.
	if err := n.StartLAN(); err != nil {
		stopWatch()
		closeNode(n, &err)
		return err
	}
	sv, err := so.start(n.Node, o.resolvedDataDir())
	if err != nil {
		stopWatch()
		closeNode(n, &err)
		return err
	}
	if _, err := o.nats.start(ctx, n.Node); err != nil {
		sv.stop()
		stopWatch()
		closeNode(n, &err)
		return err
	}

	if o.json {
		ev := event("listening").add("address", n.Addr()).add("name", n.Name()).
			add("id", n.ID()).add("root", n.IsRoot()).add("subscriptions", nonNil(n.Subscriptions())).
			add("tls", n.TLS())
		if sv.metrics != nil {
			ev = ev.add("metrics", sv.metrics.Addr())
		}
		if sv.ssh != nil {
			ev = ev.add("ssh", sv.ssh.Addr())
		}
		out.json(ev)
	} else {
		what := ""
		if n.IsRoot() {
			what = " (root)"
		}
		out.linef("%s listening on %s%s", n.Name(), n.Addr(), what)
		if sv.metrics != nil {
			out.linef("metrics at http://%s/metrics", sv.metrics.Addr())
		}
		if sv.ssh != nil {
			out.linef("dashboard over ssh on %s", sv.ssh.Addr())
		}
	}

	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for ev := range events {
			print1(o, out, ev)
		}
	}()
	go func() {
		defer wg.Done()
		for m := range n.Messages() {
			if o.json {
				out.json(messageJSON(m))
			} else {
				out.linef("%s", messageText(m))
			}
		}
	}()
	defer func() {
		// Close the bridge and the node first (that closes the event and
		// message channels), then let the printers drain.
		o.nats.stop()
		closeNode(n, &err)
		stopWatch()
		wg.Wait()
	}()
	// SSH viewers and the metrics server go before the node.
	defer sv.stop()

	if err := n.join(ctx, o, warn); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case ferr := <-o.nats.fatal():
		return natsErr(ferr)
	}
	return nil
}

// print1 prints one event as JSON or text.
func print1(o *nodeOpts, out *printer, ev chaski.Event) {
	if o.json {
		if j := eventJSON(ev); j != nil {
			out.json(j)
		}
	} else if s := eventText(ev); s != "" {
		out.linef("%s", s)
	}
}
