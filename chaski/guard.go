package chaski

import (
	"context"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// guardState holds the node-wide bounds that keep hostile peers from taking
// what the node must keep: memory (echo padding, the backlog of peers that
// stopped reading), log volume, dials. docs/SECURITY.md lists the figures.
type guardState struct {
	echo echoBudget // padded pongs waiting in control lanes, all edges

	memMu      sync.Mutex
	lastFree   time.Time
	freeQueued bool

	logs logLimiter

	dials tokenBucket // dials to addresses that peers told us (reconnection, pairing, fetch answers)

	edgeSerial atomic.Uint64 // the last edge serial handed out
	forged     atomic.Uint64 // publishes dropped by forgedOrigin
}

const (
	// maxEchoBytes bounds the padded pongs queued on all edges together.
	maxEchoBytes = 32 << 20
	// heavyEdgeBytes: an edge that held this much in its queues when it
	// ended makes the node hand the freed memory back to the system.
	heavyEdgeBytes = 16 << 20
	// freeMemoryEvery spaces those hand-backs (each costs a full GC).
	freeMemoryEvery = 5 * time.Second
)

func (g *guardState) init() {
	g.echo.limit = maxEchoBytes
	g.logs.init()
	g.dials = tokenBucket{rate: dialRate, burst: dialBurst, tokens: dialBurst, last: time.Now()}
}

// newEdgeQueue is the send queue of a new edge, tied to the node's bounds.
func (n *Node) newEdgeQueue() *sendQueue {
	q := newSendQueue(n.cfg.SendQueueBytes)
	q.echo = &n.guard.echo
	return q
}

// releaseEdgeMemory runs when an edge has ended: its queues are emptied at
// once (something may still refer to the edge for a while), and when it held
// a lot, the node returns the freed memory to the system instead of keeping
// it until the runtime's scavenger gets to it: a peer that filled its queues
// and was dropped should not leave the node's RSS at its peak.
func (n *Node) releaseEdgeMemory(e *edge) {
	peak := e.q.peakBytes()
	e.q.release()
	if peak < heavyEdgeBytes {
		return
	}
	g := &n.guard
	g.memMu.Lock()
	if g.freeQueued {
		g.memMu.Unlock()
		return
	}
	g.freeQueued = true
	wait := time.Until(g.lastFree.Add(freeMemoryEvery))
	g.memMu.Unlock()
	n.goSafe(func() {
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-n.ctx.Done():
				t.Stop()
			}
		}
		debug.FreeOSMemory()
		g.memMu.Lock()
		g.freeQueued = false
		g.lastFree = time.Now()
		g.memMu.Unlock()
	})
}

// Log lines a peer can cause are bounded twice: every string attribute is
// cut to maxLogAttr bytes (a refused hello once logged a peer's whole
// "name"), and each message may be logged logBurst times at once and
// logRate times a second after that; the lines dropped meanwhile are
// counted in the next one that is logged ("suppressed=N").
const (
	maxLogAttr  = 256
	logBurst    = 20
	logRate     = 10 // per second, per message
	maxLogKinds = 512
)

type logLimiter struct {
	mu      sync.Mutex
	buckets map[string]*logBucket
	now     func() time.Time
}

type logBucket struct {
	tokens     float64
	last       time.Time
	suppressed int
}

func (l *logLimiter) init() {
	l.buckets = make(map[string]*logBucket)
	l.now = time.Now
}

// allow reports whether a line with this message may be logged now, and
// how many were suppressed since the last one that was.
func (l *logLimiter) allow(msg string) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buckets == nil {
		l.init()
	}
	now := l.now()
	b := l.buckets[msg]
	if b == nil {
		if len(l.buckets) >= maxLogKinds {
			// Messages are the program's own constants, so this does not
			// happen; if it ever does, start over rather than grow.
			clear(l.buckets)
		}
		b = &logBucket{tokens: logBurst, last: now}
		l.buckets[msg] = b
	}
	b.tokens = min(logBurst, b.tokens+now.Sub(b.last).Seconds()*logRate)
	b.last = now
	if b.tokens < 1 {
		b.suppressed++
		return false, 0
	}
	b.tokens--
	suppressed, b.suppressed = b.suppressed, 0
	return true, suppressed
}

// clipLogAttrs cuts long string (and error) attribute values in place.
func clipLogAttrs(args []any) {
	for i := 1; i < len(args); i += 2 {
		switch v := args[i].(type) {
		case string:
			if len(v) > maxLogAttr {
				args[i] = clip(v, maxLogAttr)
			}
		case error:
			if s := v.Error(); len(s) > maxLogAttr {
				args[i] = clip(s, maxLogAttr)
			}
		}
	}
}

// clip cuts s to at most max bytes on a rune boundary and says how much was
// cut.
func clip(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && cut < len(s) && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + "…(" + strconv.Itoa(len(s)-cut) + " more bytes)"
}

// Dials to addresses learnt from peers share one bucket: dialRate a second
// after a burst of dialBurst.
const (
	dialRate  = 10
	dialBurst = 20
)

// tokenBucket is a plain token bucket.
type tokenBucket struct {
	mu          sync.Mutex
	rate, burst float64
	tokens      float64
	last        time.Time
}

// take takes a token if there is one; otherwise it says how long until one.
func (b *tokenBucket) take() (bool, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
}

// wait takes a token, waiting for one; false when ctx ends first.
func (b *tokenBucket) wait(ctx context.Context) bool {
	for {
		ok, d := b.take()
		if ok {
			return true
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return false
		}
	}
}
