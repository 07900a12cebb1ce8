package chaski

import (
	"context"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chaski-dev/chaski/chaski/wire"
)

// maxPendingPings bounds the pings awaiting an answer on one edge.
const maxPendingPings = 64

// Ping sends a ping padded with size random bytes (echoed back, as in the
// original) to the peer (id, name or address) and returns the round trip. The
// sample also feeds the edge's latency statistics. PingWith takes the
// original's other options, PingAll pings every edge.
func (n *Node) Ping(ctx context.Context, peer string, size int) (time.Duration, error) {
	return n.PingWith(ctx, peer, PingOptions{Size: size})
}

// PingOptions are the options of the original's ping and _ping.
type PingOptions struct {
	// Size is the number of random padding bytes the peer echoes back (the
	// original's size).
	Size int
	// Delay waits this long before the ping is sent (the original's delay);
	// the round trip does not include it.
	Delay time.Duration
	// NoStats leaves the edge's latency statistics (and the dashboard's
	// latency events) alone: the original's latency_update=False, for a
	// probe that should not count as a sample.
	NoStats bool
}

// PingWith pings the peer (id, name or address) with opts and returns the
// round trip.
func (n *Node) PingWith(ctx context.Context, peer string, opts PingOptions) (time.Duration, error) {
	e := n.findEdge(peer)
	if e == nil {
		return 0, fmt.Errorf("%w: %s", ErrNoEdge, peer)
	}
	return n.pingEdge(ctx, e, peer, opts)
}

// PingResult is one edge's answer to PingAll.
type PingResult struct {
	PeerID string
	Name   string
	RTT    time.Duration // zero when Err is set
	Err    error
}

// PingAll pings every live edge at once with opts (the original's ping
// with no server_edge) and returns when every ping has been answered or
// has failed, one result per edge in the order of Edges.
func (n *Node) PingAll(ctx context.Context, opts PingOptions) []PingResult {
	edges := n.liveEdges()
	out := make([]PingResult, len(edges))
	var wg sync.WaitGroup
	for i, e := range edges {
		out[i] = PingResult{PeerID: e.peerStr, Name: e.name()}
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i].RTT, out[i].Err = n.pingEdge(ctx, e, e.peerStr, opts)
		}()
	}
	wg.Wait()
	return out
}

func (n *Node) pingEdge(ctx context.Context, e *edge, peer string, opts PingOptions) (time.Duration, error) {
	if opts.Size < 0 || opts.Size > n.cfg.MaxFrameBody-wire.PingFixedLen {
		return 0, fmt.Errorf("%w: ping padding of %d bytes", ErrTooLarge, opts.Size)
	}
	if opts.Delay > 0 {
		t := time.NewTimer(opts.Delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return 0, fmt.Errorf("%w: ping %s: %v", ErrTimeout, peer, ctx.Err())
		case <-n.ctx.Done():
			t.Stop()
			return 0, ErrClosed
		}
	}
	ch, err := e.sendPing(opts.Size, true, opts.NoStats)
	if err != nil {
		return 0, err
	}
	ctx, cancel := withDefaultTimeout(ctx, n.cfg.RequestTimeout)
	defer cancel()
	select {
	case rtt, ok := <-ch:
		if !ok {
			return 0, fmt.Errorf("%w: %s", ErrEdgeLost, peer)
		}
		return rtt, nil
	case <-ctx.Done():
		return 0, fmt.Errorf("%w: ping %s: %v", ErrTimeout, peer, ctx.Err())
	}
}

// ResetLatency clears the latency statistics of an edge (the original's
// reset_latency).
func (n *Node) ResetLatency(peer string) error {
	e := n.findEdge(peer)
	if e == nil {
		return fmt.Errorf("%w: %s", ErrNoEdge, peer)
	}
	e.mu.Lock()
	e.lat.reset()
	e.mu.Unlock()
	return nil
}

