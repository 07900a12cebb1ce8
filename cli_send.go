package main

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

// fileSender is the library call 'send' needs.
//
// TODO(lib): *chaski.Node has no SendFile yet; the expected signature (as in
// tui.Backend) is SendFile(ctx, topic, path string, meta map[string]string)
// (transferID string, err error), with progress and the end of each transfer
// reported as *chaski.TransferEvent on Watch. This command picks it up as
// soon as the method exists.
type fileSender interface {
	SendFile(ctx context.Context, topic, path string, meta map[string]string) (string, error)
}

func newSendCmd() (*command, runner) {
	c := newCommand("send", "[flags] TOPIC FILE [FILE ...]",
		"Send files to the connected peers that subscribe to TOPIC and accept files.",
		`Progress is shown on stderr when it is a terminal. Exits 0 only when every
receiving peer has confirmed each file with a matching SHA-256; exits 2 when
no connected peer subscribes to TOPIC and accepts files. With --json, one
{"event":"file_sent",...} object per confirmed transfer.`)
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
	if err := o.validate(); err != nil {
		return err
	}
	if _, ok := any((*chaski.Node)(nil)).(fileSender); !ok {
		return errors.New("send is not yet available in this build (the node library has no SendFile)")
	}
	n, err := o.start(ctx, e, nodeSetup{})
	if err != nil {
		return err
	}
	defer closeNode(n, &err)
	events, stop := n.Watch(8192)
	defer stop()
	if _, err := n.connectAll(ctx, o.connect); err != nil {
		return err
	}
	receivers := 0
	for _, ed := range n.Edges() {
		if ed.State == chaski.StateUp && ed.Subscribes(topic) && ed.AcceptsFiles {
			receivers++
		}
	}
	if receivers == 0 {
		return withCode(2, fmt.Errorf("no connected peer subscribes to topic %q and accepts files", topic))
	}
	sender := any(n.Node).(fileSender)
	out := newPrinter(e.stdout)
	errOut := newPrinter(e.stderr)
	failed := 0
	for _, path := range files {
		id, err := sender.SendFile(ctx, topic, path, nil)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("interrupted")
			}
			return fmt.Errorf("cannot send %s: %s", filepath.Base(path), cleanErr(err))
		}
		results, err := awaitTransfers(ctx, events, id, topic, filepath.Base(path), errOut, showProgress)
		if err != nil {
			return err
		}
		for _, t := range results {
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
	}
	if failed > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d transfer(s) were not confirmed", failed)}
	}
	return nil
}

// awaitTransfers follows the transfers of one file (the one SendFile
// returned, and any other outgoing transfer of the same file and topic the
// library started per peer) until all have finished.
func awaitTransfers(ctx context.Context, events <-chan chaski.Event, id, topic, name string, errOut *printer, showProgress bool) ([]chaski.TransferInfo, error) {
	tracked := map[string]chaski.TransferInfo{}
	var order []string
	lastDraw := time.Time{}
	drawn := false
	defer func() {
		if drawn {
			errOut.raw([]byte("\r\033[K"))
			errOut.flush()
		}
	}()
	for {
		if len(tracked) > 0 {
			all := true
			for _, t := range tracked {
				if !t.State.Finished() {
					all = false
				}
			}
			if all {
				out := make([]chaski.TransferInfo, 0, len(order))
				for _, k := range order {
					out = append(out, tracked[k])
				}
				return out, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("interrupted while sending %s", name)
		case ev, ok := <-events:
			if !ok {
				return nil, fmt.Errorf("the node closed while sending %s", name)
			}
			te, isT := ev.(*chaski.TransferEvent)
			if !isT || !te.Transfer.Outgoing {
				continue
			}
			t := te.Transfer
			if t.ID != id && (t.Topic != topic || t.Name != name) {
				continue
			}
			if _, seen := tracked[t.ID]; !seen {
				order = append(order, t.ID)
			}
			tracked[t.ID] = t
			if showProgress && time.Since(lastDraw) > 100*time.Millisecond {
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
