package tui

import (
	"math"
	"sort"
	"time"

	"github.com/chaski-dev/chaski/chaski"
)

// The dashboard keeps its own latency history per peer, keyed by the
// peer's node id rather than by edge: the node's tracker starts again
// when an edge comes back, but a user watching a flaky link wants to see
// the minutes before the outage, the outage itself and what came after
// on one chart, with statistics that count all of it.
const (
	latKeep    = 10 * time.Minute // the widest chart window
	latMaxPts  = 8192             // hard cap per peer (a 100 ms ping interval fills 10 min with 6000)
	latMaxPeer = 256              // peers remembered (the oldest forgotten first)
)

// latPoint is one ping outcome.
type latPoint struct {
	at   time.Time
	rtt  time.Duration
	lost bool
}

// latSpan is a time the peer was not connected (to zero while down).
type latSpan struct{ from, to time.Time }

// latStats are the figures of one peer since it was first seen or reset.
type latStats struct {
	Samples int           `json:"samples"` // answered pings
	Sent    int           `json:"sent"`    // answered + lost
	Lost    int           `json:"lost"`
	Last    time.Duration `json:"last_ns"`
	Mean    time.Duration `json:"mean_ns"`
	Min     time.Duration `json:"min_ns"`
	Max     time.Duration `json:"max_ns"`
	P95     time.Duration `json:"p95_ns"`
	StdDev  time.Duration `json:"stddev_ns"`
	Jitter  time.Duration `json:"jitter_ns"` // RFC 3550 (gain 1/16) over consecutive answered pings
	Loss    float64       `json:"loss"`      // Lost / Sent
}

// latSeries is one peer's history and running statistics.
type latSeries struct {
	peerID, name string
	pts          []latPoint // oldest first, within latKeep of the newest
	outages      []latSpan
	seen         time.Time // last event, for forgetting old peers

	n, sent, lost int
	sum, sumSq    float64 // nanoseconds
	min, max      time.Duration
	last          time.Duration
	jitter        float64
	lastOK        bool

	// p95 sorts the points kept: done at most once a second of samples.
	p95    time.Duration
	p95At  time.Time
	p95Len int
}

func (s *latSeries) add(p latPoint) {
	if n := len(s.pts); n > 0 && p.at.Before(s.pts[n-1].at) {
		p.at = s.pts[n-1].at // events may arrive a little out of order
	}
	s.pts = append(s.pts, p)
	s.seen = p.at
	s.trim(p.at)
	s.sent++
	if p.lost {
		s.lost++
		s.lastOK = false
		return
	}
	v := float64(p.rtt)
	if s.n > 0 && s.lastOK {
		d := math.Abs(v - float64(s.last))
		s.jitter += (d - s.jitter) / 16
	}
	if s.n == 0 || p.rtt < s.min {
		s.min = p.rtt
	}
	if p.rtt > s.max {
		s.max = p.rtt
	}
	s.n++
	s.sum += v
	s.sumSq += v * v
	s.last, s.lastOK = p.rtt, true
}

// trim forgets points older than latKeep (and past the hard cap). It
// compacts in steps, not per point, so that a fast ping stream does not
// copy the whole history on every sample; the few stale points left in
// between are outside every chart window.
func (s *latSeries) trim(now time.Time) {
	cut := 0
	for cut < len(s.pts) && now.Sub(s.pts[cut].at) > latKeep {
		cut++
	}
	if len(s.pts)-cut > latMaxPts {
		cut = len(s.pts) - latMaxPts*3/4
	}
	if cut > 0 && (cut >= len(s.pts)/4 || len(s.pts) > latMaxPts) {
		s.pts = append(s.pts[:0], s.pts[cut:]...)
	}
	for len(s.outages) > 0 && !s.outages[0].to.IsZero() && now.Sub(s.outages[0].to) > latKeep {
		s.outages = s.outages[1:]
	}
}

func (s *latSeries) down(at time.Time) {
	if n := len(s.outages); n > 0 && s.outages[n-1].to.IsZero() {
		return
	}
	s.outages = append(s.outages, latSpan{from: at})
	s.lastOK = false
}

func (s *latSeries) up(at time.Time) {
	if n := len(s.outages); n > 0 && s.outages[n-1].to.IsZero() {
		s.outages[n-1].to = at
	}
}

