package cli

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/chaski-dev/chaski/chaski"
	"github.com/chaski-dev/chaski/chaski/wire"
)

func newPingCmd() (*command, runner) {
	c := newCommand("ping", "[flags] ADDR",
		"Connect to the node at ADDR and ping it like ping(8): one line per reply, then the statistics.",
		`Each ping carries -s bytes of padding that the peer echoes; the size shown
per reply is the padding plus the 8-byte frame header, as ping(8) adds the
ICMP header. The last two lines are
  N packets transmitted, M received, X% packet loss
  rtt min/avg/max/mdev = a/b/c/d ms
Exits 0 when at least one reply arrived. With --json: ping_reply,
ping_timeout and ping_summary objects instead.`)
	o := addNodeFlags(c, false)
	count := c.fs.Int("c", 0, "stop after N pings (0: until interrupted)")
	c.placeholder("c", "N")
	interval := c.fs.Duration("i", time.Second, "wait DUR between pings")
	c.placeholder("i", "DUR")
	size := c.fs.Int("s", 56, "padding bytes per ping")
	c.placeholder("s", "BYTES")
	wait := c.fs.Duration("W", 2*time.Second, "how long to wait for each reply")
	c.placeholder("W", "DUR")
	return c, func(ctx context.Context, e *env, pos []string) error {
		if len(pos) != 1 {
			return usageErrorf("ping needs exactly one ADDR (see 'chaski help ping')")
		}
		if *count < 0 || *size < 0 || *interval < 0 || *wait <= 0 {
			return usageErrorf("-c, -s and -i must not be negative, -W must be positive")
		}
		return runPing(ctx, e, o, pos[0], *count, *interval, *size, *wait)
	}
}

type pingStats struct {
	sent, received int
	min, max       time.Duration
	sum, sumSq     float64 // milliseconds
}

func (s *pingStats) add(rtt time.Duration) {
	s.received++
	if s.received == 1 || rtt < s.min {
		s.min = rtt
	}
	if rtt > s.max {
		s.max = rtt
	}
	ms := msf(rtt)
	s.sum += ms
	s.sumSq += ms * ms
}

func (s *pingStats) loss() float64 {
	if s.sent == 0 {
		return 0
	}
	return float64(s.sent-s.received) * 100 / float64(s.sent)
}

func (s *pingStats) avgMdev() (avg, mdev float64) {
	if s.received == 0 {
		return 0, 0
	}
	avg = s.sum / float64(s.received)
	v := s.sumSq/float64(s.received) - avg*avg
	if v < 0 {
		v = 0
	}
	return avg, math.Sqrt(v)
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func runPing(ctx context.Context, e *env, o *nodeOpts, target string, count int, interval time.Duration, size int, wait time.Duration) (err error) {
	addr, err := chaski.ParseAddr(target)
	if err != nil {
		return withCode(2, err)
	}
	n, err := o.start(ctx, e, nodeSetup{})
	if err != nil {
		return err
	}
	defer closeNode(n, &err)
	edge, err := n.Connect(ctx, addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	out := newPrinter(e.stdout)
	name := edge.Name
	bytes := size + wire.HeaderLen
	if !o.json {
		out.linef("PING %s (%s): %d data bytes", name, addr, size)
	}
	var st pingStats
	next := time.Now()
	for seq := 1; count == 0 || seq <= count; seq++ {
		if seq > 1 {
			next = next.Add(interval)
			if d := time.Until(next); d > 0 {
				t := time.NewTimer(d)
				select {
				case <-ctx.Done():
					t.Stop()
				case <-t.C:
				}
			}
		}
		if ctx.Err() != nil {
			break
		}
		st.sent++
		pctx, cancel := context.WithTimeout(ctx, wait)
		rtt, perr := n.Ping(pctx, edge.PeerID, size)
		cancel()
		if perr != nil {
			if ctx.Err() != nil {
				st.sent-- // interrupted, not lost
				break
			}
			reason := "timeout"
			if !errors.Is(perr, chaski.ErrTimeout) {
				reason = cleanErr(perr)
			}
			if o.json {
				out.json(event("ping_timeout").add("seq", seq).add("peer", name).add("address", addr).add("reason", reason))
			} else {
				out.linef("no reply from %s (%s): seq=%d (%s)", name, addr, seq, reason)
			}
			continue
		}
		st.add(rtt)
		if o.json {
			out.json(event("ping_reply").add("seq", seq).add("bytes", bytes).add("peer", name).
				add("address", addr).add("time_ms", msf(rtt)))
		} else {
			out.linef("%d bytes from %s (%s): seq=%d time=%.3f ms", bytes, name, addr, seq, msf(rtt))
		}
	}
	avg, mdev := st.avgMdev()
	if o.json {
		s := event("ping_summary").add("peer", name).add("address", addr).add("transmitted", st.sent).
			add("received", st.received).add("loss_percent", st.loss())
		if st.received > 0 {
			s = s.add("min_ms", msf(st.min)).add("avg_ms", avg).add("max_ms", msf(st.max)).add("mdev_ms", mdev)
		}
		out.json(s)
	} else {
		out.linef("")
		out.linef("--- %s (%s) ping statistics ---", name, addr)
		out.linef("%d packets transmitted, %d received, %s%% packet loss", st.sent, st.received, fmt.Sprintf("%.6g", st.loss()))
		if st.received > 0 {
			out.linef("rtt min/avg/max/mdev = %.3f/%.3f/%.3f/%.3f ms", msf(st.min), avg, msf(st.max), mdev)
		}
	}
	if st.received == 0 {
		return &exitError{code: 1}
	}
	return nil
}
