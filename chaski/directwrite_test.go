package chaski

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestPingSeries(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "[::1]"} {
		t.Run(host, func(t *testing.T) {
			a := startNode(t, host, Config{Name: "a"})
			b := startNode(t, host, Config{Name: "b"})
			connect(t, a, b)
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			for _, size := range []int{0, 100, 70000} {
				rtts, err := a.PingSeries(ctx, b.ID(), 300, size)
				if err != nil {
					t.Fatalf("size %d: %v", size, err)
				}
				if len(rtts) != 300 {
					t.Fatalf("size %d: %d round trips, want 300", size, len(rtts))
				}
				for i, r := range rtts {
					if r <= 0 || r > waitTimeout {
						t.Fatalf("size %d: round trip %d is %v", size, i, r)
					}
				}
			}
			e, _ := a.Edge(b.ID())
			if e.Latency.Samples < 900 {
				t.Fatalf("edge statistics saw %d samples, want the 900 of the series", e.Latency.Samples)
			}
			if _, err := a.PingSeries(ctx, "nobody", 1, 0); !errors.Is(err, ErrNoEdge) {
				t.Fatalf("unknown peer: %v, want ErrNoEdge", err)
			}
			if _, err := a.PingSeries(ctx, b.ID(), 1, a.cfg.MaxFrameBody); !errors.Is(err, ErrTooLarge) {
				t.Fatalf("huge padding: %v, want ErrTooLarge", err)
			}
		})
	}
}

// A peer that goes away in the middle of a series ends it with ErrEdgeLost,
// not a hang until the deadline.
func TestPingSeriesPeerLost(t *testing.T) {
	a := startNode(t, "127.0.0.1", Config{Name: "a"})
	b := startNode(t, "127.0.0.1", Config{Name: "b"})
	connect(t, a, b)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res := make(chan error, 1)
	go func() {
		_, err := a.PingSeries(ctx, b.ID(), 100_000_000, 0)
		res <- err
	}()
	eventually(t, "the series under way", func() bool { e, _ := a.Edge(b.ID()); return e.Latency.Samples > 50 })
	b.crashForTest()
	select {
	case err := <-res:
		if !errors.Is(err, ErrEdgeLost) {
			t.Fatalf("series ended with %v, want ErrEdgeLost", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("the series did not end when its peer vanished")
	}
}

// Direct writes that the socket takes only in part leave a carry that the
// writer must send before anything else: with every direct write cut short,
// pings, pongs and messages interleave without corrupting the stream.
func TestDirectWriteCarry(t *testing.T) {
	a := startNode(t, "127.0.0.1", Config{Name: "a"})
	b := startNode(t, "127.0.0.1", Config{Name: "b"})
	if err := b.Subscribe("t"); err != nil {
		t.Fatal(err)
	}
	connect(t, a, b)
	eventually(t, "b's subscription known", func() bool { e, ok := a.Edge(b.ID()); return ok && e.Subscribes("t") })
	for _, e := range []*edge{a.findEdge(b.ID()), b.findEdge(a.ID())} {
		e.setShortWrites(5)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	const n = 200
	pubErr := make(chan error, 1)
	go func() {
		for i := 0; i < n; i++ {
			if err := a.Publish(ctx, "t", []byte(fmt.Sprintf("message %d", i))); err != nil {
				pubErr <- err
				return
			}
		}
		pubErr <- nil
	}()
	for i := 0; i < 50; i++ {
		if _, err := a.Ping(ctx, b.ID(), i*7); err != nil {
			t.Fatalf("ping %d: %v", i, err)
		}
	}
	if _, err := b.PingSeries(ctx, a.ID(), 100, 3); err != nil {
		t.Fatalf("series: %v", err)
	}
	if err := <-pubErr; err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		m, err := b.Next(ctx)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if want := fmt.Sprintf("message %d", i); !bytes.Equal(m.Data, []byte(want)) {
			t.Fatalf("got %q, want %q", m.Data, want)
		}
	}
	if !connected(a, b) {
		t.Fatal("the edge did not survive")
	}
}
