package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/chaski-dev/chaski/internal/bench/stats"
)

// child is a running role: its messages and a way to stop it.
type child struct {
	role string
	msgs chan message
	stop func()        // ask it to end
	done chan struct{} // closed when it has ended
	kill func()
}

func (b *child) end(grace time.Duration) {
	b.stop()
	select {
	case <-b.done:
	case <-time.After(grace):
		b.kill()
		<-b.done
	}
}

func readMessages(rd io.Reader, ch chan<- message, role string) {
	defer close(ch)
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var m message
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			m = message{T: "error", Err: fmt.Sprintf("%s: unreadable output %q", role, truncateStr(sc.Text(), 80))}
		}
		ch <- m
	}
}

func truncateStr(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// startChild starts a role as a process (or a goroutine).
func startChild(ctx context.Context, e IO, o *Options, role, peer string) (*child, error) {
	co := *o
	co.Role, co.Peer = role, peer
	b := &child{role: role, msgs: make(chan message, 64), done: make(chan struct{})}
	if o.InProcess {
		pr, pw := io.Pipe()
		quit := make(chan struct{})
		var once sync.Once
		rctx, cancel := context.WithCancel(ctx)
		b.stop = func() { once.Do(func() { close(quit) }) }
		b.kill = cancel
		r := &worker{o: &co, out: json.NewEncoder(pw), quit: quit}
		go readMessages(pr, b.msgs, role)
		go func() {
			defer close(b.done)
			defer cancel()
			_ = r.run(rctx)
			pw.Close()
		}()
		return b, nil
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{"bench", "--role", role, "--mode", o.Mode, "--count", strconv.Itoa(o.Count),
		"--size", strconv.Itoa(o.Size), "--file-size", strconv.FormatInt(o.FileSize, 10), "--dir", o.Dir, "--hash", o.Hash}
	if peer != "" {
		args = append(args, "--peer", peer)
	}
	cmd := exec.Command(self, args...)
	cmd.Env = append(os.Environ(), ChildEnv+"=1")
	cmd.Stderr = e.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	var once sync.Once
	b.stop = func() { once.Do(func() { stdin.Close() }) }
	b.kill = func() { _ = cmd.Process.Kill() }
	go readMessages(stdout, b.msgs, role)
	go func() {
		_ = cmd.Wait()
		close(b.done)
	}()
	// Interrupted: the children got the signal too, but make sure.
	go func() {
		select {
		case <-ctx.Done():
			b.stop()
			select {
			case <-b.done:
			case <-time.After(3 * time.Second):
				b.kill()
			}
		case <-b.done:
		}
	}()
	return b, nil
}

// parent is the view of one run from the process that started it.
type parent struct {
	ctx      context.Context
	e        IO
	o        *Options
	errMu    sync.Mutex // progress lines come from one goroutine, errors may not
	children []*child
	results  map[string]*side
	shown    bool
	lastDraw time.Time
	label    string
	total    int64
	unit     string
}

// await waits for a message of type t from c, showing progress meanwhile.
func (br *parent) await(c *child, t string) (message, error) {
	stall := time.NewTimer(stallAfter)
	defer stall.Stop()
	for {
		select {
		case m, ok := <-c.msgs:
			if !ok {
				return m, fmt.Errorf("the %s process ended before its %s", c.role, t)
			}
			switch m.T {
			case "error":
				return m, fmt.Errorf("%s: %s", c.role, m.Err)
			case "progress":
				stall.Reset(stallAfter)
				br.showProgress(m.N)
			}
			if m.T == t {
				if m.T == "result" && m.Res != nil {
					br.results[c.role] = m.Res
				}
				return m, nil
			}
		case <-stall.C:
			return message{}, fmt.Errorf("no progress from the %s for %v", c.role, stallAfter)
		case <-br.ctx.Done():
			return message{}, errors.New("interrupted")
		}
	}
}

// errf writes one line on stderr.
func (br *parent) errf(format string, args ...any) {
	br.errMu.Lock()
	defer br.errMu.Unlock()
	fmt.Fprintf(br.e.Stderr, format, args...)
}

func (br *parent) showProgress(n int64) {
	if br.o.Quiet {
		return
	}
	now := time.Now()
	tty := br.e.StderrTTY
	if !tty && now.Sub(br.lastDraw) < time.Second {
		return
	}
	br.lastDraw = now
	pct := 0.0
	if br.total > 0 {
		pct = 100 * float64(n) / float64(br.total)
	}
	line := fmt.Sprintf("bench %s: %s / %s %s (%.0f%%)", br.label, fmtCount(n), fmtCount(br.total), br.unit, pct)
	if tty {
		br.errf("\r\033[K%s", line)
		br.shown = true
	} else {
		br.errf("%s\n", line)
	}
}

func (br *parent) clearProgress() {
	if br.shown {
		br.errf("\r\033[K")
		br.shown = false
	}
}

func (br *parent) start(role, peer string) (*child, string, error) {
	c, err := startChild(br.ctx, br.e, br.o, role, peer)
	if err != nil {
		return nil, "", err
	}
	br.children = append(br.children, c)
	m, err := br.await(c, "ready")
	return c, m.Addr, err
}

func (br *parent) stopAll() {
	var wg sync.WaitGroup
	for _, c := range br.children {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.end(passiveGrace)
		}()
	}
	wg.Wait()
}

// collectPassive asks the passive children for their results (peak RSS)
// as they stop.
func (br *parent) collectPassive(cs ...*child) {
	for _, c := range cs {
		c.stop()
		if m, err := br.await(c, "result"); err == nil && m.Res != nil {
			br.results[c.role] = m.Res
		}
	}
}

// Run runs the benchmark o describes (after o.Check) and reports the result:
// lines for people on e.Stdout, or one JSON object with o.JSON.
func Run(ctx context.Context, e IO, o *Options) error {
	br := &parent{ctx: ctx, e: e, o: o, results: map[string]*side{}}
	defer br.stopAll()
	defer br.clearProgress()
	var res any
	var err error
	switch o.Mode {
	case "messages":
		res, err = br.messages()
	case "ping":
		res, err = br.ping()
	case "files":
		res, err = br.files()
	default:
		err = usagef("unknown mode %q", o.Mode)
	}
	br.clearProgress()
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if o.JSON {
		return json.NewEncoder(e.Stdout).Encode(res)
	}
	return nil
}

func (br *parent) topology() (string, string) {
	procs := "separate"
	if br.o.InProcess {
		procs = "inprocess"
	}
	topo := "direct"
	if br.o.ViaRoot {
		topo = "via-root"
	}
	return procs, topo
}

// relay starts a root when --via-root and returns the address the two ends
// dial (the root's), or "" for a direct edge.
func (br *parent) relay() (*child, string, error) {
	if !br.o.ViaRoot {
		return nil, "", nil
	}
	return br.start("root", "")
}

func (br *parent) messages() (*MessagesResult, error) {
	o := br.o
	br.label, br.total, br.unit = "messages", int64(o.Count), "messages"
	root, rootAddr, err := br.relay()
	if err != nil {
		return nil, err
	}
	sub, subAddr, err := br.start("sub", rootAddr)
	if err != nil {
		return nil, err
	}
	target := subAddr
	if root != nil {
		target = rootAddr
	}
	pub, _, err := br.start("pub", target)
	if err != nil {
		return nil, err
	}
	sm, err := br.await(sub, "result")
	if err != nil {
		return nil, err
	}
	if _, err := br.await(pub, "result"); err != nil {
		return nil, err
	}
	if root != nil {
		br.collectPassive(root)
	}
	br.clearProgress()
	s, p := sm.Res, br.results["pub"]
	rate := 0.0
	if s.Seconds > 0 {
		rate = float64(s.Count) / s.Seconds
	}
	procs, topo := br.topology()
	r := &MessagesResult{Mode: "messages", Processes: procs, Topology: topo, Count: o.Count, Size: o.Size,
		Received: s.Count, Seconds: s.Seconds, MsgsPerSec: rate, MBPerSec: rate * float64(o.Size) / 1e6,
		PublishSeconds: p.Seconds, RSSMiB: br.rss(), IdleRSSMiB: round1(s.IdleRSS)}
	if s.Lat != nil {
		r.LatencyUS = s.Lat.Rounded()
	}
	if !o.JSON {
		w := br.e.Stdout
		via := ""
		if root != nil {
			via = "root → "
		}
		fmt.Fprintf(w, "chaski bench: messages of %d B, publisher → %ssubscriber, %s processes\n", o.Size, via, procs)
		fmt.Fprintf(w, "  %s messages received in %.3f s (first to last, at the subscriber)\n", fmtCount(s.Count), s.Seconds)
		fmt.Fprintf(w, "  %s msgs/s, %.1f MB/s of payload (publish loop: %.3f s)\n", fmtCount(int64(rate+0.5)), r.MBPerSec, p.Seconds)
		if l := s.Lat; l != nil {
			fmt.Fprintf(w, "  latency publish → delivery: p50 %s, p90 %s, p99 %s (under full load)\n", fmtUS(l.P50), fmtUS(l.P90), fmtUS(l.P99))
		}
		fmt.Fprintf(w, "  peak RSS: %s\n", br.rssText(r.RSSMiB))
		fmt.Fprintf(w, "  subscriber RSS once connected (idle): %.1f MiB\n", s.IdleRSS)
	}
	return r, nil
}

func (br *parent) ping() (*PingResult, error) {
	o := br.o
	br.label, br.total, br.unit = "ping", int64(o.Count), "pings"
	pong, addr, err := br.start("pong", "")
	if err != nil {
		return nil, err
	}
	pinger, _, err := br.start("ping", addr)
	if err != nil {
		return nil, err
	}
	m, err := br.await(pinger, "result")
	if err != nil {
		return nil, err
	}
	br.collectPassive(pong)
	br.clearProgress()
	procs, topo := br.topology()
	var l stats.Percentiles
	if m.Res.Lat != nil {
		l = *m.Res.Lat
	}
	r := &PingResult{Mode: "ping", Processes: procs, Topology: topo, Count: m.Res.Count, Size: o.Size,
		RTTUS: l.Rounded(), RSSMiB: br.rss(), IdleRSSMiB: round1(m.Res.IdleRSS)}
	if !o.JSON {
		w := br.e.Stdout
		fmt.Fprintf(w, "chaski bench: %s pings of %d B (frame), %s processes\n", fmtCount(m.Res.Count), o.Size, procs)
		fmt.Fprintf(w, "  round trip: p50 %s, p90 %s, p99 %s (min %s, max %s, mean %s)\n",
			fmtUS(l.P50), fmtUS(l.P90), fmtUS(l.P99), fmtUS(l.Min), fmtUS(l.Max), fmtUS(l.Mean))
		fmt.Fprintf(w, "  peak RSS: %s\n", br.rssText(r.RSSMiB))
	}
	return r, nil
}

func (br *parent) files() (*FilesResult, error) {
	o := br.o
	br.label, br.total, br.unit = "files", o.FileSize>>20, "MiB"
	recv, addr, err := br.start("recv", "")
	if err != nil {
		return nil, err
	}
	if !o.Quiet {
		br.errf("bench files: writing %d MiB of random data to %s\n", o.FileSize>>20, o.Dir)
	}
	send, _, err := br.start("send", addr)
	if err != nil {
		return nil, err
	}
	br.total = o.FileSize
	br.unit = "bytes"
	sm, err := br.await(send, "result")
	if err != nil {
		return nil, err
	}
	rm, err := br.await(recv, "result")
	if err != nil {
		return nil, err
	}
	br.clearProgress()
	s, rs := sm.Res, rm.Res
	if s.Hash != rs.Hash || rs.Bytes != o.FileSize {
		return nil, fmt.Errorf("the receiver got %d bytes with hash %s, the sender sent %d with %s", rs.Bytes, rs.Hash, o.FileSize, s.Hash)
	}
	procs, _ := br.topology()
	r := &FilesResult{Mode: "files", Processes: procs, Bytes: o.FileSize, Seconds: s.Seconds,
		MBPerSec: float64(o.FileSize) / s.Seconds / 1e6, Hash: s.Hash, Verified: true, RSSMiB: br.rss()}
	if !o.JSON {
		w := br.e.Stdout
		fmt.Fprintf(w, "chaski bench: a file of %d MiB, sender → receiver, %s processes\n", o.FileSize>>20, procs)
		fmt.Fprintf(w, "  %.3f s, %.1f MB/s (offer to verdict; %s: %s…)\n", s.Seconds, r.MBPerSec, hashHow(o.Hash), s.Hash[:23])
		fmt.Fprintf(w, "  peak RSS: %s\n", br.rssText(r.RSSMiB))
	}
	return r, nil
}

// rss is the peak RSS of every process that reported one.
func (br *parent) rss() RSS {
	var out RSS
	for _, p := range []struct {
		role string
		dst  **float64
	}{{"pub", &out.Publisher}, {"sub", &out.Subscriber}, {"root", &out.Root}, {"ping", &out.Pinger},
		{"pong", &out.Ponger}, {"send", &out.Sender}, {"recv", &out.Receiver}} {
		if s, ok := br.results[p.role]; ok {
			v := round1(s.RSS)
			*p.dst = &v
		}
	}
	return out
}

func (br *parent) rssText(r RSS) string {
	var parts []string
	for _, p := range []struct {
		name string
		v    *float64
	}{{"publisher", r.Publisher}, {"subscriber", r.Subscriber}, {"root", r.Root}, {"pinger", r.Pinger},
		{"ponger", r.Ponger}, {"sender", r.Sender}, {"receiver", r.Receiver}} {
		if p.v != nil {
			parts = append(parts, fmt.Sprintf("%s %.1f MiB", p.name, *p.v))
		}
	}
	s := strings.Join(parts, ", ")
	if br.o.InProcess {
		s += " (one process)"
	}
	return s
}

// hashHow says how a files run was verified.
func hashHow(algo string) string {
	if algo == "sha256" {
		return "SHA-256 on both sides, checked at the end"
	}
	return "BLAKE3, every chunk checked on arrival"
}
