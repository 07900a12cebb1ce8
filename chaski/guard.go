package chaski

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chaski-dev/chaski/chaski/pki"
	"github.com/chaski-dev/chaski/chaski/wire"
)

// guardState holds the node-wide bounds that keep hostile peers from taking
// what the node must keep: memory (echo padding, the backlog of peers that
// stopped reading), log volume, dials. docs/SECURITY.md lists the figures.
type guardState struct {
	echo echoBudget // padded pongs waiting in control lanes, all edges

	memMu      sync.Mutex
	lastFree   time.Time
	freeQueued bool
	released   int // queue bytes of ended edges since the last hand-back

	logs logLimiter

	udp   udpGuard
	dials tokenBucket // dials to addresses that peers told us (reconnection, pairing, fetch answers)

	// Inbound handshakes in progress, per source and in all (n.mu).
	inPending      map[netip.Prefix]int
	inPendingTotal int

	edgeSerial atomic.Uint64 // the last edge serial handed out
	// Publishes dropped by forgedOrigin: hops 0 from another node than
	// their origin; copies of a neighbour's messages from other edges.
	forged, neighbourCopies atomic.Uint64
	// Publishes dropped for want of a signature (Config.RequireSignatures)
	// and signed ones that did not verify (each also closes its edge).
	unsigned, badSignatures atomic.Uint64
}

const (
	// maxEchoBytes bounds the padded pongs queued on all edges together.
	maxEchoBytes = 32 << 20
	// heavyEdgeBytes: once ended edges together held this much in their
	// queues (each counted at its peak), the node hands the freed memory
	// back to the system.
	heavyEdgeBytes = 16 << 20
	// freeMemoryEvery spaces those hand-backs (each costs a full GC);
	// freeMemoryDelay is the least wait before one.
	freeMemoryEvery = 2 * time.Second
	freeMemoryDelay = 200 * time.Millisecond
)

func (g *guardState) init() {
	g.echo.limit = maxEchoBytes
	g.logs.init()
	g.udp.init()
	g.inPending = make(map[netip.Prefix]int)
	g.dials = tokenBucket{rate: dialRate, burst: dialBurst, tokens: dialBurst, last: time.Now()}
}

// newEdgeQueue is the send queue of a new edge, tied to the node's bounds.
func (n *Node) newEdgeQueue() *sendQueue {
	q := newSendQueue(n.cfg.SendQueueBytes)
	q.echo = &n.guard.echo
	return q
}

