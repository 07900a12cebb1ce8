package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/chaski-dev/chaski/chaski"
	"github.com/chaski-dev/chaski/chaski/wire"
)

func newPubCmd() (*command, runner) {
	c := newCommand("pub", "[flags] TOPIC [MESSAGE ...]",
		"Join the network through --connect and publish on TOPIC: one message (the MESSAGE words joined by single spaces), or with no MESSAGE one message per line of stdin.",
		`Exits 0 once every message has been written to the peers and the
connections are closed cleanly; exits 2 when no connected peer subscribes to
TOPIC or is a root node. --count N --size B publishes N generated messages of
B bytes each (load generation) and prints a summary on stderr (a "published"
event on stdout with --json).`)
	o := addNodeFlags(c, true)
	count := c.intFlag("count", 0, "N", "publish N messages: generated payloads of --size bytes, or MESSAGE N times")
	size := c.intFlag("size", 100, "B", "bytes per generated message (with --count and no MESSAGE)")
	return c, func(ctx context.Context, e *env, pos []string) error {
		return runPub(ctx, e, o, pos, *count, *size)
	}
}

// pubSource yields the messages to publish; ok=false at the end.
type pubSource func() (data []byte, ok bool, err error)

func runPub(ctx context.Context, e *env, o *nodeOpts, pos []string, count, size int) (err error) {
	if len(pos) == 0 {
		return usageErrorf("pub needs a TOPIC (see 'chaski help pub')")
	}
	topic := pos[0]
	if !wire.ValidName(topic, wire.MaxTopicLen) {
		return usageErrorf("invalid topic %q (1-%d printable bytes)", topic, wire.MaxTopicLen)
	}
	if count < 0 || size < 0 {
		return usageErrorf("--count and --size must not be negative")
	}
	if len(o.connect) == 0 {
		return usageErrorf("pub needs --connect ADDR to reach the network")
	}
	var src pubSource
	load := false
	switch {
	case len(pos) > 1:
		msg := []byte(strings.Join(pos[1:], " "))
		n := count
		if n == 0 {
			n = 1
		}
		i := 0
		src = func() ([]byte, bool, error) {
			if i >= n {
				return nil, false, nil
			}
			i++
			return msg, true, nil
		}
		load = count > 0
	case count > 0:
		i := 0
		src = func() ([]byte, bool, error) {
			if i >= count {
				return nil, false, nil
			}
			i++
			return genPayload(i, size), true, nil
		}
		load = true
	default:
		src = lineSource(e.stdin)
	}

	errOut := newPrinter(e.stderr)
	n, err := o.start(ctx, e, nodeSetup{warn: func(s string) { errOut.linef("chaski: %s", s) }})
	if err != nil {
		return err
	}
	defer closeNode(n, &err)
	if _, err := n.connectAll(ctx, o.connect); err != nil {
		return err
	}
	// Where each edge stood before publishing, to know when all is written.
	base := map[string]chaski.EdgeInfo{}
	for _, ed := range n.Edges() {
		if ed.State == chaski.StateUp {
			base[ed.PeerID] = ed
		}
	}

	var sent, payloadBytes uint64
	start := time.Now()
	for {
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted after %d messages", sent)
		}
		data, ok, serr := src()
		if serr != nil {
			return serr
		}
		if !ok {
			break
		}
		if perr := n.Publish(ctx, topic, data); perr != nil {
			if errors.Is(perr, chaski.ErrNoSubscribers) {
				return withCode(2, fmt.Errorf("no connected peer subscribes to topic %q or is a root node", topic))
			}
			if ctx.Err() != nil {
				return fmt.Errorf("interrupted after %d messages", sent)
			}
			return perr
		}
		sent++
		payloadBytes += uint64(len(data))
	}
	if err := waitWritten(ctx, n, base, sent); err != nil {
		return err
	}
	elapsed := time.Since(start)
	if load {
		rate := float64(sent) / elapsed.Seconds()
		if o.json {
			out := newPrinter(e.stdout)
			out.json(event("published").add("topic", topic).add("count", sent).add("bytes", payloadBytes).
				add("seconds", elapsed.Seconds()).add("msgs_per_sec", rate).
				add("mb_per_sec", float64(payloadBytes)/1e6/elapsed.Seconds()))
		} else {
			errOut.linef("published %d messages (%d bytes) on %q in %v: %.0f msg/s, %.2f MB/s",
				sent, payloadBytes, topic, elapsed.Round(time.Millisecond), rate, float64(payloadBytes)/1e6/elapsed.Seconds())
		}
	}
	return nil
}

// genPayload makes the i-th generated message: readable ASCII of exactly
// size bytes that starts with its sequence number.
func genPayload(i, size int) []byte {
	b := make([]byte, size)
	head := fmt.Sprintf("%d ", i)
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	for j := range b {
		if j < len(head) {
			b[j] = head[j]
		} else {
			b[j] = alphabet[(i+j)%len(alphabet)]
		}
	}
	return b
}

// lineSource yields the lines of r without their line endings.
func lineSource(r io.Reader) pubSource {
	br := bufio.NewReaderSize(r, 64<<10)
	return func() ([]byte, bool, error) {
		line, err := br.ReadBytes('\n')
		if len(line) == 0 && err != nil {
			if err == io.EOF {
				return nil, false, nil
			}
			return nil, false, fmt.Errorf("cannot read stdin: %w", err)
		}
		line = trimEOL(line)
		return line, true, nil
	}
}

func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}

// waitWritten waits until every edge that was given messages has written
// them to its socket (Node.Flush), and fails if one of those edges was lost
// meanwhile: what it still held is gone. A peer that stops reading is
// dropped by the node after its write timeout, so this cannot hang.
func waitWritten(ctx context.Context, n *runningNode, base map[string]chaski.EdgeInfo, sent uint64) error {
	if sent == 0 {
		return nil
	}
	if err := n.Flush(ctx); err != nil {
		return fmt.Errorf("interrupted before every message was written")
	}
	for _, b := range base {
		ed, ok := n.Edge(b.PeerID)
		if !ok || !ed.Since.Equal(b.Since) {
			return fmt.Errorf("the connection to %s (%s) was lost before every message was written", b.Name, b.Address)
		}
	}
	return nil
}
