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
	c := newCommand("send", "[flags] TOPIC FILE|DIR [FILE|DIR ...]",
		"Send files (or whole directories) to the connected peers that subscribe to TOPIC and accept files.",
		`Progress is shown on stderr when it is a terminal. Exits 0 only when every
receiving peer has confirmed each file with a matching hash: BLAKE3 by
default, every chunk checked as it arrives (--hash sha256: SHA-256, checked
at the end). A DIR sends every regular file under it, one after the other,
under its path from DIR's name on ("photos/2024/a.jpg"), with one progress
for the whole and a verdict per file; links out of DIR are not sent. A
repeated send resumes each interrupted file, and a file sent before and
unchanged since is not hashed again (its tree is kept in <data-dir>/trees;
receivers check every chunk either way). Exits 2 when
no connected peer subscribes to TOPIC and accepts files. Files go only to
direct neighbours, not through a root or another relay: --connect the
receiver itself, or add --discover to pair with a receiver that is paired
for TOPIC (started with --discover). With --json, one {"event":"file_sent",...}
object per confirmed transfer (and {"event":"file_failed",...} per failed one).`)
	o := addNodeFlags(c, true)
	progress := c.fs.Bool("progress", true, "show a progress bar on stderr when it is a terminal")
	hash := c.fs.String("hash", chaski.HashBLAKE3, "the hash that verifies the transfer: blake3 or sha256")
	c.placeholder("hash", "ALGO")
	return c, func(ctx context.Context, e *env, pos []string) error {
		if len(pos) < 2 {
			return usageErrorf("send needs a TOPIC and at least one FILE (see 'chaski help send')")
		}
		if *hash != chaski.HashBLAKE3 && *hash != chaski.HashSHA256 {
			return usageErrorf("--hash must be blake3 or sha256, not %q", *hash)
		}
		return runSend(ctx, e, o, pos[0], pos[1:], *progress && e.stderrTTY, *hash)
	}
}

func runSend(ctx context.Context, e *env, o *nodeOpts, topic string, files []string, showProgress bool, hash string) (err error) {
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
		if !st.Mode().IsRegular() && !st.IsDir() {
			return fmt.Errorf("%s is neither a regular file nor a directory", f)
		}
		files[i] = abs
	}
	setup := nodeSetup{fileHash: hash}
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
	report := func(path, name string, infos []chaski.TransferInfo) {
		for _, t := range infos {
			if t.State == chaski.TransferDone {
				if o.json {
					out.json(event("file_sent").add("topic", t.Topic).add("to", t.Peer).add("path", path).add("name", name).
						add("size", t.Size).add("sha256", t.SHA256).add("hash", t.Hash).add("transfer_id", t.ID))
				} else {
					errOut.linef("sent %s to %s (%d bytes, %s)", name, t.Peer, t.Size, t.Hash)
				}
				continue
			}
			failed++
			reason := t.Err
			if reason == "" {
				reason = t.State.String()
			}
			if o.json {
				out.json(event("file_failed").add("topic", t.Topic).add("to", t.Peer).add("path", path).add("name", name).
					add("transfer_id", t.ID).add("state", t.State.String()).add("error", reason))
			} else {
				errOut.linef("chaski: sending %s to %s failed: %s", name, t.Peer, reason)
			}
		}
	}
	for _, path := range files {
		if st, err := os.Stat(path); err == nil && st.IsDir() {
			res, err := sendDir(ctx, n, topic, path, errOut, showProgress)
			if err != nil && len(res) == 0 {
				if ctx.Err() != nil {
					return fmt.Errorf("interrupted while sending %s", filepath.Base(path))
				}
				return fmt.Errorf("cannot send %s: %s", filepath.Base(path), cleanErr(err))
			}
			for _, f := range res {
				if len(f.Transfers) == 0 && f.Err != nil {
					if errors.Is(f.Err, chaski.ErrNoSubscribers) {
						return withCode(2, noReceiver(topic, edges, o.discover))
					}
					failed++
					if o.json {
						out.json(event("file_failed").add("topic", topic).add("name", f.Path).add("error", cleanErr(f.Err)))
					} else {
						errOut.linef("chaski: %s not sent: %s", f.Path, cleanErr(f.Err))
					}
					continue
				}
				report(f.Local(), f.Path, f.Transfers)
			}
			continue
		}
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
		report(path, filepath.Base(path), infos)
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

// sendDir sends a directory with one progress bar for the whole.
func sendDir(ctx context.Context, n *runningNode, topic, dir string, errOut *printer, showProgress bool) ([]chaski.DirFile, error) {
	var opts chaski.DirOptions
	drawn := false
	if showProgress {
		name := filepath.Base(dir) + "/"
		opts.Progress = func(p chaski.DirProgress) {
			drawn = true
			line := fmt.Sprintf("%s %d/%d files", progressBar(name, p.Done, p.Bytes), p.FilesDone, p.Files)
			errOut.raw([]byte("\r\033[K" + line))
			errOut.flush()
		}
	}
	res, err := n.SendDir(ctx, topic, dir, opts)
	if drawn {
		errOut.raw([]byte("\r\033[K"))
		errOut.flush()
	}
	return res, err
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
	return fmt.Sprintf("%s  %.1f MB/s  %d peer(s)", progressBar(name, done, size), rate/1e6, len(ts))
}

// progressBar renders "name [=====>    ]  45%".
func progressBar(name string, done, size int64) string {
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
	return fmt.Sprintf("%s [%s] %3.0f%%", name, bar, pct*100)
}

func describeFileErr(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