// releaseEdgeMemory runs when an edge has ended: its queues are emptied at
// once (something may still refer to the edge for a while), and when ended
// edges held a lot, the node returns the freed memory to the system instead of keeping
// it until the runtime's scavenger gets to it: a peer that filled its queues
// and was dropped should not leave the node's RSS at its peak.
func (n *Node) releaseEdgeMemory(e *edge) {
	peak := e.q.peakBytes()
	e.q.release()
	if peak < 1<<20 {
		return // the usual case: nothing worth a GC
	}
	g := &n.guard
	g.memMu.Lock()
	g.released += peak
	if g.freeQueued || g.released < heavyEdgeBytes {
		g.memMu.Unlock()
		return
	}
	g.freeQueued = true
	// A moment's delay lets the other edges of a mass drop end first, so
	// one hand-back covers them all.
	wait := max(freeMemoryDelay, time.Until(g.lastFree.Add(freeMemoryEvery)))
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
		g.memMu.Lock()
		g.released = 0
		g.memMu.Unlock()
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

// UDP answers go to whatever source address a datagram claims, so they are
// bounded: per source address (udpSourceRate a second after a burst of
// udpSourceBurst) and in all (udpRate), and a status answer larger than
// wire.StatusAmplification times its request goes only to a source that
// proved it receives our datagrams by echoing a cookie (see wire.Status).
const (
	udpSourceRate  = 20
	udpSourceBurst = 40
	udpRate        = 500
	udpSources     = 4096 // source buckets kept
	cookieEpoch    = 30 * time.Second
)

type udpGuard struct {
	mu      sync.Mutex
	secret  [32]byte
	sources map[netip.Addr]*tokenBucket
	overall tokenBucket
	refused atomic.Uint64
}

func (u *udpGuard) init() {
	_, _ = rand.Read(u.secret[:])
	u.sources = make(map[netip.Addr]*tokenBucket)
	u.overall = tokenBucket{rate: udpRate, burst: udpRate, tokens: udpRate, last: time.Now()}
}

// allow reports whether a datagram from src may be answered now.
func (u *udpGuard) allow(src netip.Addr) bool {
	u.mu.Lock()
	b := u.sources[src]
	if b == nil {
		if len(u.sources) >= udpSources {
			// Forget the sources whose buckets have refilled: they are
			// as good as new anyway.
			now := time.Now()
			for a, sb := range u.sources {
				if now.Sub(sb.last).Seconds()*sb.rate >= sb.burst {
					delete(u.sources, a)
				}
			}
		}
		if len(u.sources) >= udpSources {
			u.mu.Unlock()
			u.refused.Add(1)
			return false
		}
		b = &tokenBucket{rate: udpSourceRate, burst: udpSourceBurst, tokens: udpSourceBurst, last: time.Now()}
		u.sources[src] = b
	}
	u.mu.Unlock()
	if ok, _ := b.take(); !ok {
		u.refused.Add(1)
		return false
	}
	if ok, _ := u.overall.take(); !ok {
		u.refused.Add(1)
		return false
	}
	return true
}

// cookie is what src must echo to prove it receives our datagrams: a MAC
// of its address (not the port: a client may ask again from a new socket)
// under the node's secret, valid for one to two cookie epochs.
func (u *udpGuard) cookie(src netip.AddrPort, epoch int64) []byte {
	m := hmac.New(sha256.New, u.secret[:])
	a := src.Addr().Unmap().As16()
	m.Write(a[:])
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(epoch))
	m.Write(b[:])
	return m.Sum(nil)[:16]
}

func (u *udpGuard) newCookie(src netip.AddrPort) []byte {
	return u.cookie(src, time.Now().UnixNano()/int64(cookieEpoch))
}

func (u *udpGuard) validCookie(c []byte, src netip.AddrPort) bool {
	if len(c) != 16 {
		return false
	}
	epoch := time.Now().UnixNano() / int64(cookieEpoch)
	return hmac.Equal(c, u.cookie(src, epoch)) || hmac.Equal(c, u.cookie(src, epoch-1))
}

// Edge slots are shared fairly: one source address (an IPv6 /64 counts as
// one) may hold at most MaxEdgesPerSource edges and handshakes, and at most
// maxHandshakesPerSource handshakes at once; handshakes in progress may
// take at most half the slots, so that a flood of connections that never
// say hello cannot lock out peers that do.
const maxHandshakesPerSource = 8

// sourceKey is the source a connection counts against: its IPv4 address, or
// the /64 of its IPv6 address (one host usually owns a whole /64).
func sourceKey(a net.Addr) netip.Prefix {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Prefix{}
	}
	ip := ap.Addr().Unmap()
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}

// reserveInbound takes a handshake slot for a connection from src, or says
// why not.
func (n *Node) reserveInbound(src netip.Prefix) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	g := &n.guard
	// A full node still lets a newcomer through to the handshake when some
	// accepted edge is quiet enough to give up its slot; the edge is only
	// closed once the newcomer has completed its handshake (register), so
	// a bare TCP connection cannot evict anyone.
	var evict *edge
	if len(n.edges)+n.pending >= n.cfg.MaxEdges {
		if evict = n.evictCandidateLocked(); evict == nil {
			return n.fullReason()
		}
	}
	if g.inPendingTotal >= max(1, n.cfg.MaxEdges/2) {
		return fmt.Sprintf("%d handshakes in progress (limit %d)", g.inPendingTotal, max(1, n.cfg.MaxEdges/2))
	}
	if g.inPending[src] >= maxHandshakesPerSource {
		return fmt.Sprintf("%d handshakes in progress from this address (limit %d)", g.inPending[src], maxHandshakesPerSource)
	}
	held := g.inPending[src]
	for _, e := range n.edges {
		// The edge that will give up its slot does not count against
		// its source (it is the one most likely to be evicted later).
		if e.source == src && e != evict {
			held++
		}
	}
	if held >= n.cfg.MaxEdgesPerSource {
		return fmt.Sprintf("%d edges from this address (limit %d per address)", held, n.cfg.MaxEdgesPerSource)
	}
	n.pending++
	g.inPending[src]++
	g.inPendingTotal++
	return ""
}

