package natsbridge

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chaski-dev/chaski/chaski"
	"github.com/nats-io/nats.go"
)

// The bridge benchmarks compare, on one in-process nats-server and in one
// run, 100-byte messages per second
//
//   - plain:        a nats.go publisher to a nats.go subscriber;
//   - mesh-to-nats: a Chaski node publishing to a bridging node, which
//     sends them to NATS, to a nats.go subscriber;
//   - nats-to-mesh: a nats.go publisher to the bridging node, which injects
//     them into the mesh, to a Chaski subscriber node;
//
// The bridging node runs in a process of its own (this test binary, run
// again as TestBridgeHelperProcess), so that its peak RSS (VmHWM) is its
// own; it is reported as peak-rss-MiB. Run with -benchtime 1000000x for the
// figures of docs/PERFORMANCE.md.

const benchSize = 100

func BenchmarkBridge(b *testing.B) {
	s := startServer(b, nil)
	payload := make([]byte, benchSize)
	for i := range payload {
		payload[i] = 'a' + byte(i%26)
	}

	b.Run("plain", func(b *testing.B) {
		pub, sub := natsConn(b, s.URL()), natsConn(b, s.URL())
		var got atomic.Int64
		done := make(chan struct{})
		n := int64(b.N)
		sb, err := sub.Subscribe("chaski.plain", func(*nats.Msg) {
			if got.Add(1) == n {
				close(done)
			}
		})
		if err != nil {
			b.Fatal(err)
		}
		_ = sb.SetPendingLimits(-1, -1)
		_ = sub.Flush()
		b.SetBytes(benchSize)
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			window(&got, i)
			if err := pub.Publish("chaski.plain", payload); err != nil {
				b.Fatal(err)
			}
		}
		_ = pub.Flush()
		wait(b, done, &got, n)
		report(b, start)
	})

	// The same with the three headers a bridge adds (what the server and
	// the subscriber pay for them, without any Chaski).
	b.Run("plain-headers", func(b *testing.B) {
		pub, sub := natsConn(b, s.URL()), natsConn(b, s.URL())
		var got atomic.Int64
		done := make(chan struct{})
		n := int64(b.N)
		sb, err := sub.Subscribe("chaski.plainh", func(*nats.Msg) {
			if got.Add(1) == n {
				close(done)
			}
		})
		if err != nil {
			b.Fatal(err)
		}
		_ = sb.SetPendingLimits(-1, -1)
		_ = sub.Flush()
		m := &nats.Msg{Subject: "chaski.plainh", Data: payload, Header: nats.Header{
			HeaderID: {"5a0c3c52-8d3e-4a55-9a43-fd4b2d1f0c11/1"}, HeaderFrom: {"bench-peer"}, HeaderTime: {"1764680000000000000"}}}
		b.SetBytes(benchSize)
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			window(&got, i)
			m.Header[HeaderID][0] = "5a0c3c52-8d3e-4a55-9a43-fd4b2d1f0c11/" + strconv.Itoa(i+1)
			if err := pub.PublishMsg(m); err != nil {
				b.Fatal(err)
			}
		}
		_ = pub.Flush()
		wait(b, done, &got, n)
		report(b, start)
	})

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
		var got atomic.Int64
		done := make(chan struct{})
		n := int64(b.N)
		sb, err := sub.Subscribe("chaski.out", func(*nats.Msg) {
			if got.Add(1) == n {
				close(done)
			}
		})
		if err != nil {
			b.Fatal(err)
		}
		_ = sb.SetPendingLimits(-1, -1)
		_ = sub.Flush()
		interest(b, []*natsServer{s}, "chaski.out", 3)
		ctx := context.Background()
		b.SetBytes(benchSize)
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			if err := node.Publish(ctx, "out", payload); err != nil {
				b.Fatal(err)
			}
		}
		wait(b, done, &got, n)
		report(b, start)
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
	br, err := Start(ctx, n, Config{URLs: []string{url}})
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
	fmt.Printf("ready %s\n", n.Addr())
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	in := br.Info()
	fmt.Fprintf(os.Stderr, "bridge: out %d in %d dropped %d in-dropped %d\n", in.MsgsOut, in.MsgsIn, in.Dropped, in.InDropped)
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
