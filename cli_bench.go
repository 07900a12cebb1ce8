package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chaski-dev/chaski/chaski"
)

// chaski bench: a publisher and a subscriber (or a pinger and its peer, or
// a file sender and receiver), by default in separate processes: the bench
// process re-executes its own binary once per role, with CHASKI_BENCH_CHILD
// set, which also makes the hidden --role and --peer flags exist. Children
// talk to the parent in JSON lines on their stdout (ready, progress, result,
// error) and stop when their stdin closes. Every node listens on
// 127.0.0.1:0.

const (
	benchChildEnv  = "CHASKI_BENCH_CHILD"
	benchTopic     = "bench"
	benchFileTopic = "bench-files"
	// benchProfileEnv names a directory: each child process writes CPU and
	// allocation profiles of its role there.
	benchProfileEnv = "CHASKI_BENCH_PROFILE"
	benchStall      = 30 * time.Second // no progress for this long fails the run
	benchProgressHz = 5
)

type benchOpts struct {
	mode      string
	count     int
	size      int
	fileSize  int64
	inprocess bool
	viaRoot   bool
	json      bool
	quiet     bool
	dir       string
	// Hidden, children only.
	role string
	peer string
}

func newBenchCmd() (*command, runner) {
	c := newCommand("bench", "[flags]",
		"Measure messages/s, ping round trips or file throughput between two nodes on 127.0.0.1.",
		`Modes:
  messages  a publisher publishes --count messages of --size bytes on one
            topic; the subscriber counts every one of them and the rate is
            taken at the subscriber, from the first message to the last.
            Latency is publish → delivery (wall clock, same machine), under
            full load, so it includes queueing.
  ping      --count pings of --size bytes on the wire (header included),
            round trips measured by the node (the first tenth warms up).
  files     a file of --file-size random bytes is pushed to a receiver that
            accepts files; both sides verify SHA-256.
By default each side is a separate process (this binary, re-executed);
--inprocess runs both in this process and --via-root (messages) puts a
root relay process between them. Every process reports its peak RSS
(VmHWM). Progress goes to stderr; with --json the result is one JSON object
on stdout.`)
	o := &benchOpts{}
	c.fs.StringVar(&o.mode, "mode", "messages", "messages, ping or files")
	c.placeholder("mode", "MODE")
	c.fs.IntVar(&o.count, "count", 0, "messages or pings (default 1000000 messages, 20000 pings)")
	c.placeholder("count", "N")
	c.fs.IntVar(&o.size, "size", 0, "payload bytes per message (default 100), bytes per ping frame (default 64)")
	c.placeholder("size", "BYTES")
	fileSize := c.fs.String("file-size", "1GiB", "bytes of the file in files mode (suffixes KiB, MiB, GiB)")
	c.placeholder("file-size", "SIZE")
	c.fs.BoolVar(&o.inprocess, "inprocess", false, "run every node in this process")
	c.fs.BoolVar(&o.viaRoot, "via-root", false, "route through a root relay node")
	c.fs.BoolVar(&o.json, "json", false, "print the result as one JSON object")
	c.fs.BoolVar(&o.quiet, "quiet", false, "no progress on stderr")
	c.fs.StringVar(&o.dir, "dir", "", "directory for the files of files mode (default the system temp dir)")
	c.placeholder("dir", "DIR")
	if os.Getenv(benchChildEnv) != "" {
		c.fs.StringVar(&o.role, "role", "", "internal")
		c.fs.StringVar(&o.peer, "peer", "", "internal")
	}
	return c, func(ctx context.Context, e *env, pos []string) error {
		if len(pos) > 0 {
			return usageErrorf("bench takes no arguments, got %q (see 'chaski help bench')", pos[0])
		}
		switch o.mode {
		case "messages", "ping", "files":
		default:
			return usageErrorf("--mode must be messages, ping or files, not %q", o.mode)
		}
		fs, err := parseByteSize(*fileSize)
		if err != nil || fs <= 0 {
			return usageErrorf("--file-size: %q is not a positive size", *fileSize)
		}
		o.fileSize = fs
		if o.count == 0 {
			o.count = map[string]int{"messages": 1_000_000, "ping": 20_000, "files": 1}[o.mode]
		}
		if o.size == 0 {
			o.size = map[string]int{"messages": 100, "ping": 64, "files": 0}[o.mode]
		}
		if o.count < 0 || o.size < 0 {
			return usageErrorf("--count and --size must not be negative")
		}
		if o.mode == "ping" && o.size < benchPingOverhead {
			return usageErrorf("--size of a ping is at least %d bytes (the frame header and ping fields)", benchPingOverhead)
		}
		if o.mode != "messages" && o.viaRoot {
			return usageErrorf("--via-root applies to messages only (pings and files travel over one edge)")
		}
		if o.dir == "" {
			o.dir = os.TempDir()
		}
		if o.role != "" {
			return benchChildMain(ctx, e, o)
		}
		return runBench(ctx, e, o)
	}
}

