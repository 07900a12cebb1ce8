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
	// The original's estimator: after k samples its jitter is 100/√k and its
	// latency the mean of the half round trips in ms.
	if math.Abs(s.OriginalJitterMS-100/math.Sqrt(4)) > 1e-9 {
		t.Fatalf("original jitter %v", s.OriginalJitterMS)
	}
	if math.Abs(s.OriginalLatencyMS-0.1) > 1e-9 { // mean RTT 0.2 ms → half is 0.1 ms
		t.Fatalf("original latency %v", s.OriginalLatencyMS)
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
	d := newIDFilter(4, time.Minute)
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
	d := newIDFilter(1<<16, time.Minute)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		d.firstSight(wire.MessageID{Seq: uint64(i)})
	}
}

func TestSeqFilter(t *testing.T) {
	f := newSeqFilter(2, time.Minute)
	now := time.Unix(1000, 0).UnixNano()
	a, b, c := wire.NodeID{1}, wire.NodeID{2}, wire.NodeID{3}
	id := func(o wire.NodeID, s uint64) wire.MessageID { return wire.MessageID{Origin: o, Seq: s} }
	for s := uint64(1); s <= 100; s++ {
		if !f.firstSight(id(a, s), now, 0) {
			t.Fatalf("%d not new", s)
		}
	}
	if f.firstSight(id(a, 50), now, 0) || f.firstSight(id(a, 100), now, 0) {
		t.Fatal("duplicate accepted")
	}
	// Out of order within the window: both new once.
	if !f.firstSight(id(a, 300), now, 0) || !f.firstSight(id(a, 200), now, 0) || f.firstSight(id(a, 200), now, 0) {
		t.Fatal("out-of-order handling")
	}
	// A duplicate delayed behind 60,000 other messages is still recognised
	// (a count-bounded filter of 65,536 ids shared by all origins would have
	// forgotten it with a few busy origins).
	for s := uint64(301); s < 60301; s++ {
		f.firstSight(id(a, s), now, 0)
	}
	if f.firstSight(id(a, 50), now, 0) {
		t.Fatal("late duplicate accepted")
	}
	// More than a window behind: treated as seen.
	top := uint64(seqWindow + 200000)
	f.firstSight(id(a, top), now, 0)
	if f.firstSight(id(a, top-seqWindow), now, 0) {
		t.Fatal("number older than the window accepted")
	}
	if f.lateDrops() != 1 {
		t.Fatalf("%d late drops counted, want 1", f.lateDrops())
	}
	if !f.firstSight(id(a, top-seqWindow+1), now, 0) {
		t.Fatal("number inside the window refused")
	}
	// Bounded by origins (least recently heard evicted) and by age.
	f.firstSight(id(b, 1), now, 0)
	f.firstSight(id(c, 1), now, 0) // evicts a
	if f.len() != 2 {
		t.Fatalf("origins %d", f.len())
	}
	later := now + int64(2*time.Minute)
	if !f.firstSight(id(b, 1), later, 0) {
		t.Fatal("origin silent longer than the age bound was not forgotten")
	}
}

func TestSeqFilterLaggingClockDoesNotReset(t *testing.T) {
	f := newSeqFilter(16, time.Minute)
	o := wire.NodeID{7}
	fresh := time.Unix(10000, 0).UnixNano()
	stale := fresh - int64(5*time.Minute) // a reading from long ago
	f.firstSight(wire.MessageID{Origin: o, Seq: 1}, fresh, 0)
	f.firstSight(wire.MessageID{Origin: o, Seq: 2}, stale, 0)
	if f.firstSight(wire.MessageID{Origin: o, Seq: 1}, fresh, 0) {
		t.Fatal("a lagging clock reading reset the window")
	}
}

func TestSeqFilterSlideClearsStaleBits(t *testing.T) {
	f := newSeqFilter(1, 0)
	o := wire.NodeID{9}
	// Fill one window, then slide by less than a window in a big jump: the
	// numbers that wrapped onto old positions must read as new.
	for s := uint64(1); s <= seqWindow; s++ {
		f.firstSight(wire.MessageID{Origin: o, Seq: s}, 0, 0)
	}
	top := uint64(seqWindow + 1000)
	if !f.firstSight(wire.MessageID{Origin: o, Seq: top}, 0, 0) {
		t.Fatal("top not new")
	}
	for s := uint64(seqWindow + 1); s < top; s++ {
		if !f.firstSight(wire.MessageID{Origin: o, Seq: s}, 0, 0) {
			t.Fatalf("%d read as seen after the slide", s)
		}
	}
}

func BenchmarkSeqFilter(b *testing.B) {
	f := newSeqFilter(4096, time.Minute)
	o := wire.NodeID{1}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		f.firstSight(wire.MessageID{Origin: o, Seq: uint64(i + 1)}, 0, 0)
	}
}

// The filter's memo of the last origin never outlives an eviction: with
// room for one origin, switching origins forgets the other one entirely.
func TestSeqFilterLastOriginMemo(t *testing.T) {
	f := newSeqFilter(1, time.Minute)
	a, b := wire.NodeID{1}, wire.NodeID{2}
	now := time.Now().UnixNano()
	steps := []struct {
		origin wire.NodeID
		seq    uint64
		want   bool
	}{
		{a, 1, true}, {a, 1, false}, {a, 2, true},
		{b, 1, true}, // evicts a
		{a, 1, true}, // a is new again; evicts b
		{a, 1, false}, {b, 1, true}, {b, 1, false},
	}
	for i, s := range steps {
		if got := f.firstSight(wire.MessageID{Origin: s.origin, Seq: s.seq}, now, 0); got != s.want {
			t.Fatalf("step %d (origin %d, seq %d): %v, want %v", i, s.origin[0], s.seq, got, s.want)
		}
	}
	if f.len() != 1 {
		t.Fatalf("%d origins kept, want 1", f.len())
	}
}

// seen answers without recording: unknown and newer numbers are not seen,
// recorded ones and those older than the window are.
func TestSeqFilterSeen(t *testing.T) {
	f := newSeqFilter(8, time.Minute)
	now := time.Now().UnixNano()
	a := wire.NodeID{7}
	id := func(s uint64) wire.MessageID { return wire.MessageID{Origin: a, Seq: s} }
	if f.seen(id(5)) {
		t.Fatal("an unknown origin's number counted as seen")
	}
	f.firstSight(id(5), now, 0)
	if !f.seen(id(5)) || f.seen(id(4)) || f.seen(id(6)) {
		t.Fatal("seen disagrees with what was recorded")
	}
	if !f.firstSight(id(4), now, 0) {
		t.Fatal("seen recorded a number")
	}
	f.firstSight(id(seqWindow+10), now, 0)
	if !f.seen(id(9)) {
		t.Fatal("a number older than the window is not seen")
	}
}
