package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/chaski-dev/chaski/chaski"
	"github.com/chaski-dev/chaski/chaski/wire"
)

func newSendCmd() (*command, runner) {
	c := newCommand("send", "[flags] TOPIC FILE [FILE ...]",
		"Send files to the connected peers that subscribe to TOPIC and accept files.",
		`Progress is shown on stderr when it is a terminal. Exits 0 only when every
receiving peer has confirmed each file with a matching SHA-256; exits 2 when
no connected peer subscribes to TOPIC and accepts files. Files go only to
direct neighbours, not through a root or another relay: --connect the
receiver itself, or add --discover to pair with a receiver that is paired
for TOPIC (started with --discover). With --json, one {"event":"file_sent",...}
object per confirmed transfer.`)
	o := addNodeFlags(c, true)
	progress := c.fs.Bool("progress", true, "show a progress bar on stderr when it is a terminal")
	return c, func(ctx context.Context, e *env, pos []string) error {
		if len(pos) < 2 {
			return usageErrorf("send needs a TOPIC and at least one FILE (see 'chaski help send')")
		}
		return runSend(ctx, e, o, pos[0], pos[1:], *progress && e.stderrTTY)
	}
}

func runSend(ctx context.Context, e *env, o *nodeOpts, topic string, files []string, showProgress bool) (err error) {
	if !wire.ValidName(topic, wire.MaxTopicLen) {
		return usageErrorf("invalid topic %q (1-%d printable bytes)", topic, wire.MaxTopicLen)
	}
	if len(o.connect) == 0 {
		return usageErrorf("send needs --connect ADDR to reach the network")
	}
	for i, f := range files {
		abs, err := filepath.Abs(f)
		if err != nil {
			return err
		}
		st, err := os.Stat(abs)
		if err != nil {
			return fmt.Errorf("cannot read %s: %s", f, describeFileErr(err))
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file", f)
		}
		files[i] = abs
	}
	setup := nodeSetup{}
	if o.discover {
		// Discovery looks for peers of the node's own subscriptions.
		setup.subs = []string{topic}
	}
	n, err := o.start(ctx, e, setup)
	if err != nil {
		return err
	}
	defer closeNode(n, &err)
	edges, err := n.connectAll(ctx, o.connect)
	if err != nil {
		return err
	}
	if o.discover {
		err := n.Discover(ctx, chaski.DiscoverOptions{Topics: []string{topic}, OnPair: chaski.OnPair(o.onPair), Timeout: o.discoverTimeout})
		if err != nil && ctx.Err() == nil {
			return fmt.Errorf("discovery for topic %q failed: %s", topic, cleanErr(err))
		}
	}
	out := newPrinter(e.stdout)
	errOut := newPrinter(e.stderr)
	failed := 0
	for _, path := range files {
		infos, err := pushFile(ctx, n, topic, path, errOut, showProgress)
		if err != nil && len(infos) == 0 {
			switch {
			case ctx.Err() != nil:
				return fmt.Errorf("interrupted while sending %s", filepath.Base(path))
			case errors.Is(err, chaski.ErrNoSubscribers):
				return withCode(2, noReceiver(topic, edges, o.discover))
			case errors.Is(err, chaski.ErrRefused):
				return withCode(2, fmt.Errorf("no connected subscriber of topic %q accepts files (a receiver runs with --accept-files, or accepts the offer in its dashboard)", topic))
			}
			return fmt.Errorf("cannot send %s: %s", filepath.Base(path), cleanErr(err))
		}
		before := failed
		for _, t := range infos {
			if t.State == chaski.TransferDone {
				if o.json {
					out.json(event("file_sent").add("topic", t.Topic).add("to", t.Peer).add("path", path).
						add("size", t.Size).add("sha256", t.SHA256).add("transfer_id", t.ID))
				} else {
					errOut.linef("sent %s to %s (%d bytes, sha256 %s)", filepath.Base(path), t.Peer, t.Size, t.SHA256)
				}
				continue
			}
			failed++
			reason := t.Err
			if reason == "" {
				reason = t.State.String()
			}
			if o.json {
				out.json(event("file_failed").add("topic", t.Topic).add("to", t.Peer).add("path", path).
					add("transfer_id", t.ID).add("state", t.State.String()).add("error", reason))
			} else {
				errOut.linef("chaski: sending %s to %s failed: %s", filepath.Base(path), t.Peer, reason)
			}
		}
		if err != nil && failed == before {
			return fmt.Errorf("cannot send %s: %s", filepath.Base(path), cleanErr(err))
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d transfer(s) were not confirmed", failed)
	}
	return nil
}

// noReceiver explains why a file found nobody to go to: files go only to
// directly connected peers that subscribe to the topic, never through a
// root or another relay; discovery can connect the sender to a receiver
// that is paired for the topic.
func noReceiver(topic string, edges []chaski.EdgeInfo, discovered bool) error {
	var roots []string
	for _, e := range edges {
		if e.Root {
			roots = append(roots, e.Name)
		}
	}
	via := ""
	if len(roots) > 0 {
		via = fmt.Sprintf(", not through a root (%s)", joinComma(roots))
	}
	if discovered {
		return fmt.Errorf("discovery found no peer that subscribes to topic %q: files go only to direct neighbours%s, and discovery finds only a receiver paired for the topic (one started with --discover), so connect to the receiver itself (--connect ITS-ADDRESS)", topic, via)
	}
	return fmt.Errorf("no directly connected peer subscribes to topic %q: files go only to direct neighbours%s, so connect to the receiver itself (--connect ITS-ADDRESS) or add --discover to pair with it (it must be paired for the topic too)", topic, via)
}

// pushFile sends one file to every receiver and returns one TransferInfo
// per receiver; the progress bar follows the node's transfer events.
func pushFile(ctx context.Context, n *runningNode, topic, path string, errOut *printer, showProgress bool) ([]chaski.TransferInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %s", path, describeFileErr(err))
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	name := filepath.Base(path)
	type result struct {
		infos []chaski.TransferInfo
		err   error
	}
	var events <-chan chaski.Event
	stop := func() {}
	if showProgress {
		events, stop = n.Watch(4096)
	}
	defer stop()
	done := make(chan result, 1)
	go func() {
		infos, err := n.PushFile(ctx, topic, f, name, st.Size(), nil)
		done <- result{infos, err}
	}()
	tracked := map[string]chaski.TransferInfo{}
	drawn := false
	var lastDraw time.Time
	for {
		select {
		case r := <-done:
			if drawn {
				errOut.raw([]byte("\r\033[K"))
				errOut.flush()
			}
			return r.infos, r.err
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			te, isT := ev.(*chaski.TransferEvent)
			if !isT || !te.Transfer.Outgoing || te.Transfer.Topic != topic || te.Transfer.Name != name {
				continue
			}
			tracked[te.Transfer.ID] = te.Transfer
			if time.Since(lastDraw) >= 100*time.Millisecond {
				lastDraw = time.Now()
				drawn = true
				errOut.raw([]byte("\r\033[K" + progressLine(name, tracked)))
				errOut.flush()
			}
		}
	}
}

// progressLine renders "name [=====>    ]  45%  12.3 MB/s  2 peers".
func progressLine(name string, ts map[string]chaski.TransferInfo) string {
	var done, size int64
	var rate float64
	for _, t := range ts {
		done += t.Done
		if t.Size > 0 {
			size += t.Size
		}
		rate += t.Rate
	}
	pct := 0.0
	if size > 0 {
		pct = float64(done) / float64(size)
	}
	if pct > 1 {
		pct = 1
	}
	const width = 30
	fill := int(pct * width)
	bar := strings.Repeat("=", fill)
	if fill < width {
		bar += ">" + strings.Repeat(" ", width-fill-1)
	}
	if len(name) > 30 {
		name = name[:27] + "..."
	}
	return fmt.Sprintf("%s [%s] %3.0f%%  %.1f MB/s  %d peer(s)", name, bar, pct*100, rate/1e6, len(ts))
}

func describeFileErr(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
