package chaski

import (
	"math"
	"testing"
	"time"

	"github.com/chaski-dev/chaski/chaski/wire"
)

func TestLatencyStatsKnownSequence(t *testing.T) {
	var tr latencyTracker
	at := time.Unix(0, 0)
	rtts := []time.Duration{100 * time.Microsecond, 300 * time.Microsecond, 200 * time.Microsecond, 200 * time.Microsecond}
	for _, r := range rtts {
		tr.add(at, r)
	}
	s := tr.snapshot()
	if s.Samples != 4 || s.Last != 200*time.Microsecond || s.Min != 100*time.Microsecond || s.Max != 300*time.Microsecond {
		t.Fatalf("basic figures: %+v", s)
	}
	if s.Mean != 200*time.Microsecond {
		t.Fatalf("mean %v", s.Mean)
	}
	// RFC 3550: J += (|D| - J)/16 over consecutive differences 200, 100, 0 µs.
	j := 0.0
	for _, d := range []float64{200e3, 100e3, 0} {
		j += (d - j) / 16
	}
	if math.Abs(float64(s.Jitter)-j) > 1 {
		t.Fatalf("jitter %v, want %v", s.Jitter, time.Duration(j))
	}
	// The seed's estimator: after k samples its jitter is 100/√k and its
	// latency the mean of the half round trips in ms.
	if math.Abs(s.SeedJitterMS-100/math.Sqrt(4)) > 1e-9 {
		t.Fatalf("seed jitter %v", s.SeedJitterMS)
	}
	if math.Abs(s.SeedLatencyMS-0.1) > 1e-9 { // mean RTT 0.2 ms → half is 0.1 ms
		t.Fatalf("seed latency %v", s.SeedLatencyMS)
	}
	if len(s.History) != 4 || s.History[0].RTT != 100*time.Microsecond || s.History[3].RTT != 200*time.Microsecond {
		t.Fatalf("history %+v", s.History)
	}
}

func TestLatencyLossWindowAndHistoryBound(t *testing.T) {
	var tr latencyTracker
	at := time.Unix(0, 0)
	for i := 0; i < LossWindow; i++ {
		if i%4 == 0 {
			tr.lose(at)
		} else {
			tr.add(at, time.Millisecond)
		}
	}
	s := tr.snapshot()
	if s.Loss != 0.25 || s.Sent != LossWindow {
		t.Fatalf("loss %v over %d", s.Loss, s.Sent)
	}
	// The window slides: a hundred answered pings clear the losses.
	for i := 0; i < LossWindow; i++ {
		tr.add(at, time.Millisecond)
	}
	if s = tr.snapshot(); s.Loss != 0 {
		t.Fatalf("loss after recovery %v", s.Loss)
	}
	if len(s.History) != HistoryLen {
		t.Fatalf("history grew to %d", len(s.History))
	}
	// Losses are marked in the history, not interpolated.
	tr.lose(at)
	s = tr.snapshot()
	if last := s.History[len(s.History)-1]; !last.Lost || last.RTT != 0 {
		t.Fatalf("loss not marked: %+v", last)
	}
	tr.reset()
	if s = tr.snapshot(); s.Samples != 0 || s.Mean != 0 || len(s.History) != 0 {
		t.Fatalf("reset: %+v", s)
	}
}

func TestDedupBoundedByCountAndAge(t *testing.T) {
	d := newDedupFilter(4, time.Minute)
	clock := time.Unix(1000, 0)
	d.now = func() time.Time { return clock }
	id := func(i uint64) wire.MessageID { return wire.MessageID{Seq: i} }
	for i := uint64(0); i < 4; i++ {
		if !d.firstSight(id(i)) {
			t.Fatalf("%d not new", i)
		}
	}
	if d.firstSight(id(2)) {
		t.Fatal("duplicate accepted")
	}
	d.firstSight(id(4)) // evicts 0, the oldest
	if d.len() != 4 {
		t.Fatalf("len %d", d.len())
	}
	if !d.firstSight(id(0)) {
		t.Fatal("evicted id still remembered")
	}
	clock = clock.Add(2 * time.Minute)
	d.firstSight(id(99)) // everything older than a minute expires
	if d.len() != 1 {
		t.Fatalf("age expiry left %d entries", d.len())
	}
}

func BenchmarkDedup(b *testing.B) {
	d := newDedupFilter(1<<16, time.Minute)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		d.firstSight(wire.MessageID{Seq: uint64(i)})
	}
}