func (s *latSeries) isDown() bool {
	n := len(s.outages)
	return n > 0 && s.outages[n-1].to.IsZero()
}

func (s *latSeries) reset() {
	*s = latSeries{peerID: s.peerID, name: s.name, seen: s.seen}
}

// clone is a copy that later events do not change (a frozen view).
func (s *latSeries) clone() *latSeries {
	c := *s
	c.pts = append([]latPoint(nil), s.pts...)
	c.outages = append([]latSpan(nil), s.outages...)
	return &c
}

// stats computes the figures; p95 is over the points kept (the last
// latKeep), the others over everything since the peer was first seen.
func (s *latSeries) stats() latStats {
	st := latStats{Samples: s.n, Sent: s.sent, Lost: s.lost, Last: s.last, Min: s.min, Max: s.max, Jitter: time.Duration(s.jitter)}
	if s.sent > 0 {
		st.Loss = float64(s.lost) / float64(s.sent)
	}
	if s.n > 0 {
		mean := s.sum / float64(s.n)
		st.Mean = time.Duration(mean)
		if v := s.sumSq/float64(s.n) - mean*mean; v > 0 {
			st.StdDev = time.Duration(math.Sqrt(v))
		}
	}
	st.P95 = s.percentile95()
	return st
}

func (s *latSeries) percentile95() time.Duration {
	n := len(s.pts)
	if n == 0 {
		return 0
	}
	newest := s.pts[n-1].at
	if n == s.p95Len || (n > 64 && newest.Sub(s.p95At) < time.Second && n >= s.p95Len) {
		return s.p95
	}
	rtts := make([]time.Duration, 0, n)
	for _, p := range s.pts {
		if !p.lost && newest.Sub(p.at) <= latKeep {
			rtts = append(rtts, p.rtt)
		}
	}
	s.p95, s.p95At, s.p95Len = 0, newest, n
	if len(rtts) > 0 {
		sort.Slice(rtts, func(i, j int) bool { return rtts[i] < rtts[j] })
		s.p95 = rtts[min(len(rtts)-1, int(math.Ceil(0.95*float64(len(rtts))))-1)]
	}
	return s.p95
}

// latBook is every peer's series.
type latBook struct {
	series map[string]*latSeries
}

func newLatBook() *latBook { return &latBook{series: map[string]*latSeries{}} }

func (b *latBook) get(peerID, name string) *latSeries {
	s := b.series[peerID]
	if s == nil {
		if len(b.series) >= latMaxPeer {
			b.forgetOldest()
		}
		s = &latSeries{peerID: peerID, name: name}
		b.series[peerID] = s
	}
	if name != "" {
		s.name = name
	}
	return s
}

func (b *latBook) forgetOldest() {
	var old *latSeries
	for _, s := range b.series {
		if old == nil || s.seen.Before(old.seen) {
			old = s
		}
	}
	if old != nil {
		delete(b.series, old.peerID)
	}
}

// seed takes the node's own history of an edge the first time the
// dashboard sees the peer (the samples before the dashboard started);
// samples at or after before are left to the events that carry them.
func (b *latBook) seed(e *chaski.EdgeInfo, before time.Time) {
	if e.PeerID == "" {
		return
	}
	if _, ok := b.series[e.PeerID]; ok {
		return
	}
	s := b.get(e.PeerID, e.Name)
	for _, h := range e.Latency.History {
		if !before.IsZero() && !h.At.Before(before) {
			continue
		}
		s.add(latPoint{at: h.At, rtt: h.RTT, lost: h.Lost})
	}
	if e.State != chaski.StateUp {
		s.down(e.Since)
	}
}

func (b *latBook) event(ev chaski.Event) {
	switch e := ev.(type) {
	case *chaski.LatencyEvent:
		b.get(e.PeerID, e.Name).add(latPoint{at: e.When(), rtt: e.RTT, lost: e.Lost})
	case *chaski.EdgeUpEvent:
		s := b.get(e.Edge.PeerID, e.Edge.Name)
		s.up(e.When())
		s.seen = e.When()
	case *chaski.EdgeDownEvent:
		b.get(e.Edge.PeerID, e.Edge.Name).down(e.When())
	case *chaski.EdgeStateEvent:
		if e.State == chaski.StateReconnecting || e.State == chaski.StateClosed {
			b.get(e.PeerID, e.Name).down(e.When())
		}
	}
}
