package chaski

import (
	"math"
	"time"
)

// LatencySample is one point of an edge's latency history.
type LatencySample struct {
	At   time.Time
	RTT  time.Duration // zero when Lost
	Lost bool
}

// LatencyStats is a snapshot of an edge's latency figures.
//
// OriginalLatencyMS and OriginalJitterMS reproduce the original implementation's
// estimator (half the round trip in milliseconds, updated as a Gaussian
// posterior with a fixed 100 ms measurement deviation) so that figures can be
// compared with it. Its "jitter" is only 100/√n, so the honest figures are
// the others: Jitter follows RFC 3550 (a running mean deviation of the
// difference between consecutive round trips, gain 1/16).
type LatencyStats struct {
	Samples int           // answered pings since the edge came up (or Reset)
	Last    time.Duration // last round trip
	Mean    time.Duration // arithmetic mean of all round trips
	Min     time.Duration
	Max     time.Duration
	Jitter  time.Duration // RFC 3550 interarrival-style jitter of the RTT
	Loss    float64       // fraction of pings lost in the last LossWindow pings
	Sent    int           // pings counted in the loss window
	History []LatencySample

	OriginalLatencyMS float64
	OriginalJitterMS  float64
}

// Bounds of the per-edge statistics.
const (
	LossWindow  = 100 // pings considered for Loss
	HistoryLen  = 120 // samples kept for the sparkline
	origMeasSD2 = 100.0 * 100.0
)

// latencyTracker accumulates statistics; it is not safe for concurrent use
// (the edge guards it with its mutex).
type latencyTracker struct {
	samples  int
	sum      time.Duration
	last     time.Duration
	min, max time.Duration
	jitter   float64 // nanoseconds, RFC 3550 estimator
	outcomes [LossWindow]bool
	nOut     int // outcomes recorded (≤ LossWindow)
	posOut   int
	lost     int // lost among the recorded outcomes
	hist     [HistoryLen]LatencySample
	nHist    int
	posHist  int

	origLatency float64
	origJitter  float64
}

func (t *latencyTracker) recordOutcome(lost bool) {
	if t.nOut == LossWindow {
		if t.outcomes[t.posOut] {
			t.lost--
		}
	} else {
		t.nOut++
	}
	t.outcomes[t.posOut] = lost
	if lost {
		t.lost++
	}
	t.posOut = (t.posOut + 1) % LossWindow
}

func (t *latencyTracker) recordHistory(s LatencySample) {
	t.hist[t.posHist] = s
	t.posHist = (t.posHist + 1) % HistoryLen
	if t.nHist < HistoryLen {
		t.nHist++
	}
}

// add records an answered ping.
func (t *latencyTracker) add(at time.Time, rtt time.Duration) {
	if t.samples > 0 {
		d := float64(rtt - t.last)
		if d < 0 {
			d = -d
		}
		t.jitter += (d - t.jitter) / 16
	}
	if t.samples == 0 || rtt < t.min {
		t.min = rtt
	}
	if rtt > t.max {
		t.max = rtt
	}
	t.samples++
	t.sum += rtt
	t.last = rtt
	t.recordOutcome(false)
	t.recordHistory(LatencySample{At: at, RTT: rtt})
	t.origUpdate(float64(rtt) / float64(time.Millisecond) / 2)
}

// origUpdate is the original's update rule, sample x in milliseconds.
func (t *latencyTracker) origUpdate(x float64) {
	if t.origJitter == 0 {
		t.origLatency = x
		t.origJitter = 100
		return
	}
	v := t.origJitter * t.origJitter
	prec := 1/v + 1/origMeasSD2
	t.origLatency = (t.origLatency/v + x/origMeasSD2) / prec
	t.origJitter = math.Sqrt(1 / prec)
}

// lose records a ping that was never answered in time.
func (t *latencyTracker) lose(at time.Time) {
	t.recordOutcome(true)
	t.recordHistory(LatencySample{At: at, Lost: true})
}

func (t *latencyTracker) reset() { *t = latencyTracker{} }

func (t *latencyTracker) snapshot() LatencyStats {
	s := LatencyStats{
		Samples:           t.samples,
		Last:              t.last,
		Min:               t.min,
		Max:               t.max,
		Jitter:            time.Duration(t.jitter),
		Sent:              t.nOut,
		OriginalLatencyMS: t.origLatency,
		OriginalJitterMS:  t.origJitter,
	}
	if t.samples > 0 {
		s.Mean = t.sum / time.Duration(t.samples)
	}
	if t.nOut > 0 {
		s.Loss = float64(t.lost) / float64(t.nOut)
	}
	if t.nHist > 0 {
		s.History = make([]LatencySample, 0, t.nHist)
		start := (t.posHist - t.nHist + HistoryLen) % HistoryLen
		for i := 0; i < t.nHist; i++ {
			s.History = append(s.History, t.hist[(start+i)%HistoryLen])
		}
	}
	return s
}