// fullReason says why a full node refuses a newcomer: no edge may give
// up its slot (reserveInbound before the handshake, register after it).
func (n *Node) fullReason() string {
	return fmt.Sprintf("edge limit (%d) reached, no accepted edge quiet for %v", n.cfg.MaxEdges, n.cfg.EvictQuiet)
}

// evictCandidateLocked picks the edge to close for a newcomer when the
// node is full: one the peer opened (edges we dialled are our choice), not
// closing already, quiet for EvictQuiet or more; among those, one from the
// source holding the most edges, then the quietest. Nil: none. n.mu held.
func (n *Node) evictCandidateLocked() *edge {
	if n.cfg.EvictQuiet < 0 {
		return nil
	}
	cutoff := time.Now().Add(-n.cfg.EvictQuiet).UnixNano()
	held := make(map[netip.Prefix]int)
	for _, e := range n.edges {
		held[e.source]++
	}
	var best *edge
	var bestLast int64
	for _, e := range n.edges {
		if e.dialed {
			continue
		}
		select {
		case <-e.done:
			continue
		default:
		}
		last := e.lastUser.Load()
		if last > cutoff {
			continue
		}
		if best == nil || held[e.source] > held[best.source] ||
			(held[e.source] == held[best.source] && last < bestLast) {
			best, bestLast = e, last
		}
	}
	return best
}

func (n *Node) releaseInbound(src netip.Prefix) {
	n.mu.Lock()
	defer n.mu.Unlock()
	g := &n.guard
	n.pending--
	g.inPendingTotal--
	if g.inPending[src]--; g.inPending[src] <= 0 {
		delete(g.inPending, src)
	}
}

// misleadingFileName reports names that are safe as paths but mislead
// whoever reads them or hands them to a program, which browsers refuse or
// rewrite too: bidirectional controls ("evil\u202etxt.exe" shows as
// "evilexe.txt"), a leading '-' (read as an option by `rm *` and friends),
// and names that are only spaces or end in a space or dot (they look
// empty, or Windows drops the end). Hidden names are validFileName's
// concern: inside a directory that is sent they are fine.
func misleadingFileName(name string) bool {
	if name == "" || name[0] == '-' || strings.TrimSpace(name) == "" {
		return true
	}
	if last := name[len(name)-1]; last == ' ' || last == '.' {
		return true
	}
	for _, r := range name {
		switch {
		case r == '\u061c', r == '\u200e', r == '\u200f', // Arabic letter mark, LRM, RLM
			r >= '\u202a' && r <= '\u202e', // embeddings and overrides
			r >= '\u2066' && r <= '\u2069': // isolates
			return true
		}
	}
	return false
}

// diskFree is freeSpace, replaceable by tests (a full disk on demand).
var diskFree = freeSpace

// resumeKey is what a peer's partial files are filed under (see
// edge.resumeKey). Under TLS the certificate's name is part of it, so that
// one certificate holder cannot take over another's partial files by
// claiming its resume id.
func resumeKey(e *edge, h *wire.Hello) string {
	if len(h.Resume) != 16 {
		return e.peerStr
	}
	k := "r:" + hex.EncodeToString(h.Resume)
	if tc, ok := e.conn.(*tls.Conn); ok {
		k += "|" + pki.PeerName(tc.ConnectionState())
	}
	return k
}

// anonymousPartialAge: partial files of senders without a resume id (which
// can never come back for them) are removed after this long, not a week.
const anonymousPartialAge = time.Hour