// PingSeries sends count pings padded with size random bytes to the peer,
// one at a time like ping -f: the edge's reader sends the next ping the
// moment a pong arrives, and the round trips are returned in order. Unlike
// count calls of Ping it wakes the caller only once, so it measures the
// link and the peer rather than the scheduler's hand-offs (a goroutine
// woken per pong adds about 10 µs on loopback). The samples also feed the
// edge's latency statistics.
func (n *Node) PingSeries(ctx context.Context, peer string, count, size int) ([]time.Duration, error) {
	e := n.findEdge(peer)
	if e == nil {
		return nil, fmt.Errorf("%w: %s", ErrNoEdge, peer)
	}
	if size < 0 || size > n.cfg.MaxFrameBody-wire.PingFixedLen {
		return nil, fmt.Errorf("%w: ping padding of %d bytes", ErrTooLarge, size)
	}
	if count <= 0 {
		return nil, nil
	}
	s := &pingSeries{count: count, rtts: make([]time.Duration, 0, min(count, 4096)), done: make(chan struct{})}
	if size > 0 {
		s.pad = make([]byte, size)
		fillRandom(s.pad)
	}
	if err := e.sendSeriesPing(s); err != nil {
		return nil, err
	}
	// The whole series shares one deadline, scaled from the per-request
	// default when the caller sets none.
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.cfg.RequestTimeout+time.Duration(count)*time.Millisecond)
		defer cancel()
	}
	select {
	case <-s.done:
		if s.err != nil {
			return nil, fmt.Errorf("%w: %s", s.err, peer)
		}
		return s.rtts, nil
	case <-ctx.Done():
		s.stop.Store(true)
		return nil, fmt.Errorf("%w: ping series to %s: %v", ErrTimeout, peer, ctx.Err())
	}
}

// pingSeries is the state of one PingSeries. After the first ping only the
// edge's reader touches rtts, until done is closed.
type pingSeries struct {
	count int
	pad   []byte
	rtts  []time.Duration
	err   error
	stop  atomic.Bool // the caller gave up
	once  sync.Once
	done  chan struct{}
}

func (s *pingSeries) finish(err error) {
	s.once.Do(func() {
		s.err = err
		close(s.done)
	})
}

// sendSeriesPing sends the next ping of s.
func (e *edge) sendSeriesPing(s *pingSeries) error {
	_, err := e.sendPingFrame(pendingPing{series: s}, s.pad)
	return err
}

// seriesPong records one pong of a series and sends the next ping; it runs
// on the edge's reader and never blocks.
func (e *edge) seriesPong(s *pingSeries, rtt time.Duration) {
	s.rtts = append(s.rtts, rtt)
	if len(s.rtts) >= s.count || s.stop.Load() {
		s.finish(nil)
		return
	}
	if err := e.sendSeriesPing(s); err != nil {
		s.finish(ErrEdgeLost)
	}
}

func (e *edge) sendPing(size int, wait, noStats bool) (chan time.Duration, error) {
	p := pendingPing{noStats: noStats}
	if wait {
		p.result = make(chan time.Duration, 1)
	}
	var pad []byte
	if size > 0 {
		pad = make([]byte, size)
		fillRandom(pad)
	}
	return e.sendPingFrame(p, pad)
}

func (e *edge) sendPingFrame(p pendingPing, pad []byte) (chan time.Duration, error) {
	// Ping ids only match pongs to pings on this edge: they need to be
	// unpredictable enough not to collide, not secret.
	id := mrand.Uint64()
	p.sent = time.Now()
	e.mu.Lock()
	if len(e.pings) >= maxPendingPings {
		e.mu.Unlock()
		return nil, fmt.Errorf("%w: %d pings already waiting on %s", ErrBusy, maxPendingPings, e.peerName)
	}
	e.pings[id] = p
	e.mu.Unlock()
	if !e.sendPingNow(wire.KindPing, &wire.Ping{ID: id, Echo: true, Padding: pad}) {
		e.mu.Lock()
		delete(e.pings, id)
		e.mu.Unlock()
		return nil, fmt.Errorf("%w: %s", ErrEdgeLost, e.peerName)
	}
	return p.result, nil
}

func init() {
	routeFrames(func(_ *Node, e *edge, f wire.Frame) error { return e.handlePing(f.Body) }, wire.KindPing)
	routeFrames(func(_ *Node, e *edge, f wire.Frame) error { return e.handlePong(f.Body) }, wire.KindPong)
}

func (e *edge) handlePing(body []byte) error {
	p, err := wire.ParsePing(body)
	if err != nil {
		return err
	}
	var pad []byte
	if p.Echo {
		pad = p.Padding
	}
	// A full control lane means the peer floods us; its pong is dropped and
	// it counts a loss. Nothing else suffers.
	e.sendPingNow(wire.KindPong, &wire.Ping{ID: p.ID, Padding: pad})
	return nil
}

