package natsbridge

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chaski-dev/chaski/chaski"
	"github.com/nats-io/nats.go"
)

// The bridge benchmarks compare, on one in-process nats-server and in one
// run, 100-byte messages per second
//
//   - plain:        a nats.go publisher to a nats.go subscriber;
//   - plain-headers, plain-1header: the same with the bridge's three
//     headers, and with Chaski-Id alone;
//   - mesh-to-nats: a Chaski node publishing to a bridging node, which
//     sends them to NATS, to a nats.go subscriber;
//   - nats-to-mesh: a nats.go publisher to the bridging node, which injects
//     them into the mesh, to a Chaski subscriber node;
//
// The bridging node runs in a process of its own (this test binary, run
// again as TestBridgeHelperProcess), so that its peak RSS (VmHWM) is its
// own; it is reported as peak-rss-MiB. Every run reports the CPU it cost
// per message (see account). Run with -benchtime 1000000x for the figures
// of docs/PERFORMANCE.md.

const benchSize = 100

// countTo subscribes sub to subj (without pending limits) and counts what
// arrives; done is closed at the n-th message.
func countTo(b *testing.B, sub *nats.Conn, subj string, n int64) (got *atomic.Int64, done chan struct{}, sb *nats.Subscription) {
	b.Helper()
	got, done = new(atomic.Int64), make(chan struct{})
	sb, err := sub.Subscribe(subj, func(*nats.Msg) {
		if got.Add(1) == n {
			close(done)
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	_ = sb.SetPendingLimits(-1, -1)
	_ = sub.Flush()
	return got, done, sb
}

func BenchmarkBridge(b *testing.B) {
	s := startServer(b, nil)
	payload := make([]byte, benchSize)
	for i := range payload {
		payload[i] = 'a' + byte(i%26)
	}

	b.Run("plain", func(b *testing.B) {
		pub, sub := natsConn(b, s.URL()), natsConn(b, s.URL())
		n := int64(b.N)
		got, done, _ := countTo(b, sub, "chaski.plain", n)
		b.SetBytes(benchSize)
		b.ResetTimer()
		acc := startAccount(nil)
		start := time.Now()
		for i := 0; i < b.N; i++ {
			window(got, i)
			if err := pub.Publish("chaski.plain", payload); err != nil {
				b.Fatal(err)
			}
		}
		_ = pub.Flush()
		wait(b, done, got, n)
		report(b, start)
		acc.report(b, nil)
	})

	// The same with the three headers a bridge adds (what the server and
	// the subscriber pay for them, without any Chaski), and with the id
	// header alone (the least that lets bridges deduplicate).
	for _, hv := range []struct {
		name string
		all  bool
	}{{"plain-headers", true}, {"plain-1header", false}} {
		b.Run(hv.name, func(b *testing.B) {
			subj := "chaski." + hv.name
			pub, sub := natsConn(b, s.URL()), natsConn(b, s.URL())
			n := int64(b.N)
			got, done, _ := countTo(b, sub, subj, n)
			m := &nats.Msg{Subject: subj, Data: payload, Header: nats.Header{HeaderID: {""}}}
			if hv.all {
				m.Header[HeaderFrom] = []string{"bench-peer"}
				m.Header[HeaderTime] = []string{"1764680000000000000"}
			}
			b.SetBytes(benchSize)
			b.ResetTimer()
			acc := startAccount(nil)
			start := time.Now()
			for i := 0; i < b.N; i++ {
				window(got, i)
				m.Header[HeaderID][0] = "5a0c3c52-8d3e-4a55-9a43-fd4b2d1f0c11/" + strconv.Itoa(i+1)
				if err := pub.PublishMsg(m); err != nil {
					b.Fatal(err)
				}
			}
			_ = pub.Flush()
			wait(b, done, got, n)
			report(b, start)
			acc.report(b, nil)
		})
	}

	helper := startHelper(b, s.URL())
	node := startNode(b, "bench-peer", "in")
	cctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	if _, err := node.Connect(cctx, helper.addr); err != nil {
		b.Fatal(err)
	}
	cancel()
	eventually(b, "helper subscriptions", func() bool {
		e, ok := node.Edge(helper.addr)
		return ok && e.Subscribes("out") && e.Subscribes("in")
	})
	interest(b, []*natsServer{s}, "chaski.in", 2)

	b.Run("mesh-to-nats", func(b *testing.B) {
		sub := natsConn(b, s.URL())
		n := int64(b.N)
		got, done, sb := countTo(b, sub, "chaski.out", n)
		interest(b, []*natsServer{s}, "chaski.out", 3)
		ctx := context.Background()
		b.SetBytes(benchSize)
		b.ResetTimer()
		acc := startAccount(helper)
		start := time.Now()
		for i := 0; i < b.N; i++ {
			if err := node.Publish(ctx, "out", payload); err != nil {
				b.Fatal(err)
			}
		}
		wait(b, done, got, n)
		report(b, start)
		acc.report(b, helper)
		b.ReportMetric(helper.peakRSS(b), "peak-rss-MiB")
		_ = sb.Unsubscribe()
	})

	// One consumer of the peer's messages for every run of nats-to-mesh
	// (the framework runs it with b.N = 1 first).
	var counter runCounter
	go func() {
		for range node.Messages() {
			counter.add()
		}
	}()
	b.Run("nats-to-mesh", func(b *testing.B) {
		pub := natsConn(b, s.URL())
		got, done := counter.reset(int64(b.N))
		b.SetBytes(benchSize)
		b.ResetTimer()
		acc := startAccount(helper)
		start := time.Now()
		for i := 0; i < b.N; i++ {
			window(got, i)
			if err := pub.Publish("chaski.in", payload); err != nil {
				b.Fatal(err)
			}
		}
		_ = pub.Flush()
		wait(b, done, got, int64(b.N), func() string {
			return fmt.Sprintf("edges %+v status %+v", node.Edges(), node.Status())
		})
		report(b, start)
		acc.report(b, helper)
		b.ReportMetric(helper.peakRSS(b), "peak-rss-MiB")
	})
}

// benchWindow bounds the messages a NATS publisher has in flight: NATS has
// no flow control from subscriber to publisher, and a bridge's inbound
// subscription is bounded (InPendingMsgs), so an unthrottled publisher
// would measure drops, not throughput. Both the plain and the bridged runs
// use the same window.
const benchWindow = 16384

func window(got *atomic.Int64, sent int) {
	for int64(sent)-got.Load() > benchWindow {
		time.Sleep(50 * time.Microsecond)
	}
}

func wait(b *testing.B, done chan struct{}, got *atomic.Int64, n int64, diag ...func() string) {
	b.Helper()
	select {
	case <-done:
	case <-time.After(time.Duration(n)*50*time.Microsecond + time.Minute):
		extra := ""
		for _, d := range diag {
			extra += d()
		}
		b.Fatalf("received %d of %d %s", got.Load(), n, extra)
	}
}

func report(b *testing.B, start time.Time) {
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// helperProc is the bridging node in a process of its own.
type helperProc struct {
	cmd  *exec.Cmd
	name string
	addr string
	out  *bufio.Reader
}

func startHelper(b *testing.B, url string) *helperProc {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestBridgeHelperProcess$", "-test.v=false")
	cmd.Env = append(os.Environ(), "CHASKI_BRIDGE_HELPER="+url)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	h := &helperProc{cmd: cmd, name: "bench-bridge", out: bufio.NewReader(stdout)}
	b.Cleanup(func() {
		stdin.Close() // the helper exits when its stdin closes
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	line, err := h.out.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ready ") {
		b.Fatalf("helper: %q %v", line, err)
	}
	h.addr = strings.TrimSpace(strings.TrimPrefix(line, "ready "))
	return h
}

func (h *helperProc) peakRSS(b *testing.B) float64 {
	b.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(h.cmd.Process.Pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// TestBridgeHelperProcess is the bridging node of BenchmarkBridge when run
// by it (CHASKI_BRIDGE_HELPER=<nats url>); otherwise it does nothing.
func TestBridgeHelperProcess(t *testing.T) {
	url := os.Getenv("CHASKI_BRIDGE_HELPER")
	if url == "" {
		t.Skip("the bridging node of BenchmarkBridge")
	}
	gogc := 400 // as the chaski command does (main.go)
	if v, err := strconv.Atoi(os.Getenv("CHASKI_BRIDGE_HELPER_GOGC")); err == nil {
		gogc = v
	}
	debug.SetGCPercent(gogc)
	if os.Getenv("CHASKI_BRIDGE_HELPER_NOLIMIT") == "" {
		debug.SetMemoryLimit(BridgeMemoryLimit) // as the command does with --nats
	}
	n, err := chaski.Start(chaski.Config{Name: "bench-bridge", Listen: "127.0.0.1:0", Subscriptions: []string{"out", "in"}, ReconnectAttempts: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	br, err := Start(ctx, n, Config{URLs: []string{url}, BatchAnnouncements: true})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	go func() { // the subscriber queue of the bridging node is not the test
		for range n.Messages() {
		}
	}()
	if path := os.Getenv("CHASKI_BRIDGE_HELPER_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer func() { pprof.StopCPUProfile(); f.Close() }()
		}
	}
	var ms0 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	fmt.Printf("ready %s\n", n.Addr())
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	in := br.Info()
	var ms1 runtime.MemStats
	runtime.ReadMemStats(&ms1)
	// Allocations while bridging (both directions of the run, and the
	// idle time between them), per message bridged.
	moved := max(in.MsgsOut+in.MsgsIn, 1)
	fmt.Fprintf(os.Stderr, "bridge: out %d in %d dropped %d in-dropped %d; %.2f allocs and %.0f B per message, %d GCs\n",
		in.MsgsOut, in.MsgsIn, in.Dropped, in.InDropped, float64(ms1.Mallocs-ms0.Mallocs)/float64(moved),
		float64(ms1.TotalAlloc-ms0.TotalAlloc)/float64(moved), ms1.NumGC-ms0.NumGC)
	if path := os.Getenv("CHASKI_BRIDGE_HELPER_MEMPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil {
			_ = pprof.Lookup("allocs").WriteTo(f, 0)
			f.Close()
		}
	}
	br.Close()
	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ccancel()
	_ = n.Close(cctx)
}

// runCounter counts deliveries for the current run and closes its done
// channel when the run's count is reached.
type runCounter struct {
	mu   sync.Mutex
	got  *atomic.Int64
	n    int64
	done chan struct{}
}

func (c *runCounter) reset(n int64) (*atomic.Int64, chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got, c.n, c.done = new(atomic.Int64), n, make(chan struct{})
	return c.got, c.done
}

func (c *runCounter) add() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.got != nil && c.got.Add(1) == c.n {
		close(c.done)
	}
}

// account measures the CPU a run costs per message: of this process (the
// nats-server, the nats.go clients and the Chaski node of the benchmark,
// from getrusage) and of the bridging child (from /proc, in clock ticks),
// with the child's read and write system calls (/proc/PID/io). On two CPUs
// the sum of the two CPU figures bounds the rate of a CPU-bound run: rate
// ≤ CPUs / (CPU seconds per message).
type account struct {
	start        time.Time
	self         time.Duration
	child        time.Duration
	sysr, sysw   int64
	haveChildCPU bool
}

func startAccount(h *helperProc) *account {
	a := &account{start: time.Now(), self: selfCPU()}
	if h != nil {
		a.child, a.haveChildCPU = h.cpu()
		a.sysr, a.sysw = h.syscalls()
	}
	return a
}

func (a *account) report(b *testing.B, h *helperProc) {
	b.Helper()
	wall := time.Since(a.start)
	n := float64(b.N)
	self := selfCPU() - a.self
	total := self
	b.ReportMetric(float64(self.Nanoseconds())/1e3/n, "bench-cpu-µs/msg")
	if h != nil && a.haveChildCPU {
		c, _ := h.cpu()
		r, w := h.syscalls()
		total += c - a.child
		b.ReportMetric(float64((c-a.child).Nanoseconds())/1e3/n, "bridge-cpu-µs/msg")
		b.ReportMetric(float64(r-a.sysr+w-a.sysw)/n, "bridge-rw-syscalls/msg")
	}
	b.ReportMetric(total.Seconds()/wall.Seconds(), "CPUs-busy")
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpu is the child's user and system time so far (/proc/PID/stat, fields
// 14 and 15, in ticks of 1/100 s: Linux's USER_HZ).
func (h *helperProc) cpu() (time.Duration, bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(h.cmd.Process.Pid) + "/stat")
	if err != nil {
		return 0, false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')') // the command name may hold spaces
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, false
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(ut+st) * 10 * time.Millisecond, true
}

// syscalls is the child's count of read and write system calls so far.
func (h *helperProc) syscalls() (r, w int64) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(h.cmd.Process.Pid) + "/io")
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "syscr: "); ok {
			r, _ = strconv.ParseInt(v, 10, 64)
		} else if v, ok := strings.CutPrefix(line, "syscw: "); ok {
			w, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return r, w
}
