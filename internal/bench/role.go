package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"lukechampine.com/blake3"

	"github.com/chaski-dev/chaski/chaski"
	"github.com/chaski-dev/chaski/internal/bench/stats"
)

// ---- one role (a child process, or a goroutine with --inprocess) ----

// worker runs one side. It writes messages to out and ends after its
// result once quit is closed (or ctx ends).
type worker struct {
	o    *Options
	out  *json.Encoder
	mu   sync.Mutex
	quit <-chan struct{}
}

func (r *worker) send(m message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	_ = r.out.Encode(&m)
}

func (r *worker) fail(err error) error {
	r.send(message{T: "error", Err: oneLine(err)})
	return err
}

// progress reports *n every 1/progressHz until stop is closed.
func (r *worker) progress(n *atomic.Int64, stop <-chan struct{}) {
	t := time.NewTicker(time.Second / progressHz)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			r.send(message{T: "progress", N: n.Load()})
		}
	}
}

func startNode(name string, cfg chaski.Config) (*chaski.Node, error) {
	cfg.Name = name
	cfg.Listen = "127.0.0.1:0"
	cfg.ReconnectAttempts = -1
	return chaski.Start(cfg)
}

func closeNode(n *chaski.Node) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = n.Close(ctx)
}

// ready tells the parent that the node listens, and returns the resident
// memory of the process before any traffic.
func (r *worker) ready(n *chaski.Node) (idleRSS float64) {
	idleRSS = stats.RSS()
	r.send(message{T: "ready", Addr: n.Addr()})
	return idleRSS
}

// finish reports the role's result and stays up until the parent says stop
// (a publisher's queue may still be draining).
func (r *worker) finish(ctx context.Context, res *side) error {
	r.send(message{T: "result", Res: res})
	r.waitQuit(ctx)
	return nil
}

// waitQuit waits until the parent says stop.
func (r *worker) waitQuit(ctx context.Context) {
	select {
	case <-r.quit:
	case <-ctx.Done():
	}
}

func (r *worker) run(ctx context.Context) error {
	switch r.o.Role {
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
	return r.fail(fmt.Errorf("unknown bench role %q", r.o.Role))
}

// connectedNode starts the role's node and connects it to --peer.
func (r *worker) connectedNode(ctx context.Context, name string, cfg chaski.Config) (*chaski.Node, chaski.EdgeInfo, error) {
	n, err := startNode(name, cfg)
	if err != nil {
		return nil, chaski.EdgeInfo{}, err
	}
	info, err := r.connectPeer(ctx, n)
	if err != nil {
		closeNode(n)
		return nil, info, err
	}
	return n, info, nil
}

// connectPeer connects to --peer when given.
func (r *worker) connectPeer(ctx context.Context, n *chaski.Node) (chaski.EdgeInfo, error) {
	if r.o.Peer == "" {
		return chaski.EdgeInfo{}, nil
	}
	cctx, cancel := context.WithTimeout(ctx, connectBudget)
	defer cancel()
	return n.Connect(cctx, r.o.Peer)
}

// runPassive is a root relay or the peer of the pings: it only serves.
func (r *worker) runPassive(ctx context.Context) error {
	n, err := startNode("bench-"+r.o.Role, chaski.Config{Root: r.o.Role == "root"})
	if err != nil {
		return r.fail(err)
	}
	defer closeNode(n)
	r.send(message{T: "ready", Addr: n.Addr()})
	r.waitQuit(ctx)
	r.send(message{T: "result", Res: &side{RSS: stats.PeakRSS()}})
	return nil
}

// runSub counts every message and reports the time from the first to the
// last.
func (r *worker) runSub(ctx context.Context) error {
	n, _, err := r.connectedNode(ctx, "bench-sub", chaski.Config{Subscriptions: []string{topic}})
	if err != nil {
		return r.fail(err)
	}
	defer closeNode(n)
	var got atomic.Int64
	stop := make(chan struct{})
	defer close(stop)
	idle := r.ready(n)
	go r.progress(&got, stop)
	want := int64(r.o.Count)
	var h stats.Hist
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
			h.Add(now.Sub(m.Time))
			got.Store(k + 1)
		}
		k++
	}
	got.Store(want)
	var lat *stats.Percentiles
	if p, ok := h.Percentiles(); ok {
		lat = &p
	}
	return r.finish(ctx, &side{Count: want, Seconds: last.Sub(first).Seconds(), Lat: lat,
		RSS: stats.PeakRSS(), IdleRSS: idle})
}

// runPub publishes --count messages as fast as Publish accepts them, then
// stays up (its queue may still be draining) until told to quit.
func (r *worker) runPub(ctx context.Context) error {
	n, _, err := r.connectedNode(ctx, "bench-pub", chaski.Config{})
	if err != nil {
		return r.fail(err)
	}
	defer closeNode(n)
	payload := make([]byte, r.o.Size)
	_, _ = rand.Read(payload)
	r.send(message{T: "ready", Addr: n.Addr()})
	start := time.Now()
	for i := 0; i < r.o.Count; i++ {
		if err := n.Publish(ctx, topic, payload); err != nil {
			return r.fail(fmt.Errorf("publish %d of %d: %w", i+1, r.o.Count, err))
		}
	}
	el := time.Since(start)
	return r.finish(ctx, &side{Count: int64(r.o.Count), Seconds: el.Seconds(), RSS: stats.PeakRSS()})
}

