package chaski

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chaski-dev/chaski/chaski/wire"
)

// Benchmarks of the hot paths. Targets are checked in docs/PERFORMANCE.md,
// never by timed assertions in tests.

func BenchmarkPublishFrameEncode(b *testing.B) {
	p := wire.Publish{Name: "publisher", TTL: 64, Payload: make([]byte, 100)}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	b.SetBytes(100)
	for i := 0; i < b.N; i++ {
		p.ID.Seq = uint64(i)
		buf, _ = wire.AppendPublishFrame(buf[:0], "bench", &p)
	}
}

func BenchmarkPublishFrameDecode(b *testing.B) {
	frame, _ := wire.AppendPublishFrame(nil, "bench", &wire.Publish{Name: "publisher", TTL: 64, Payload: make([]byte, 100)})
	stream := bytes.Repeat(frame, 1024)
	b.ReportAllocs()
	b.SetBytes(100)
	r := bytes.NewReader(stream)
	fr := wire.NewReader(bufio.NewReaderSize(r, 64<<10), 0)
	for i := 0; i < b.N; i++ {
		f, err := fr.ReadFrame()
		if err != nil {
			r.Reset(stream)
			f, _ = fr.ReadFrame()
		}
		if _, err := wire.ParsePublish(f.Body); err != nil {
			b.Fatal(err)
		}
	}
}

func benchPair(b testing.TB, cfg Config) (*Node, *Node) {
	b.Helper()
	cfg.Subscriptions = []string{"bench"}
	cfg.PingInterval = time.Hour // keep-alive out of the measurement
	pub := startNode(b, "127.0.0.1", Config{Name: "pub", PingInterval: time.Hour})
	sub := startNode(b, "127.0.0.1", cfg)
	connect(b, sub, pub)
	eventually(b, "subscription known", func() bool { e, ok := pub.Edge(sub.ID()); return ok && e.Subscribes("bench") })
	return pub, sub
}

// BenchmarkPingRTT measures one ping round trip over loopback, in one
// process (both nodes share the two cores).
func BenchmarkPingRTT(b *testing.B) {
	a, c := benchPair(b, Config{Name: "sub"})
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := a.Ping(ctx, c.ID(), 0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPingSeries measures round trips of a PingSeries in one process:
// each ping is sent by the reader as the previous pong arrives, so nothing
// but the two nodes' readers runs (compare BenchmarkPingRTT, which wakes
// the caller per round trip).
func BenchmarkPingSeries(b *testing.B) {
	a, c := benchPair(b, Config{Name: "sub"})
	b.ReportAllocs()
	b.ResetTimer()
	rtts, err := a.PingSeries(context.Background(), c.ID(), b.N, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if len(rtts) != b.N {
		b.Fatalf("%d round trips, want %d", len(rtts), b.N)
	}
}

// BenchmarkMessages100B publishes 100-byte messages from one node to
// another in the same process and counts them on arrival.
func BenchmarkMessages100B(b *testing.B) {
	pub, sub := benchPair(b, Config{Name: "sub"})
	benchDelivery(b, pub, sub)
}

// BenchmarkMessagesSigned is BenchmarkMessages100B with signed publishes,
// the subscriber requiring them: the cost of Config.RequireSignatures.
func BenchmarkMessagesSigned(b *testing.B) {
	pub := startNode(b, "127.0.0.1", Config{Name: "pub", PingInterval: time.Hour, SignPublishes: true})
	sub := startNode(b, "127.0.0.1", Config{Name: "sub", Subscriptions: []string{"bench"}, PingInterval: time.Hour, RequireSignatures: true})
	connect(b, sub, pub)
	eventually(b, "subscription known", func() bool { e, ok := pub.Edge(sub.ID()); return ok && e.Subscribes("bench") })
	benchDelivery(b, pub, sub)
}

// BenchmarkMessagesThroughRoot is the same through a relaying root node.
func BenchmarkMessagesThroughRoot(b *testing.B) {
	root := startNode(b, "127.0.0.1", Config{Name: "root", Root: true, PingInterval: time.Hour})
	pub := startNode(b, "127.0.0.1", Config{Name: "pub", PingInterval: time.Hour})
	sub := startNode(b, "127.0.0.1", Config{Name: "sub", Subscriptions: []string{"bench"}, PingInterval: time.Hour})
	connect(b, pub, root)
	connect(b, sub, root)
	eventually(b, "routes", func() bool { e, ok := root.Edge(sub.ID()); return ok && e.Subscribes("bench") })
	benchDelivery(b, pub, sub)
}

// benchDelivery publishes b.N 100-byte messages from pub on "bench" and
// waits until sub has received them all.
func benchDelivery(b *testing.B, pub, sub *Node) {
	payload := make([]byte, 100)
	ctx := context.Background()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < b.N; i++ {
			if _, err := sub.Next(ctx); err != nil {
				return
			}
		}
	}()
	b.ReportAllocs()
	b.SetBytes(100)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := pub.Publish(ctx, "bench", payload); err != nil {
			b.Fatal(err)
		}
	}
	<-done
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkMesh64 runs 64 nodes in one process, in a ring with chords
// (i–i+1 and i–i+8), every node subscribed to one topic. Each iteration,
// every node publishes one message; it ends when every node has received
// the other 63 exactly once. It reports deliveries per second and the time
// to full delivery of one round.
func BenchmarkMesh64(b *testing.B) {
	const size = 64
	nodes := make([]*Node, size)
	for i := range nodes {
		nodes[i] = startNode(b, "127.0.0.1", Config{Name: fmt.Sprintf("m%02d", i), Subscriptions: []string{"mesh"},
			PingInterval: time.Hour, MessageBuffer: 1 << 16})
	}
	for i := range nodes {
		connect(b, nodes[i], nodes[(i+1)%size])
		connect(b, nodes[i], nodes[(i+8)%size])
	}
	eventually(b, "mesh routes", func() bool {
		for _, n := range nodes {
			if n.EdgeCount() != 4 {
				return false
			}
			for _, e := range n.Edges() {
				if !e.Subscribes("mesh") {
					return false
				}
			}
		}
		return true
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var got sync.WaitGroup
	var dup, lost atomic.Int64
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		got.Add(size)
		for _, n := range nodes {
			go func(n *Node) {
				defer got.Done()
				seen := make(map[string]bool, size)
				for len(seen) < size-1 {
					m, err := n.Next(ctx)
					if err != nil {
						lost.Add(int64(size - 1 - len(seen)))
						return
					}
					if seen[m.From] || m.From == n.Name() {
						dup.Add(1)
					}
					seen[m.From] = true
				}
			}(n)
		}
		for _, n := range nodes {
			if err := n.Publish(ctx, "mesh", []byte("x")); err != nil {
				b.Fatal(err)
			}
		}
		got.Wait()
	}
	if dup.Load() != 0 || lost.Load() != 0 {
		b.Fatalf("%d duplicate and %d missing deliveries", dup.Load(), lost.Load())
	}
	b.ReportMetric(float64(b.N*size*(size-1))/b.Elapsed().Seconds(), "deliveries/s")
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/round")
}