func (e *edge) handlePong(body []byte) error {
	p, err := wire.ParsePing(body)
	if err != nil {
		return err
	}
	now := time.Now()
	e.mu.Lock()
	pp, ok := e.pings[p.ID]
	if !ok {
		// Unknown or already counted lost: ignore (the original tore the
		// connection down here).
		e.mu.Unlock()
		return nil
	}
	delete(e.pings, p.ID)
	rtt := now.Sub(pp.sent)
	if !pp.noStats {
		e.lat.add(now, rtt)
	}
	e.missed = 0
	name := e.peerName
	e.mu.Unlock()
	if pp.result != nil {
		pp.result <- rtt
	}
	if pp.series != nil {
		e.seriesPong(pp.series, rtt)
	}

	if !pp.noStats && e.n.events.watched() { // a ping series should not allocate per pong for nobody
		e.n.emit(&LatencyEvent{EventBase: EventBase{At: now}, PeerID: e.peerStr, Name: name, RTT: rtt})
	}
	return nil
}

// pingPeriod is one keep-alive period with the original's random spread.
func (n *Node) pingPeriod() time.Duration {
	return time.Duration(float64(n.cfg.PingInterval) * (1 + n.cfg.PingSpread*randFloat()))
}

// pingTimeout is how long a keep-alive ping may stay unanswered before it is
// counted lost.
func (n *Node) pingTimeout() time.Duration {
	t := 2 * n.cfg.PingInterval
	if t < 2*time.Second {
		t = 2 * time.Second
	}
	return t
}

// keepAliveLoop pings every edge once per period, counts lost pings and drops
// an edge only when several consecutive pings went unanswered AND nothing at
// all was heard from the peer for that long. A pong stuck behind a large
// transfer is late, not lost, because the transfer's frames keep arriving.
func (n *Node) keepAliveLoop() {
	tick := n.cfg.PingInterval / 4
	if tick > 250*time.Millisecond {
		tick = 250 * time.Millisecond
	}
	if tick < 10*time.Millisecond {
		tick = 10 * time.Millisecond
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		for _, e := range n.liveEdges() {
			n.keepAlive(e, now)
		}
	}
}

// silence is how long the peer has been silent as keep-alive counts it, and
// whether the reader is busy handling a frame now. Silence runs from the
// last frame received, or from the last time keep-alive saw the reader
// handling one, whichever is later: after a long wait in a handler the
// reader works through what is buffered before it next records a frame, and
// that wait was ours, not the peer's. Only keep-alive's goroutine calls it.
func (e *edge) silence(now time.Time) (time.Duration, bool) {
	heard := time.Unix(0, e.lastRecv.Load())
	busy := e.readerBusy.Load()
	if busy {
		e.busySeen = now
	}
	if e.busySeen.After(heard) {
		heard = e.busySeen
	}
	return now.Sub(heard), busy
}

func (n *Node) keepAlive(e *edge, now time.Time) {
	timeout := n.pingTimeout()
	// A ping someone waits for (Ping, PingSeries) is that caller's to time
	// out, but its entry must not outlive the wait: a peer that stops
	// answering would otherwise fill the edge's 64 slots with abandoned
	// pings, and every later ping would fail as busy.
	abandoned := 2 * max(timeout, n.cfg.RequestTimeout)
	var lost int
	e.mu.Lock()
	for id, p := range e.pings {
		age := now.Sub(p.sent)
		switch {
		case p.result == nil && p.series == nil && age > timeout:
			delete(e.pings, id)
			e.lat.lose(now)
			e.missed++
			lost++
		case age > abandoned:
			delete(e.pings, id)
			if p.series != nil {
				p.series.finish(ErrTimeout)
			}
		}
	}
	missed := e.missed
	due := !now.Before(e.nextPing)
	if due {
		e.nextPing = now.Add(n.pingPeriod())
	}
	name := e.peerName
	e.mu.Unlock()
	for i := 0; i < lost; i++ {
		n.emit(&LatencyEvent{EventBase: EventBase{At: now}, PeerID: e.peerStr, Name: name, Lost: true})
	}
	silent, blocked := e.silence(now)
	if missed >= n.cfg.MaxMissedPongs && !blocked && silent > time.Duration(n.cfg.MaxMissedPongs)*n.cfg.PingInterval {
		n.logf(slog.LevelWarn, "peer stopped answering", "peer", name, "missed_pongs", missed, "silent", silent.Round(time.Millisecond).String())
		e.close(fmt.Sprintf("%d pings unanswered, silent for %v", missed, silent.Round(time.Millisecond)), false, true)
		return
	}
	if due {
		_, _ = e.sendPing(0, false, false)
	}
}