func (r *worker) runPing(ctx context.Context) error {
	n, info, err := r.connectedNode(ctx, "bench-ping", chaski.Config{})
	if err != nil {
		return r.fail(err)
	}
	defer closeNode(n)
	idle := r.ready(n)
	var done atomic.Int64
	stop := make(chan struct{})
	defer close(stop)
	go r.progress(&done, stop)
	pad := r.o.Size - PingOverhead
	warm := r.o.Count / 10
	// Pings go one at a time, each sent the moment the previous pong
	// arrives (PingSeries), as the raw TCP reference's ping-pong does; in
	// slices of 1,000 so that progress can be shown.
	rtts := make([]time.Duration, 0, r.o.Count)
	if _, err := n.PingSeries(ctx, info.PeerID, warm, pad); err != nil {
		return r.fail(err)
	}
	for len(rtts) < r.o.Count {
		got, err := n.PingSeries(ctx, info.PeerID, min(1000, r.o.Count-len(rtts)), pad)
		if err != nil {
			return r.fail(err)
		}
		rtts = append(rtts, got...)
		done.Add(int64(len(got)))
	}
	// Exact percentiles: every sample is kept (20k durations).
	exact := stats.Of(rtts)
	return r.finish(ctx, &side{Count: int64(len(rtts)), Lat: &exact, RSS: stats.PeakRSS(), IdleRSS: idle})
}

// runRecv accepts the file and reports what the node verified.
func (r *worker) runRecv(ctx context.Context) error {
	dir, err := os.MkdirTemp(r.o.Dir, "chaski-bench-recv-")
	if err != nil {
		return r.fail(err)
	}
	defer os.RemoveAll(dir)
	got := make(chan chaski.FileReceived, 1)
	n, err := startNode("bench-recv", chaski.Config{Subscriptions: []string{fileTopic}, AcceptFiles: true,
		DownloadDir: dir, MaxFileSize: r.o.FileSize + 1,
		FileHandler: func(f chaski.FileReceived) {
			select {
			case got <- f:
			default:
			}
		}})
	if err != nil {
		return r.fail(err)
	}
	defer closeNode(n)
	idle := r.ready(n)
	select {
	case f := <-got:
		_ = os.Remove(f.Path)
		r.send(message{T: "result", Res: &side{Count: 1, Bytes: f.Size, Hash: f.Hash, RSS: stats.PeakRSS(), IdleRSS: idle}})
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
// receiver's verdict after its own check (BLAKE3 chunk by chunk, or
// SHA-256 at the end).
func (r *worker) runSend(ctx context.Context) error {
	f, err := os.CreateTemp(r.o.Dir, "chaski-bench-*.bin")
	if err != nil {
		return r.fail(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	var seed [32]byte
	_, _ = rand.Read(seed[:])
	src := mrand.NewChaCha8(seed)
	// The library's own hashers, to cross-check the transfer's.
	var h hash.Hash = blake3.New(32, nil)
	if r.o.Hash == chaski.HashSHA256 {
		h = sha256.New()
	}
	buf := make([]byte, 1<<20)
	for left := r.o.FileSize; left > 0; {
		k := min(int64(len(buf)), left)
		_, _ = src.Read(buf[:k])
		h.Write(buf[:k])
		if _, err := f.Write(buf[:k]); err != nil {
			return r.fail(err)
		}
		left -= k
	}
	sum := r.o.Hash + ":" + hex.EncodeToString(h.Sum(nil))
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return r.fail(err)
	}
	buf = nil
	n, _, err := r.connectedNode(ctx, "bench-send", chaski.Config{FileHash: r.o.Hash})
	if err != nil {
		return r.fail(err)
	}
	defer closeNode(n)
	idle := r.ready(n)
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
	infos, err := n.PushFile(ctx, fileTopic, f, "chaski-bench.bin", r.o.FileSize, nil)
	el := time.Since(start)
	if err != nil {
		return r.fail(err)
	}
	if len(infos) != 1 || infos[0].Hash != sum {
		return r.fail(fmt.Errorf("the transfer ended without the expected hash %s (%d receivers)", sum, len(infos)))
	}
	return r.finish(ctx, &side{Count: 1, Bytes: r.o.FileSize, Seconds: el.Seconds(), Hash: sum,
		RSS: stats.PeakRSS(), IdleRSS: idle})
}

// Child runs the role o.Role of a child process: the parent closes its
// stdin to stop it.
func Child(ctx context.Context, e IO, o *Options) error {
	quit := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, e.Stdin)
		close(quit)
	}()
	if dir := os.Getenv(ProfileEnv); dir != "" {
		stopProfile, err := startProfile(dir, o.Role)
		if err != nil {
			return err
		}
		defer stopProfile()
	}
	w := bufio.NewWriter(e.Stdout)
	fw := &flushWriter{w: w}
	r := &worker{o: o, out: json.NewEncoder(fw), quit: quit}
	if err := r.run(ctx); err != nil {
		return err
	}
	return nil
}

// startProfile writes ROLE.cpu.pprof (CPU) and, when stopped,
// ROLE.allocs.pprof (every allocation since the start) into dir.
func startProfile(dir, role string) (func(), error) {
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

// oneLine is err without the library's package prefix, for the parent to
// quote in one sentence.
func oneLine(err error) string { return strings.TrimPrefix(err.Error(), "chaski: ") }