// parseByteSize reads "1GiB", "512MiB", "100KiB", "1048576", "1G", "10M".
func parseByteSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, err
	}
	return v * mult, nil
}

// ---- the messages between the parent and its children ----

type benchMsg struct {
	T    string     `json:"t"` // ready, progress, result, error
	Addr string     `json:"addr,omitempty"`
	N    int64      `json:"n,omitempty"`
	Err  string     `json:"err,omitempty"`
	Res  *benchSide `json:"res,omitempty"`
}

// benchSide is one process's result.
type benchSide struct {
	Count   int64        `json:"count"`
	Bytes   int64        `json:"bytes,omitempty"`
	Seconds float64      `json:"seconds"`
	Lat     *benchLat    `json:"lat,omitempty"`
	SHA256  string       `json:"sha256,omitempty"`
	RSS     float64      `json:"rss_mib"`      // peak (VmHWM)
	IdleRSS float64      `json:"idle_rss_mib"` // VmRSS once connected, before any traffic
	Extra   benchExtraGC `json:"gc"`
}

type benchExtraGC struct {
	NumGC uint32 `json:"num_gc"`
}

// benchLat are latency percentiles in microseconds.
type benchLat struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Min  float64 `json:"min"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// benchHist is a log-linear histogram of durations (≈3% precision, 7.5 KiB),
// so that the subscriber of a million messages keeps no per-message state.
type benchHist struct {
	counts   [60 * 32]uint32
	n        uint64
	sum      float64
	min, max int64
}

func benchBucket(v uint64) int {
	if v < 32 {
		return int(v)
	}
	e := bits.Len64(v) - 6
	return (e+1)*32 + int((v>>uint(e))&31)
}

func benchBucketValue(i int) float64 {
	if i < 32 {
		return float64(i)
	}
	e := i/32 - 1
	m := uint64(i%32) | 32
	lo := m << uint(e)
	return float64(lo) + float64(uint64(1)<<uint(e))/2
}

func (h *benchHist) add(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += float64(v)
	h.counts[benchBucket(uint64(v))]++
}

func (h *benchHist) summary() *benchLat {
	if h.n == 0 {
		return nil
	}
	us := func(ns float64) float64 { return ns / 1e3 }
	at := func(q float64) float64 {
		want := uint64(q*float64(h.n) + 0.5)
		if want == 0 {
			want = 1
		}
		var acc uint64
		for i, c := range h.counts {
			acc += uint64(c)
			if acc >= want {
				return us(min(max(benchBucketValue(i), float64(h.min)), float64(h.max)))
			}
		}
		return us(float64(h.max))
	}
	return &benchLat{P50: at(0.5), P90: at(0.9), P99: at(0.99), Min: us(float64(h.min)), Max: us(float64(h.max)),
		Mean: us(h.sum / float64(h.n))}
}

// procStatusMiB reads a "VmHWM:"-style line of /proc/self/status in MiB.
func procStatusMiB(key string) float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, key+":"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				kb, _ := strconv.ParseFloat(f[0], 64)
				return kb / 1024
			}
		}
	}
	return 0
}

// ---- one role (a child process, or a goroutine with --inprocess) ----

// benchRole runs one side. It writes benchMsgs to out and ends after its
// result once quit is closed (or ctx ends).
type benchRole struct {
	o    *benchOpts
	out  *json.Encoder
	mu   sync.Mutex
	quit <-chan struct{}
}

func (r *benchRole) send(m benchMsg) {
	r.mu.Lock()
	defer r.mu.Unlock()
	_ = r.out.Encode(&m)
}

func (r *benchRole) fail(err error) error {
	r.send(benchMsg{T: "error", Err: cleanErr(err)})
	return err
}

// progress reports *n every 1/benchProgressHz until stop is closed.
func (r *benchRole) progress(n *atomic.Int64, stop <-chan struct{}) {
	t := time.NewTicker(time.Second / benchProgressHz)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			r.send(benchMsg{T: "progress", N: n.Load()})
		}
	}
}

func benchNode(name string, cfg chaski.Config) (*chaski.Node, error) {
	cfg.Name = name
	cfg.Listen = "127.0.0.1:0"
	cfg.ReconnectAttempts = -1
	return chaski.Start(cfg)
}

func closeBenchNode(n *chaski.Node) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = n.Close(ctx)
}

// waitQuit waits until the parent says stop.
func (r *benchRole) waitQuit(ctx context.Context) {
	select {
	case <-r.quit:
	case <-ctx.Done():
	}
}

func (r *benchRole) run(ctx context.Context) error {
	switch r.o.role {
	case "sub":
		return r.runSub(ctx)
	case "pub":
		return r.runPub(ctx)
	case "root", "pong":
		return r.runPassive(ctx)
	case "ping":
		return r.runPing(ctx)
	case "recv":
		return r.runRecv(ctx)
	case "send":
		return r.runSend(ctx)
	}
	return r.fail(fmt.Errorf("unknown bench role %q", r.o.role))
}

// connectPeer connects to --peer when given.
func (r *benchRole) connectPeer(ctx context.Context, n *chaski.Node) (chaski.EdgeInfo, error) {
	if r.o.peer == "" {
		return chaski.EdgeInfo{}, nil
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return n.Connect(cctx, r.o.peer)
}

// runPassive is a root relay or the peer of the pings: it only serves.
func (r *benchRole) runPassive(ctx context.Context) error {
	n, err := benchNode("bench-"+r.o.role, chaski.Config{Root: r.o.role == "root"})
	if err != nil {
		return r.fail(err)
	}
	defer closeBenchNode(n)
	r.send(benchMsg{T: "ready", Addr: n.Addr()})
	r.waitQuit(ctx)
	r.send(benchMsg{T: "result", Res: &benchSide{RSS: procStatusMiB("VmHWM")}})
	return nil
}

// runSub counts every message and reports the time from the first to the
// last.
func (r *benchRole) runSub(ctx context.Context) error {
	n, err := benchNode("bench-sub", chaski.Config{Subscriptions: []string{benchTopic}})
	if err != nil {
		return r.fail(err)
	}
	defer closeBenchNode(n)
	if _, err := r.connectPeer(ctx, n); err != nil {
		return r.fail(err)
	}
	var got atomic.Int64
	stop := make(chan struct{})
	defer close(stop)
	idle := procStatusMiB("VmRSS")
	r.send(benchMsg{T: "ready", Addr: n.Addr()})
	go r.progress(&got, stop)
	want := int64(r.o.count)
	var h benchHist
	var first, last time.Time
	// The loop does as little as the NATS reference's subscriber: it counts,
	// reads the clock for the first and last message, and samples latency on
	// every 64th message (a clock read per message would cost the subscriber
	// a tenth of its time and measure the harness, not the node).
	msgs := n.Messages()
	for k := int64(0); k < want; {
		var m *chaski.Message
		var ok bool
		select {
		case m, ok = <-msgs:
		default:
			select {
			case m, ok = <-msgs:
			case <-ctx.Done():
				return r.fail(ctx.Err())
			}
		}
		if !ok {
			return r.fail(fmt.Errorf("the subscriber node closed after %d of %d messages", k, want))
		}
		if k == 0 || k%64 == 0 || k == want-1 {
			now := time.Now()
			if k == 0 {
				first = now
			}
			last = now
			h.add(now.Sub(m.Time))
			got.Store(k + 1)
		}
		k++
	}
	got.Store(want)
	r.send(benchMsg{T: "result", Res: &benchSide{Count: want, Seconds: last.Sub(first).Seconds(), Lat: h.summary(),
		RSS: procStatusMiB("VmHWM"), IdleRSS: idle}})
	r.waitQuit(ctx)
	return nil
}

// runPub publishes --count messages as fast as Publish accepts them, then
// stays up (its queue may still be draining) until told to quit.
func (r *benchRole) runPub(ctx context.Context) error {
	n, err := benchNode("bench-pub", chaski.Config{})
	if err != nil {
		return r.fail(err)
	}
	defer closeBenchNode(n)
	if _, err := r.connectPeer(ctx, n); err != nil {
		return r.fail(err)
	}
	payload := make([]byte, r.o.size)
	_, _ = rand.Read(payload)
	r.send(benchMsg{T: "ready", Addr: n.Addr()})
	start := time.Now()
	for i := 0; i < r.o.count; i++ {
		if err := n.Publish(ctx, benchTopic, payload); err != nil {
			return r.fail(fmt.Errorf("publish %d of %d: %w", i+1, r.o.count, err))
		}
	}
	el := time.Since(start)
	r.send(benchMsg{T: "result", Res: &benchSide{Count: int64(r.o.count), Seconds: el.Seconds(), RSS: procStatusMiB("VmHWM")}})
	r.waitQuit(ctx)
	return nil
}

// benchPingOverhead is the frame header plus the fixed ping fields: a ping
// of --size bytes carries size-benchPingOverhead bytes of padding.
const benchPingOverhead = 8 + 9

func (r *benchRole) runPing(ctx context.Context) error {
	n, err := benchNode("bench-ping", chaski.Config{})
	if err != nil {
		return r.fail(err)
	}
	defer closeBenchNode(n)
	info, err := r.connectPeer(ctx, n)
	if err != nil {
		return r.fail(err)
	}
	idle := procStatusMiB("VmRSS")
	r.send(benchMsg{T: "ready", Addr: n.Addr()})
	var done atomic.Int64
	stop := make(chan struct{})
	defer close(stop)
	go r.progress(&done, stop)
	pad := r.o.size - benchPingOverhead
	warm := r.o.count / 10
	// Pings go one at a time, each sent the moment the previous pong
	// arrives (PingSeries), as the raw TCP reference's ping-pong does; in
	// slices of 1,000 so that progress can be shown.
	rtts := make([]time.Duration, 0, r.o.count)
	if _, err := n.PingSeries(ctx, info.PeerID, warm, pad); err != nil {
		return r.fail(err)
	}
	for len(rtts) < r.o.count {
		got, err := n.PingSeries(ctx, info.PeerID, min(1000, r.o.count-len(rtts)), pad)
		if err != nil {
			return r.fail(err)
		}
		rtts = append(rtts, got...)
		done.Add(int64(len(got)))
	}
	var h benchHist
	var exact benchLat
	if len(rtts) > 0 {
		// Exact percentiles: every sample is kept (20k durations).
		sortDurations(rtts)
		us := func(d time.Duration) float64 { return float64(d) / 1e3 }
		at := func(q float64) float64 {
			i := int(q*float64(len(rtts))+0.5) - 1
			return us(rtts[max(0, min(i, len(rtts)-1))])
		}
		for _, d := range rtts {
			h.add(d)
		}
		exact = benchLat{P50: at(0.5), P90: at(0.9), P99: at(0.99), Min: us(rtts[0]), Max: us(rtts[len(rtts)-1]),
			Mean: h.sum / float64(h.n) / 1e3}
	}
	r.send(benchMsg{T: "result", Res: &benchSide{Count: int64(len(rtts)), Lat: &exact, RSS: procStatusMiB("VmHWM"), IdleRSS: idle}})
	r.waitQuit(ctx)
	return nil
}

func sortDurations(d []time.Duration) { slices.Sort(d) }

// runRecv accepts the file and reports what the node verified.
func (r *benchRole) runRecv(ctx context.Context) error {
	dir, err := os.MkdirTemp(r.o.dir, "chaski-bench-recv-")
	if err != nil {
		return r.fail(err)
	}
	defer os.RemoveAll(dir)
	got := make(chan chaski.FileReceived, 1)
	n, err := benchNode("bench-recv", chaski.Config{Subscriptions: []string{benchFileTopic}, AcceptFiles: true,
		DownloadDir: dir, MaxFileSize: r.o.fileSize + 1,
		FileHandler: func(f chaski.FileReceived) {
			select {
			case got <- f:
			default:
			}
		}})
	if err != nil {
		return r.fail(err)
	}
	defer closeBenchNode(n)
	idle := procStatusMiB("VmRSS")
	r.send(benchMsg{T: "ready", Addr: n.Addr()})
	select {
	case f := <-got:
		_ = os.Remove(f.Path)
		r.send(benchMsg{T: "result", Res: &benchSide{Count: 1, Bytes: f.Size, SHA256: f.SHA256, RSS: procStatusMiB("VmHWM"), IdleRSS: idle}})
	case <-r.quit:
		return nil
	case <-ctx.Done():
		return r.fail(ctx.Err())
	}
	r.waitQuit(ctx)
	return nil
}

// runSend writes a file of random bytes (hashing it on the way), then pushes
// it with PushFile and reports the time PushFile took: offer, data and the
// receiver's verdict after its own SHA-256 check.
func (r *benchRole) runSend(ctx context.Context) error {
	f, err := os.CreateTemp(r.o.dir, "chaski-bench-*.bin")
	if err != nil {
		return r.fail(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	var seed [32]byte
	_, _ = rand.Read(seed[:])
	src := mrand.NewChaCha8(seed)
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for left := r.o.fileSize; left > 0; {
		k := min(int64(len(buf)), left)
		_, _ = src.Read(buf[:k])
		h.Write(buf[:k])
		if _, err := f.Write(buf[:k]); err != nil {
			return r.fail(err)
		}
		left -= k
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return r.fail(err)
	}
	buf = nil
	n, err := benchNode("bench-send", chaski.Config{})
	if err != nil {
		return r.fail(err)
	}
	defer closeBenchNode(n)
	if _, err := r.connectPeer(ctx, n); err != nil {
		return r.fail(err)
	}
	idle := procStatusMiB("VmRSS")
	r.send(benchMsg{T: "ready", Addr: n.Addr()})
	events, stopWatch := n.Watch(256)
	defer stopWatch()
	var done atomic.Int64
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for ev := range events {
			if te, ok := ev.(*chaski.TransferEvent); ok && te.Transfer.Outgoing {
				done.Store(te.Transfer.Done)
			}
		}
	}()
	go r.progress(&done, stop)
	start := time.Now()
	infos, err := n.PushFile(ctx, benchFileTopic, f, "chaski-bench.bin", r.o.fileSize, nil)
	el := time.Since(start)
	if err != nil {
		return r.fail(err)
	}
	if len(infos) != 1 || infos[0].SHA256 != sum {
		return r.fail(fmt.Errorf("the transfer ended without the expected SHA-256 (%d receivers)", len(infos)))
	}
	r.send(benchMsg{T: "result", Res: &benchSide{Count: 1, Bytes: r.o.fileSize, Seconds: el.Seconds(), SHA256: sum,
		RSS: procStatusMiB("VmHWM"), IdleRSS: idle}})
	r.waitQuit(ctx)
	return nil
}

// benchChildMain is a child process: the parent closes our stdin to stop us.
func benchChildMain(ctx context.Context, e *env, o *benchOpts) error {
	quit := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, e.stdin)
		close(quit)
	}()
	if dir := os.Getenv(benchProfileEnv); dir != "" {
		stopProfile, err := startBenchProfile(dir, o.role)
		if err != nil {
			return withCode(1, err)
		}
		defer stopProfile()
	}
	w := bufio.NewWriter(e.stdout)
	fw := &flushWriter{w: w}
	r := &benchRole{o: o, out: json.NewEncoder(fw), quit: quit}
	if err := r.run(ctx); err != nil {
		return withCode(1, err)
	}
	return nil
}

// startBenchProfile writes ROLE.cpu.pprof (CPU) and, when stopped,
// ROLE.allocs.pprof (every allocation since the start) into dir.
func startBenchProfile(dir, role string) (func(), error) {
	cpu, err := os.Create(filepath.Join(dir, role+".cpu.pprof"))
	if err != nil {
		return nil, err
	}
	runtime.MemProfileRate = 64 << 10
	if err := pprof.StartCPUProfile(cpu); err != nil {
		cpu.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		cpu.Close()
		if f, err := os.Create(filepath.Join(dir, role+".allocs.pprof")); err == nil {
			_ = pprof.Lookup("allocs").WriteTo(f, 0)
			f.Close()
		}
	}, nil
}

// flushWriter flushes after every write (one JSON line per write).
type flushWriter struct{ w *bufio.Writer }

func (f *flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err == nil {
		err = f.w.Flush()
	}
	return n, err
}

// ---- the parent ----

// benchChild is a running role: its messages and a way to stop it.
type benchChild struct {
	role string
	msgs chan benchMsg
	stop func()        // ask it to end
	done chan struct{} // closed when it has ended
	kill func()
}

func (b *benchChild) end(grace time.Duration) {
	b.stop()
	select {
	case <-b.done:
	case <-time.After(grace):
		b.kill()
		<-b.done
	}
}

func readBenchMsgs(rd io.Reader, ch chan<- benchMsg, role string) {
	defer close(ch)
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var m benchMsg
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			m = benchMsg{T: "error", Err: fmt.Sprintf("%s: unreadable output %q", role, truncateStr(sc.Text(), 80))}
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

// startBenchChild starts a role as a process (or a goroutine).
func startBenchChild(ctx context.Context, e *env, o *benchOpts, role, peer string) (*benchChild, error) {
	co := *o
	co.role, co.peer = role, peer
	b := &benchChild{role: role, msgs: make(chan benchMsg, 64), done: make(chan struct{})}
	if o.inprocess {
		pr, pw := io.Pipe()
		quit := make(chan struct{})
		var once sync.Once
		rctx, cancel := context.WithCancel(ctx)
		b.stop = func() { once.Do(func() { close(quit) }) }
		b.kill = cancel
		r := &benchRole{o: &co, out: json.NewEncoder(pw), quit: quit}
		go readBenchMsgs(pr, b.msgs, role)
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
	args := []string{"bench", "--role", role, "--mode", o.mode, "--count", strconv.Itoa(o.count),
		"--size", strconv.Itoa(o.size), "--file-size", strconv.FormatInt(o.fileSize, 10), "--dir", o.dir}
	if peer != "" {
		args = append(args, "--peer", peer)
	}
	cmd := exec.Command(self, args...)
	cmd.Env = append(os.Environ(), benchChildEnv+"=1")
	cmd.Stderr = e.stderr
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
	go readBenchMsgs(stdout, b.msgs, role)
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

// benchRun is the parent's view of one run.
type benchRun struct {
	ctx      context.Context
	e        *env
	o        *benchOpts
	errOut   *printer
	children []*benchChild
	results  map[string]*benchSide
	shown    bool
	lastDraw time.Time
	label    string
	total    int64
	unit     string
}

// await waits for a message of type t from c, showing progress meanwhile.
func (br *benchRun) await(c *benchChild, t string) (benchMsg, error) {
	stall := time.NewTimer(benchStall)
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
				stall.Reset(benchStall)
				br.showProgress(m.N)
			}
			if m.T == t {
				if m.T == "result" && m.Res != nil {
					br.results[c.role] = m.Res
				}
				return m, nil
			}
		case <-stall.C:
			return benchMsg{}, fmt.Errorf("no progress from the %s for %v", c.role, benchStall)
		case <-br.ctx.Done():
			return benchMsg{}, errors.New("interrupted")
		}
	}
}

func (br *benchRun) showProgress(n int64) {
	if br.o.quiet {
		return
	}
	now := time.Now()
	tty := br.e.stderrTTY
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
		br.errOut.raw([]byte("\r\033[K" + line))
		br.errOut.flush()
		br.shown = true
	} else {
		br.errOut.linef("%s", line)
	}
}

func (br *benchRun) clearProgress() {
	if br.shown {
		br.errOut.raw([]byte("\r\033[K"))
		br.errOut.flush()
		br.shown = false
	}
}

func (br *benchRun) start(role, peer string) (*benchChild, string, error) {
	c, err := startBenchChild(br.ctx, br.e, br.o, role, peer)
	if err != nil {
		return nil, "", err
	}
	br.children = append(br.children, c)
	m, err := br.await(c, "ready")
	return c, m.Addr, err
}

func (br *benchRun) stopAll() {
	var wg sync.WaitGroup
	for _, c := range br.children {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.end(10 * time.Second)
		}()
	}
	wg.Wait()
}

// collect asks the passive children for their results (peak RSS) as they stop.
func (br *benchRun) collectPassive(cs ...*benchChild) {
	for _, c := range cs {
		c.stop()
		if m, err := br.await(c, "result"); err == nil && m.Res != nil {
			br.results[c.role] = m.Res
		}
	}
}

func runBench(ctx context.Context, e *env, o *benchOpts) error {
	br := &benchRun{ctx: ctx, e: e, o: o, errOut: newPrinter(e.stderr), results: map[string]*benchSide{}}
	defer br.stopAll()
	defer br.clearProgress()
	var res obj
	var err error
	switch o.mode {
	case "messages":
		res, err = br.messages()
	case "ping":
		res, err = br.ping()
	case "files":
		res, err = br.files()
	}
	br.clearProgress()
	if err != nil {
		return withCode(1, fmt.Errorf("bench: %w", err))
	}
	if o.json {
		newPrinter(e.stdout).json(res)
	}
	return nil
}

func (br *benchRun) topology() (string, string) {
	procs := "separate"
	if br.o.inprocess {
		procs = "inprocess"
	}
	topo := "direct"
	if br.o.viaRoot {
		topo = "via-root"
	}
	return procs, topo
}

func (br *benchRun) rssObj() obj {
	var o obj
	for _, role := range []string{"publisher", "subscriber", "root", "pinger", "ponger", "sender", "receiver"} {
		if s, ok := br.results[benchRoleOf(role)]; ok {
			o = o.add(role, round1(s.RSS))
		}
	}
	return o
}

func benchRoleOf(name string) string {
	return map[string]string{"publisher": "pub", "subscriber": "sub", "root": "root", "pinger": "ping",
		"ponger": "pong", "sender": "send", "receiver": "recv"}[name]
}

func round1(f float64) float64 {
	return float64(int64(f*10+0.5)) / 10
}

func latObj(l *benchLat) obj {
	if l == nil {
		return obj{}
	}
	r := func(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }
	return obj{{"p50", r(l.P50)}, {"p90", r(l.P90)}, {"p99", r(l.P99)}, {"min", r(l.Min)}, {"max", r(l.Max)}, {"mean", r(l.Mean)}}
}

// peer starts a root when --via-root and returns the address the two ends
// dial (the root's), or "" for a direct edge.
func (br *benchRun) relay() (*benchChild, string, error) {
	if !br.o.viaRoot {
		return nil, "", nil
	}
	return br.start("root", "")
}

func (br *benchRun) messages() (obj, error) {
	o := br.o
	br.label, br.total, br.unit = "messages", int64(o.count), "messages"
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
	mb := rate * float64(o.size) / 1e6
	procs, topo := br.topology()
	if !o.json {
		out := newPrinter(br.e.stdout)
		out.linef("chaski bench: messages of %d B, publisher → %ssubscriber, %s processes", o.size, map[bool]string{true: "root → ", false: ""}[root != nil], procs)
		out.linef("  %s messages received in %.3f s (first to last, at the subscriber)", fmtCount(s.Count), s.Seconds)
		out.linef("  %s msgs/s, %.1f MB/s of payload (publish loop: %.3f s)", fmtCount(int64(rate+0.5)), mb, p.Seconds)
		if l := s.Lat; l != nil {
			out.linef("  latency publish → delivery: p50 %s, p90 %s, p99 %s (under full load)", fmtUS(l.P50), fmtUS(l.P90), fmtUS(l.P99))
		}
		out.linef("  peak RSS: %s", br.rssText())
		out.linef("  subscriber RSS once connected (idle): %.1f MiB", s.IdleRSS)
	}
	return obj{{"mode", "messages"}, {"processes", procs}, {"topology", topo}, {"count", o.count}, {"size", o.size},
		{"received", s.Count}, {"seconds", s.Seconds}, {"msgs_per_sec", rate}, {"mb_per_sec", mb},
		{"publish_seconds", p.Seconds}, {"latency_us", latObj(s.Lat)}, {"rss_mib", br.rssObj()},
		{"idle_rss_mib", round1(s.IdleRSS)}}, nil
}

func (br *benchRun) ping() (obj, error) {
	o := br.o
	br.label, br.total, br.unit = "ping", int64(o.count), "pings"
	pong, addr, err := br.start("pong", "")
	if err != nil {
		return nil, err
	}
	return br.pingAgainst(pong, addr)
}

func (br *benchRun) pingAgainst(peer *benchChild, addr string) (obj, error) {
	o := br.o
	pinger, _, err := br.start("ping", addr)
	if err != nil {
		return nil, err
	}
	m, err := br.await(pinger, "result")
	if err != nil {
		return nil, err
	}
	br.collectPassive(peer)
	br.clearProgress()
	procs, topo := br.topology()
	l := m.Res.Lat
	if !o.json {
		out := newPrinter(br.e.stdout)
		out.linef("chaski bench: %s pings of %d B (frame), %s processes", fmtCount(m.Res.Count), o.size, procs)
		out.linef("  round trip: p50 %s, p90 %s, p99 %s (min %s, max %s, mean %s)",
			fmtUS(l.P50), fmtUS(l.P90), fmtUS(l.P99), fmtUS(l.Min), fmtUS(l.Max), fmtUS(l.Mean))
		out.linef("  peak RSS: %s", br.rssText())
	}
	return obj{{"mode", "ping"}, {"processes", procs}, {"topology", topo}, {"count", m.Res.Count}, {"size", o.size},
		{"rtt_us", latObj(l)}, {"rss_mib", br.rssObj()}, {"idle_rss_mib", round1(m.Res.IdleRSS)}}, nil
}

func (br *benchRun) files() (obj, error) {
	o := br.o
	br.label, br.total, br.unit = "files", o.fileSize>>20, "MiB"
	recv, addr, err := br.start("recv", "")
	if err != nil {
		return nil, err
	}
	if !o.quiet {
		br.errOut.linef("bench files: writing %d MiB of random data to %s", o.fileSize>>20, o.dir)
	}
	send, _, err := br.start("send", addr)
	if err != nil {
		return nil, err
	}
	br.total = o.fileSize
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
	s, r := sm.Res, rm.Res
	if s.SHA256 != r.SHA256 || r.Bytes != o.fileSize {
		return nil, fmt.Errorf("the receiver got %d bytes with SHA-256 %s, the sender sent %d with %s", r.Bytes, r.SHA256, o.fileSize, s.SHA256)
	}
	mbs := float64(o.fileSize) / s.Seconds / 1e6
	procs, _ := br.topology()
	if !o.json {
		out := newPrinter(br.e.stdout)
		out.linef("chaski bench: a file of %d MiB, sender → receiver, %s processes", o.fileSize>>20, procs)
		out.linef("  %.3f s, %.1f MB/s (offer to verdict; SHA-256 verified on both sides: %s…)", s.Seconds, mbs, s.SHA256[:16])
		out.linef("  peak RSS: %s", br.rssText())
	}
	return obj{{"mode", "files"}, {"processes", procs}, {"bytes", o.fileSize}, {"seconds", s.Seconds},
		{"mb_per_sec", mbs}, {"sha256", s.SHA256}, {"verified", true}, {"rss_mib", br.rssObj()}}, nil
}

func (br *benchRun) rssText() string {
	var parts []string
	for _, f := range br.rssObj() {
		parts = append(parts, fmt.Sprintf("%s %.1f MiB", f.k, f.v))
	}
	s := strings.Join(parts, ", ")
	if br.o.inprocess {
		s += " (one process)"
	}
	return s
}

// fmtCount renders 1234567 as 1,234,567.
func fmtCount(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// fmtUS renders microseconds with a readable unit.
func fmtUS(us float64) string {
	switch {
	case us >= 1e6:
		return fmt.Sprintf("%.2f s", us/1e6)
	case us >= 1e4:
		return fmt.Sprintf("%.1f ms", us/1e3)
	case us >= 1e3:
		return fmt.Sprintf("%.2f ms", us/1e3)
	default:
		return fmt.Sprintf("%.1f µs", us)
	}
}
