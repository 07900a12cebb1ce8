package chaski

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/chaski-dev/chaski/chaski/wire"
)

// edge is one live connection to a peer. It owns exactly two goroutines: a
// reader that decodes and dispatches frames, and a writer that drains the
// send queue into a buffered writer and flushes when the queue runs dry.
type edge struct {
	n        *Node
	serial   uint64 // unique per node: names the edge in the duplicate filter
	conn     net.Conn
	fr       *wire.Reader // the reader goroutine's after the handshake
	peer     wire.NodeID
	peerStr  string
	dialed   bool
	dialerID wire.NodeID // who opened the connection: the duplicate tie-break
	remote   string
	source   netip.Prefix // the remote host (IPv6: its /64), for per-source limits
	// resumeKey names the peer's files for resuming: its stable resume id
	// ("r:" and hex, with the certificate's name under TLS) or its node id.
	resumeKey string
	tls       bool
	since     time.Time

	mu         sync.Mutex
	peerName   string
	listen     string
	acceptFile bool
	// peerSigned: the peer's hello says it understands signed publishes
	// (wire.KindPublishSigned); others get them with the signature cut out.
	// Set before the edge is shared, read-only after.
	peerSigned bool
	lat        latencyTracker
	pings      map[uint64]pendingPing
	missed     int
	nextPing   time.Time

	// pairTopic is set on an edge this node dialed to answer a discovery;
	// until the origin confirms the pairing (pairConfirmed), the edge does
	// not count as sharing a topic: the origin closes a second offer at
	// once, and a node must not take that short-lived edge for a pairing.
	pairTopic     string
	pairConfirmed atomic.Bool
	// pairFate decides, once, between the two uses a peer's pairing offer
	// can be put to when we are already paired for its topic: surplus
	// (fateSurplus, closed by afterEdgeUp) or the answer to the peer's own
	// discovery request that arrived meanwhile (fateAnswer, kept;
	// handleDiscover). Without it the request was answered on an edge
	// that was closed a moment later, and the peer waited for nothing.
	pairFate atomic.Int32

	route atomic.Pointer[routeInfo] // the peer's subscriptions, read on the hot path
	rc    recvCache                 // owned by the reader goroutine
	relay relayRouteCache           // owned by the reader goroutine

	q *sendQueue

	// The writer's side of the connection. wmu is held by the writer
	// while it fills bw or writes, and briefly by sendPingNow, which may
	// put a ping or pong on the socket itself when nothing is buffered.
	wmu   sync.Mutex
	bw    *bufio.Writer
	carry []byte          // the unwritten rest of a direct write
	raw   syscall.RawConn // nil when direct writes are not possible (TLS)
	// sameHost: the peer is on this machine (a loopback address, or our
	// own). File bodies then go as bytes, not with sendfile(2); see
	// sendfileSource.
	sameHost bool
	// A direct write's frame, result and step function, kept on the edge
	// (under wmu) so that a ping costs no allocation.
	now      []byte
	nowN     int
	nowErr   error
	nowStep  func(fd uintptr) bool
	nowFrame []byte
	iov      [][]byte // the writer's writev vector, reused
	writeCap int      // > 0: a direct write puts at most this many bytes (tests exercise the carry)

	bytesIn, bytesOut atomic.Uint64
	msgsIn, msgsOut   atomic.Uint64
	lastRecv          atomic.Int64 // unix nanos of the last frame received
	// lastUser: unix nanos of the last traffic other than keep-alive, a
	// frame received or data sent; an edge that only carries pings is a
	// candidate for eviction when the node is full (evictCandidateLocked).
	lastUser    atomic.Int64
	firstDirect atomic.Uint64 // 1 + the sequence number of the peer's first own message on this edge; 0 = none yet
	readerBusy  atomic.Bool   // the reader is handling a frame (it may wait on queues), not reading
	busySeen    time.Time     // keep-alive's last sight of a busy reader (keep-alive's goroutine only)
	writerIdle  atomic.Bool   // the writer has written everything it took and waits for more

	// Counters for metrics (see EdgeInfo).
	framesIn     atomic.Uint64
	queueDrops   atomic.Uint64 // frames not queued because a lane was full
	directFrames atomic.Uint64 // pings and pongs written past the queue

	done        chan struct{} // closed when the edge starts shutting down
	writerDone  chan struct{}
	closeOnce   sync.Once
	closeReason string
	reconnect   bool
	goodbye     []byte // sent by the writer before it closes the connection
}

type routeInfo struct {
	subs map[string]struct{}
	list []string
	root bool
}

func newRoute(subs []string, root bool) *routeInfo {
	r := &routeInfo{subs: make(map[string]struct{}, len(subs)), root: root}
	for _, s := range subs {
		if _, dup := r.subs[s]; !dup {
			r.subs[s] = struct{}{}
			r.list = append(r.list, s)
		}
	}
	return r
}

func (r *routeInfo) wants(topic string) bool {
	if r.root {
		return true
	}
	_, ok := r.subs[topic]
	return ok
}

type pendingPing struct {
	sent   time.Time
	result chan time.Duration // nil for keep-alive pings
	series *pingSeries        // set for the pings of a PingSeries
	// noStats: the round trip does not feed the latency statistics
	// (PingOptions.NoStats).
	noStats bool
}

func (e *edge) name() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.peerName
}

func (e *edge) listenAddr() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.listen
}

func (e *edge) info() EdgeInfo {
	r := e.route.Load()
	e.mu.Lock()
	defer e.mu.Unlock()
	return EdgeInfo{
		PeerID:        e.peerStr,
		Name:          e.peerName,
		Address:       e.listen,
		Remote:        e.remote,
		Subscriptions: append([]string(nil), r.list...),
		Root:          r.root,
		AcceptsFiles:  e.acceptFile,
		State:         StateUp,
		Since:         e.since,
		Dialed:        e.dialed,
		TLS:           e.tls,
		BytesIn:       e.bytesIn.Load(),
		BytesOut:      e.bytesOut.Load(),
		MsgsIn:        e.msgsIn.Load(),
		MsgsOut:       e.msgsOut.Load(),
		FramesIn:      e.framesIn.Load(),
		FramesOut:     e.q.frames.Load() + e.directFrames.Load(),
		QueueDrops:    e.queueDrops.Load(),
		Latency:       e.lat.snapshot(),
	}
}

// close starts the edge's shutdown once. With sayGoodbye the peer is told
// the close is deliberate; reconnect tells whether this side should try to
// reconnect once the edge has ended.
func (e *edge) close(reason string, sayGoodbye, reconnect bool) {
	e.closeOnce.Do(func() {
		e.closeReason = reason
		e.reconnect = reconnect && !e.n.closing.Load()
		if sayGoodbye {
			e.goodbye, _ = wire.AppendControlFrame(nil, wire.KindGoodbye, "", &wire.Goodbye{Reason: reason})
		}
		// Unblock a writer stuck on a peer that does not read, but leave it
		// a moment to deliver the goodbye.
		_ = e.conn.SetWriteDeadline(time.Now().Add(time.Second))
		close(e.done)
	})
}

// ---- connection set-up ----

// Connect opens an edge to the node at addr (ip:port, [ipv6]:port or
// host:port; a original-style "Name@ip:port" is accepted too) and returns once
// the handshake has completed. Connecting to a peer that already has an edge
// returns that edge.
func (n *Node) Connect(ctx context.Context, addr string) (EdgeInfo, error) {
	e, err := n.connect(ctx, addr, nil)
	if err != nil {
		// Logged (and so shown in a dashboard's log pane) as well as
		// returned: callers often connect in the background.
		n.logf(slog.LevelInfo, "connect failed", "address", addr, "err", err.Error())
		return EdgeInfo{}, err
	}
	return e.info(), nil
}

// pairHello carries the pairing fields of a discovery connection.
type pairHello struct {
	topic   string
	request []byte
}

func (n *Node) connect(ctx context.Context, addr string, pair *pairHello) (*edge, error) {
	if n.closing.Load() {
		return nil, ErrClosed
	}
	addr, err := ParseAddr(addr)
	if err != nil {
		return nil, err
	}
	if addr == n.addr {
		return nil, fmt.Errorf("%w: %s", ErrSelfConnect, addr)
	}
	if e := n.edgeByAddr(addr); e != nil {
		if pair != nil {
			// Answering a discovery of a peer we are already connected to
			// (its request and an edge of its own crossed): answer there.
			n.answerOnEdge(e, pair.topic, pair.request)
		}
		return e, nil
	}
	if !n.reserveHandshake() {
		return nil, fmt.Errorf("chaski: connect %s: edge limit (%d) reached", addr, n.cfg.MaxEdges)
	}
	defer n.releaseHandshake()
	dctx, cancel := context.WithTimeout(ctx, n.cfg.DialTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("chaski: cannot connect to %s: %w", addr, unwrapOp(err))
	}
	setNoDelay(conn)
	if n.cfg.ClientTLS != nil {
		tc := tls.Client(&stallConn{Conn: conn}, n.cfg.ClientTLS.Clone())
		if err := tc.HandshakeContext(dctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("%w: TLS with %s: %w", ErrHandshake, addr, err)
		}
		conn = tc
	}
	e, existing, err := n.handshake(ctx, conn, true, pair, nil)
	if existing != nil {
		return existing, nil
	}
	if err != nil {
		return nil, err
	}
	return e, nil
}

func (n *Node) edgeByAddr(addr string) *edge {
	n.mu.RLock()
	defer n.mu.RUnlock()
	for _, e := range n.edges {
		if e.listenAddr() == addr {
			return e
		}
	}
	return nil
}

func (n *Node) reserveHandshake() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.edges)+n.pending >= n.cfg.MaxEdges {
		return false
	}
	n.pending++
	return true
}

func (n *Node) releaseHandshake() {
	n.mu.Lock()
	n.pending--
	n.mu.Unlock()
}

func (n *Node) acceptLoop() {
	var delay time.Duration
	for {
		conn, err := n.ln.Accept()
		if err != nil {
			if n.closing.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off instead of
			// spinning.
			if delay == 0 {
				delay = 5 * time.Millisecond
			} else if delay < time.Second {
				delay *= 2
			}
			n.logf(slog.LevelWarn, "accept failed", "err", err)
			select {
			case <-time.After(delay):
			case <-n.ctx.Done():
				return
			}
			continue
		}
		delay = 0
		src := sourceKey(conn.RemoteAddr())
		if why := n.reserveInbound(src); why != "" {
			n.logf(slog.LevelWarn, "connection refused", "remote", conn.RemoteAddr().String(), "reason", why)
			conn.Close()
			continue
		}
		n.goSafe(func() {
			// The slot is given back as soon as the edge is registered
			// (handshake calls release then), not once the edge's
			// start-up work is done: a peer that dialled again the
			// moment our hello arrived must not find the slots of
			// handshakes that are over still taken.
			var once sync.Once
			release := func() { once.Do(func() { n.releaseInbound(src) }) }
			defer release()
			setNoDelay(conn)
			c := conn
			if n.cfg.ServerTLS != nil {
				tc := tls.Server(&stallConn{Conn: conn}, n.cfg.ServerTLS)
				ctx, cancel := context.WithTimeout(n.ctx, n.cfg.HandshakeTimeout)
				err := tc.HandshakeContext(ctx)
				cancel()
				if err != nil {
					n.logf(slog.LevelWarn, "TLS handshake refused", "remote", conn.RemoteAddr().String(), "reason", tlsReason(err))
					conn.Close()
					return
				}
				c = tc
			}
			if _, _, err := n.handshake(n.ctx, c, false, nil, release); err != nil {
				n.logf(slog.LevelWarn, "handshake refused", "remote", conn.RemoteAddr().String(), "reason", err.Error())
			}
		})
	}
}

func tlsReason(err error) string {
	s := err.Error()
	var rec tls.RecordHeaderError
	if errors.As(err, &rec) {
		return "peer does not speak TLS (plaintext peer?): " + s
	}
	return s
}

// sameHost reports whether a connection between local and remote stays on
// this machine: the remote address is a loopback one or our own.
func sameHost(local, remote net.Addr) bool {
	la, ok1 := local.(*net.TCPAddr)
	ra, ok2 := remote.(*net.TCPAddr)
	return ok1 && ok2 && (ra.IP.IsLoopback() || ra.IP.Equal(la.IP))
}

func setNoDelay(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
}

func unwrapOp(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		var sc *os.SyscallError
		if errors.As(op.Err, &sc) {
			return sc.Err
		}
		return op.Err
	}
	return err
}

// handshake exchanges preambles and Hello frames under a deadline, then
// registers and starts the edge. The dialer speaks first. When the peer
// already has an edge with us, existing is that edge and no new one starts.
//
// registered, when not nil, is called once the edge is registered and our
// hello sent: the handshake is over then (the accept loop gives back the
// connection's handshake slot).
func (n *Node) handshake(ctx context.Context, conn net.Conn, dialed bool, pair *pairHello, registered func()) (e *edge, existing *edge, err error) {
	remote := conn.RemoteAddr().String()
	fail := func(format string, args ...any) (*edge, *edge, error) {
		conn.Close()
		return nil, nil, fmt.Errorf("%w: %s: %s", ErrHandshake, remote, fmt.Sprintf(format, args...))
	}
	deadline := time.Now().Add(n.cfg.HandshakeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	hello := n.hello(pair)
	sendHello := func() error {
		b := wire.AppendPreamble(nil)
		b, err := wire.AppendControlFrame(b, wire.KindHello, "", hello)
		if err != nil {
			return err
		}
		_, err = conn.Write(b)
		return err
	}
	if dialed {
		if err := sendHello(); err != nil {
			return fail("sending hello: %v", err)
		}
	}
	// The reader is kept for the edge: it may already hold frames that
	// follow the hello. Its limit is raised to MaxFrameBody once the
	// handshake is done (readLoop).
	fr := wire.NewReader(conn, wire.MaxHandshakeBody)
	pre, err := fr.ReadRaw(wire.PreambleLen)
	if err != nil {
		return fail("reading preamble: %v", err)
	}
	if _, err := wire.ParsePreamble(pre); err != nil {
		if errors.Is(err, wire.ErrVersion) {
			// No goodbye: the peer may not parse our framing.
			conn.Close()
			return nil, nil, fmt.Errorf("%w: %s: %v", ErrVersionMismatch, remote, err)
		}
		return fail("%v", err)
	}
	f, err := fr.ReadFrame()
	if err != nil {
		return fail("reading hello: %v", err)
	}
	if f.Kind == wire.KindGoodbye {
		var g wire.Goodbye
		_ = wire.Unmarshal(f.Body, &g)
		conn.Close()
		if g.Reason == reasonDuplicate {
			// The peer kept another connection with us. We dialed its
			// listening address, so that finds the edge kept, which may
			// still be finishing its own handshake on our side.
			for wait := time.Millisecond; ; wait *= 2 {
				if ex := n.edgeByAddr(remote); ex != nil {
					return nil, ex, nil
				}
				if time.Now().After(deadline) || ctx.Err() != nil {
					break
				}
				time.Sleep(min(wait, 50*time.Millisecond))
			}
		}
		return nil, nil, fmt.Errorf("%w: %s: %s", ErrRefused, remote, g.Reason)
	}
	if f.Kind != wire.KindHello {
		return fail("expected hello, got %v", f.Kind)
	}
	var h wire.Hello
	if err := wire.Unmarshal(f.Body, &h); err != nil {
		return fail("malformed hello: %v", err)
	}
	if h.Version != wire.Version {
		conn.Close()
		return nil, nil, fmt.Errorf("%w: %s: peer speaks %d, we speak %d", ErrVersionMismatch, remote, h.Version, wire.Version)
	}
	if err := validateHello(&h); err != nil {
		return fail("%v", err)
	}
	var peer wire.NodeID
	copy(peer[:], h.ID)
	if peer == n.id {
		conn.Close()
		return nil, nil, fmt.Errorf("%w: %s", ErrSelfConnect, remote)
	}
	listen := fixListen(h.Listen, conn.RemoteAddr())
	e = &edge{
		n:          n,
		serial:     n.guard.edgeSerial.Add(1),
		conn:       conn,
		fr:         fr,
		peer:       peer,
		peerStr:    idString(peer),
		dialed:     dialed,
		remote:     remote,
		source:     sourceKey(conn.RemoteAddr()),
		since:      time.Now(),
		peerName:   h.Name,
		listen:     listen,
		acceptFile: h.AcceptFiles,
		peerSigned: h.Signed,
		pings:      make(map[uint64]pendingPing),
		q:          n.newEdgeQueue(),
		bw:         bufio.NewWriterSize(conn, 64<<10),
		done:       make(chan struct{}),
		writerDone: make(chan struct{}),
	}
	if pair != nil && dialed {
		e.pairTopic = pair.topic
	}
	if tc, ok := conn.(*tls.Conn); ok {
		e.tls = true
		if sc, ok := tc.NetConn().(*stallConn); ok {
			sc.edge.Store(e)
		}
	}
	var src io.Reader = conn
	if tc, ok := conn.(*net.TCPConn); ok && directWrites {
		if rc, err := tc.SyscallConn(); err == nil {
			e.raw = rc
			src = newRawReader(rc)
			e.sameHost = sameHost(tc.LocalAddr(), tc.RemoteAddr())
		}
	}
	fr.SetSource(&idleDeadlineReader{src: src, conn: conn, idle: n.deadTimeout()})
	e.resumeKey = resumeKey(e, &h)
	e.route.Store(newRoute(h.Subs, h.Root))
	if dialed {
		e.dialerID = n.id
	} else {
		e.dialerID = peer
	}
	e.lastRecv.Store(time.Now().UnixNano())
	e.lastUser.Store(e.lastRecv.Load())
	e.nextPing = time.Now().Add(n.pingPeriod() / 4)

	kept, regErr := n.register(e)
	if regErr != nil {
		if !dialed {
			// Answer with the reason instead of a hello.
			b := wire.AppendPreamble(nil)
			b, _ = wire.AppendControlFrame(b, wire.KindGoodbye, "", &wire.Goodbye{Reason: regErr.Error()})
			_, _ = conn.Write(b)
		}
		conn.Close()
		if kept != nil {
			return nil, kept, nil
		}
		return nil, nil, fmt.Errorf("%w: %s: %v", ErrRefused, remote, regErr)
	}
	// The handshake slot is given back before our hello goes out: once
	// the peer has it, it may dial again at once, and the edge must not
	// count twice (registered and still in the handshake) against the
	// limit that connection is checked against.
	if registered != nil {
		registered()
	}
	if !dialed {
		if err := sendHello(); err != nil {
			n.unregister(e)
			return fail("sending hello: %v", err)
		}
	}
	_ = conn.SetDeadline(time.Time{})
	n.wg.Add(2)
	go e.writeLoop()
	go e.readLoop()
	info := e.info()
	n.logf(slog.LevelInfo, "edge up", "peer", info.Name, "address", info.Address, "dialed", dialed)
	n.emit(&EdgeUpEvent{EventBase: now(), Edge: info})
	n.sendSeqMark(e)
	n.afterEdgeUp(e, &h)
	return e, nil, nil
}

const reasonDuplicate = "duplicate connection"

func (n *Node) hello(pair *pairHello) *wire.Hello {
	n.mu.RLock()
	subs := n.subscriptionsLocked()
	n.mu.RUnlock()
	h := &wire.Hello{
		Version:     wire.Version,
		ID:          n.id[:],
		Name:        n.cfg.Name,
		Listen:      n.addr,
		Subs:        subs,
		Root:        n.cfg.Root,
		AcceptFiles: n.acceptsFiles(),
		Resume:      n.cfg.ResumeID,
		Signed:      !n.noSignedHello,
	}
	if pair != nil {
		h.PairTopic = pair.topic
		h.PairRequest = pair.request
	}
	return h
}

func validateHello(h *wire.Hello) error {
	if !wire.ValidID(h.ID) {
		return errors.New("hello without a valid node id")
	}
	if !wire.ValidName(h.Name, wire.MaxNameLen) {
		return fmt.Errorf("invalid peer name %q", clip(h.Name, 80))
	}
	if len(h.Listen) > wire.MaxAddrLen {
		return errors.New("listening address too long")
	}
	if len(h.Resume) != 0 && len(h.Resume) != 16 {
		return errors.New("resume id of a wrong length")
	}
	if len(h.Subs) > wire.MaxSubscriptions {
		return fmt.Errorf("%d subscriptions (limit %d)", len(h.Subs), wire.MaxSubscriptions)
	}
	for _, s := range h.Subs {
		if !wire.ValidName(s, wire.MaxTopicLen) {
			return fmt.Errorf("invalid subscription %q", clip(s, 80))
		}
	}
	return nil
}

// fixListen replaces an unspecified listening host (0.0.0.0, ::) by the
// address the connection came from, so that the address is dialable.
func fixListen(listen string, remote net.Addr) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	ip := net.ParseIP(host)
	if host == "" || (ip != nil && ip.IsUnspecified()) {
		if ta, ok := remote.(*net.TCPAddr); ok {
			return net.JoinHostPort(ta.IP.String(), port)
		}
	}
	return listen
}

// register adds a handshaken edge. For a peer that already has an edge, the
// connection opened by the node with the smaller id wins (both sides apply
// the same rule, so they agree); a second connection from the same dialer
// loses to the first.
func (n *Node) register(e *edge) (kept *edge, err error) {
	n.mu.Lock()
	if n.closing.Load() {
		n.mu.Unlock()
		return nil, ErrClosed
	}
	old, dup := n.edges[e.peer]
	if dup {
		// A real duplicate is a crossed dial, decided on both sides within
		// a handshake, or a peer coming back over an edge that died on its
		// side first; a second connection claiming the id of an edge older
		// than a handshake that still hears from its peer is a stranger
		// taking the peer's name, and the edge is kept.
		established := time.Since(old.since) > n.cfg.HandshakeTimeout &&
			time.Since(time.Unix(0, old.lastRecv.Load())) < 2*n.cfg.PingInterval
		if old.dialerID == e.dialerID || bytes.Compare(old.dialerID[:], e.dialerID[:]) < 0 || established {
			n.mu.Unlock()
			return old, errors.New(reasonDuplicate)
		}
	}
	// A newcomer let in while the node was full takes the slot of the
	// quietest accepted edge, now that it has proved itself in a handshake.
	var evict *edge
	if !e.dialed && !dup && len(n.edges) >= n.cfg.MaxEdges {
		if evict = n.evictCandidateLocked(); evict == nil {
			n.mu.Unlock()
			return nil, errors.New(n.fullReason())
		}
	}
	n.edges[e.peer] = e
	n.routeGen.Add(1)
	for addr, g := range n.ghosts {
		if addr == e.listen || g.peerID == e.peerStr {
			g.stop()
		}
	}
	n.mu.Unlock()
	if dup {
		old.close(reasonDuplicate, true, false)
	}
	if evict != nil {
		quiet := time.Since(time.Unix(0, evict.lastUser.Load())).Truncate(time.Second)
		reason := fmt.Sprintf("evicted: quiet for %.0fs to make room", quiet.Seconds())
		evict.close(reason, true, false)
		n.logf(slog.LevelInfo, "edge evicted", "peer", evict.peerStr, "remote", evict.remote, "reason", reason, "for", e.peerStr)
	}
	return nil, nil
}

func (n *Node) unregister(e *edge) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.edges[e.peer] == e {
		delete(n.edges, e.peer)
		n.routeGen.Add(1)
		return true
	}
	return false
}

// ---- the writer ----

const writeBatchBudget = 256 << 10

func (e *edge) writeLoop() {
	defer e.n.wg.Done()
	defer close(e.writerDone)
	var ctrl [][]byte
	var data []dataSeg
	fail := func(err error) {
		e.close("write failed: "+describeNetErr(err, e.n.cfg.WriteTimeout), false, true)
	}
	for {
		ctrl, data = e.q.take(ctrl[:0], data[:0], writeBatchBudget)
		if len(data) > 0 {
			// Data we send (a subscriber of ours) is talk as much as data
			// we receive: such an edge is never quiet enough to evict.
			e.lastUser.Store(time.Now().UnixNano())
		}
		if len(ctrl) == 0 && len(data) == 0 {
			e.wmu.Lock()
			err := e.flushLocked()
			if err == nil {
				// An idle socket has no deadline, so that a direct write
				// (which never waits) is not refused for an old one.
				_ = e.conn.SetWriteDeadline(time.Time{})
			}
			e.wmu.Unlock()
			if err != nil {
				fail(err)
				break
			}
			e.q.trim()
			// Everything taken so far is on the socket: Flush may return.
			e.writerIdle.Store(true)
			select {
			case <-e.q.wake:
				e.writerIdle.Store(false)
				continue
			case <-e.done:
			}
			break
		}
		e.wmu.Lock()
		_ = e.conn.SetWriteDeadline(time.Now().Add(e.n.cfg.WriteTimeout))
		// Checked after setting the deadline, so a close that shortened it
		// is never overridden.
		select {
		case <-e.done:
			// Shutting down: drop the backlog, keep only the goodbye.
			e.wmu.Unlock()
			e.q.done(data)
			e.q.ctrlDone(ctrl)
			goto shutdown
		default:
		}
		var written int
		var err error
		if e.raw != nil {
			written, err = e.writevLocked(ctrl, data)
		} else {
			written, err = e.writeCarryLocked()
			for _, f := range ctrl {
				if err != nil {
					break
				}
				_, err = e.bw.Write(f)
				written += len(f)
			}
			for i := range data {
				if err != nil {
					break
				}
				_, err = e.bw.Write(data[i].b)
				written += len(data[i].b)
				if err == nil && data[i].file != nil {
					var n int
					n, err = e.writeFileBodyLocked(&data[i], nil)
					written += n
				}
			}
		}
		e.wmu.Unlock()
		e.q.done(data)
		e.q.ctrlDone(ctrl)
		e.bytesOut.Add(uint64(written))
		e.n.bytesOut.Add(uint64(written))
		clear(ctrl)
		clear(data)
		if err != nil {
			fail(err)
			break
		}
	}
shutdown:
	e.wmu.Lock()
	if e.goodbye != nil {
		_ = e.conn.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := e.writeCarryLocked(); err == nil {
			if _, err := e.bw.Write(e.goodbye); err == nil {
				_ = e.bw.Flush()
			}
		}
	}
	e.conn.Close()
	e.wmu.Unlock()
}

// flushLocked puts everything buffered on the socket (the writer, wmu held).
func (e *edge) flushLocked() error {
	if e.bw.Buffered() == 0 && len(e.carry) == 0 {
		return nil
	}
	_ = e.conn.SetWriteDeadline(time.Now().Add(e.n.cfg.WriteTimeout))
	n, err := e.writeCarryLocked()
	e.bytesOut.Add(uint64(n))
	e.n.bytesOut.Add(uint64(n))
	if err != nil {
		return err
	}
	return e.bw.Flush()
}

// writevLocked puts a batch on a plain TCP socket with writev(2): the carry
// of a direct write, then the control frames, then the data segments,
// without copying them into bw first (which this path leaves empty). The
// batch is at most writeBatchBudget bytes of data plus the control lane,
// so it is written at once; the socket's deadline bounds the wait.
func (e *edge) writevLocked(ctrl [][]byte, data []dataSeg) (int, error) {
	iov := e.iov[:0]
	if len(e.carry) > 0 {
		iov = append(iov, e.carry)
	}
	iov = append(iov, ctrl...)
	var total int
	var err error
	st := writeStall{since: time.Now()}
	for i := range data {
		s := &data[i]
		iov = append(iov, s.b)
		if s.file == nil {
			continue
		}
		// A file segment: what is gathered so far (its header last), then
		// its body straight from the file.
		var n int
		n, err = e.writeIovLocked(iov, &st)
		total += n
		clear(iov)
		iov = iov[:0]
		if err != nil {
			break
		}
		n, err = e.writeFileBodyLocked(s, &st)
		total += n
		if err != nil {
			break
		}
	}
	if err == nil && len(iov) > 0 {
		var n int
		n, err = e.writeIovLocked(iov, &st)
		total += n
	}
	e.carry = e.carry[:0]
	clear(iov) // WriteTo advanced its own copy of the slice header
	e.iov = iov[:0]
	return total, err
}

// writeIovLocked writes iov whole with writev(2) (the raw path's writer).
func (e *edge) writeIovLocked(iov [][]byte, st *writeStall) (int, error) {
	bufs := net.Buffers(iov)
	var total int64
	var err error
	for len(bufs) > 0 {
		var n int64
		n, err = bufs.WriteTo(e.conn)
		total += n
		// WriteTo leaves bufs at what is still unwritten.
		if err = st.check(e, n > 0, err); err != errKeepWriting {
			break
		}
	}
	return int(total), err
}

// writeFileBodyLocked writes the body of a file segment: with sendfile(2)
// where it can, the rest read from the file. The frame's header is on the
// socket already, so the body is always written whole: bytes the file no
// longer has (it shrank) go as zeros, which the receiver rejects as a
// chunk that does not match its leaf, and the edge stays in step.
func (e *edge) writeFileBodyLocked(s *dataSeg, st *writeStall) (int, error) {
	done := 0
	if e.raw != nil {
		var err error
		done, err = e.sendfileLocked(s.file, s.fileOff, s.fileLen, st)
		if err != nil {
			return done, err
		}
	}
	if done == s.fileLen {
		return done, nil
	}
	buf := make([]byte, s.fileLen-done)
	_, _ = s.file.ReadAt(buf, s.fileOff+int64(done)) // short: zeros stay
	if e.raw == nil {
		n, err := e.bw.Write(buf)
		return done + n, err
	}
	n, err := e.writeIovLocked([][]byte{buf}, st)
	return done + n, err
}

// closing reports whether the edge has started to shut down.
func (e *edge) closing() bool {
	select {
	case <-e.done:
		return true
	default:
		return false
	}
}

// writeCarryLocked buffers the rest of a frame that a direct write (see
// sendPingNow) could only partly put on the socket; it must precede
// anything else the writer sends.
func (e *edge) writeCarryLocked() (int, error) {
	if len(e.carry) == 0 {
		return 0, nil
	}
	n, err := e.bw.Write(e.carry)
	e.carry = e.carry[:0]
	return n, err
}

// errKeepWriting tells a writer that hit its deadline to go on.
var errKeepWriting = errors.New("keep writing")

// writeStallError ends a write that made no progress for too long.
type writeStallError struct {
	stalled time.Duration
	silent  bool // the peer was not heard from either
	err     error
}

func (e *writeStallError) Error() string {
	if e.silent {
		return fmt.Sprintf("peer accepted no data for %v and sent none (stopped reading?)", e.stalled.Round(time.Millisecond))
	}
	return fmt.Sprintf("peer accepted no data for %v (stopped reading?)", e.stalled.Round(time.Millisecond))
}
func (e *writeStallError) Unwrap() error { return e.err }

// writeStall decides what a write does when it reaches its deadline. The
// deadline bounds a wait without progress, not the whole write: a peer that
// reads, however slowly (its consumer is the bottleneck and backpressure is
// doing its job), keeps the edge. And progress shows late: a peer whose
// receive buffer grew to megabytes while it read fast reopens a zero
// window only after it has read about a sixteenth of that buffer, which a
// slow consumer may take minutes to do. So a write without progress goes
// on waiting while the peer is still heard from (it keeps sending, or our
// own reader is busy with what it sent), for at most MaxWriteStall; a peer
// that is silent too is dropped after one WriteTimeout.
type writeStall struct {
	since time.Time // the last progress
}

// check returns errKeepWriting (with a new deadline set) or the error that
// ends the write.
func (st *writeStall) check(e *edge, progress bool, err error) error {
	var ne net.Error
	if err == nil || !errors.As(err, &ne) || !ne.Timeout() || e.closing() {
		return err
	}
	now := time.Now()
	timeout := e.n.cfg.WriteTimeout
	if progress {
		st.since = now
	}
	stalled := now.Sub(st.since)
	heard := e.readerBusy.Load() || now.Sub(time.Unix(0, e.lastRecv.Load())) < timeout
	if progress || (heard && stalled < e.n.cfg.MaxWriteStall) {
		_ = e.conn.SetWriteDeadline(now.Add(timeout))
		if e.closing() { // a close shortened the deadline meanwhile
			return err
		}
		return errKeepWriting
	}
	return &writeStallError{stalled: stalled, silent: !heard, err: err}
}

// stallConn is the TCP connection under a TLS edge. A tls.Conn cannot
// resume a write that timed out, so writeStall's rule is applied here,
// below it: a write that reaches its deadline goes on with a new one as long
// as the rule allows, and the tls.Conn sees a timeout only when the edge
// gives up. Before the edge exists (the handshakes) writes are plain.
type stallConn struct {
	net.Conn
	edge atomic.Pointer[edge]
}

func (c *stallConn) Write(p []byte) (int, error) {
	e := c.edge.Load()
	if e == nil {
		return c.Conn.Write(p)
	}
	st := writeStall{since: time.Now()}
	total := 0
	for {
		n, err := c.Conn.Write(p)
		total += n
		p = p[n:]
		if err = st.check(e, n > 0, err); err != errKeepWriting {
			return total, err
		}
	}
}

func describeNetErr(err error, writeTimeout time.Duration) string {
	var se *writeStallError
	if errors.As(err, &se) {
		return se.Error()
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Sprintf("peer accepted no data for %v (stopped reading?)", writeTimeout)
	}
	return unwrapOp(err).Error()
}

// sendCtrl queues a control frame; false when the edge is closing or its
// control lane is full.
func (e *edge) sendCtrl(f []byte) bool {
	if e.closing() {
		return false
	}
	if !e.q.pushCtrl(f) {
		e.queueDrops.Add(1)
		return false
	}
	return true
}

// sendData queues a data frame, waiting while the data lane is full.
func (e *edge) sendData(ctx context.Context, f []byte) error {
	if e.closing() {
		return ErrEdgeLost
	}
	return e.q.pushData(ctx, e.done, f, false)
}

// sendFileData queues a file chunk frame whose data are n bytes of f from
// off (see sendQueue.pushFileData), waiting while the data lane is full.
func (e *edge) sendFileData(ctx context.Context, head []byte, f *os.File, off int64, n int) error {
	if e.closing() {
		return ErrEdgeLost
	}
	return e.q.pushFileData(ctx, e.done, head, f, off, n)
}

// ---- the reader ----

func (e *edge) readLoop() {
	defer e.n.wg.Done()
	n := e.n
	fr := e.fr
	fr.SetMaxBody(n.cfg.MaxFrameBody)
	fr.SetLargeBodyAlloc(func(kind wire.Kind, size int) []byte {
		if kind == wire.KindFileChunk {
			return n.chunkBodies.get(size)
		}
		return make([]byte, size)
	})
	idle := n.deadTimeout()
	frames := 0
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			e.close(readFailure(err, idle), false, true)
			break
		}
		size := wire.HeaderLen + len(f.Topic) + len(f.Body)
		e.framesIn.Add(1)
		e.bytesIn.Add(uint64(size))
		n.bytesIn.Add(uint64(size))
		// Handling may wait (a full queue, a subscriber that does not take
		// messages, another reader holding an origin's lock): that time is
		// ours, not the peer's silence, so keep-alive does not count a busy
		// reader's time as silence (see keepAlive).
		e.readerBusy.Store(true)
		err = n.handleFrame(e, f)
		e.readerBusy.Store(false)
		// While frames stream in from the buffer, the clock is read every
		// 64 frames (a reading costs as much as handling a small frame);
		// before the reader may block it is always read.
		if frames++; frames%64 == 0 || fr.Buffered() < wire.HeaderLen {
			e.lastRecv.Store(time.Now().UnixNano())
		}
		if f.Kind != wire.KindPing && f.Kind != wire.KindPong {
			e.lastUser.Store(e.lastRecv.Load())
		}
		if err != nil {
			if err != errStopReading {
				n.logf(slog.LevelWarn, "closing edge after a malformed frame", "peer", e.name(), "kind", f.Kind.String(), "reason", err.Error())
				e.close("protocol error: "+err.Error(), true, false)
			}
			break
		}
	}
	// Make sure the writer (and with it the connection) ends too.
	e.close("reader ended", false, false)
	_ = e.conn.SetReadDeadline(time.Unix(1, 0))
	<-e.writerDone
	n.edgeEnded(e)
}

// idleDeadlineReader is the source of an edge's frame reader. It moves the
// read deadline forward before each read of the socket rather than between
// frames: a reader that waited on a full queue or subscriber (its own
// doing, not the peer's) must not then read with a deadline that expired
// while it waited. The deadline is moved at most every idle/8, so a read
// ends after 7/8 to 8/8 of idle without data.
type idleDeadlineReader struct {
	src  io.Reader
	conn net.Conn
	idle time.Duration
	set  time.Time
}

func (r *idleDeadlineReader) Read(p []byte) (int, error) {
	if now := time.Now(); now.Sub(r.set) > r.idle/8 {
		_ = r.conn.SetReadDeadline(now.Add(r.idle))
		r.set = now
	}
	return r.src.Read(p)
}

func readFailure(err error, idle time.Duration) string {
	switch {
	case errors.Is(err, io.EOF):
		return "connection closed by peer"
	case errors.Is(err, wire.ErrTooLarge):
		return "protocol error: " + err.Error()
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Sprintf("peer silent for %v", idle)
	}
	return unwrapOp(err).Error()
}

// edgeEnded runs once per edge after both of its goroutines are done.
func (n *Node) edgeEnded(e *edge) {
	e.failPending()
	n.releaseEdgeMemory(e)
	if !n.unregister(e) {
		return // lost a duplicate race; never announced as a separate peer
	}
	info := e.info()
	info.State = StateClosed
	reconnect := e.reconnect && !n.closing.Load() && n.cfg.ReconnectAttempts > 0 && info.Address != ""
	if reconnect {
		if ok, why := e.mayRedial(); !ok {
			reconnect = false
			n.logf(slog.LevelInfo, "not reconnecting", "peer", info.Name, "address", info.Address, "reason", why)
		}
	}
	n.logf(slog.LevelInfo, "edge down", "peer", info.Name, "address", info.Address, "reason", e.closeReason, "reconnect", reconnect)
	n.emit(&EdgeDownEvent{EventBase: now(), Edge: info, Reason: e.closeReason, Reconnect: reconnect})
	n.afterEdgeDown(e)
	if reconnect {
		n.startReconnect(info)
	}
}

func (e *edge) failPending() {
	e.mu.Lock()
	for id, p := range e.pings {
		if p.result != nil {
			close(p.result)
		}
		if p.series != nil {
			p.series.finish(ErrEdgeLost)
		}
		delete(e.pings, id)
	}
	e.mu.Unlock()
}

// deadTimeout is the read deadline: a peer that sends nothing at all for
// this long is gone (it would have answered or sent several pings).
func (n *Node) deadTimeout() time.Duration {
	d := time.Duration(float64(n.cfg.PingInterval) * (1 + n.cfg.PingSpread) * float64(n.cfg.MaxMissedPongs+2))
	if d < 5*time.Second {
		d = 5 * time.Second
	}
	return d
}

func init() {
	routeFrames(handleGoodbye, wire.KindGoodbye)
	routeFrames(func(*Node, *edge, wire.Frame) error {
		return errors.New("second hello on an established edge")
	}, wire.KindHello)
}

// handleGoodbye ends an edge the peer closes deliberately: no reconnect.
func handleGoodbye(_ *Node, e *edge, f wire.Frame) error {
	var g wire.Goodbye
	_ = wire.Unmarshal(f.Body, &g)
	reason := "closed by peer"
	if g.Reason != "" {
		reason = "closed by peer: " + truncate(g.Reason, wire.MaxReasonLen)
	}
	e.close(reason, false, false)
	return errStopReading
}

func truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}

// sendPingNow sends a ping or a pong. Their order relative to other frames
// does not matter, so when the socket holds only whole frames (nothing
// buffered, no carry) and no writer is using it, the frame is written from
// the calling goroutine: a round trip then costs no hand-off to the writer
// goroutines on either side, and no allocation. It never blocks — the lock
// is only tried and the write is non-blocking — so readers may call it;
// otherwise the frame goes through the control lane like any other.
func (e *edge) sendPingNow(kind wire.Kind, p *wire.Ping) bool {
	if e.raw != nil && e.writerIdle.Load() && e.wmu.TryLock() {
		ok := false
		var size int
		if !e.closing() && e.bw.Buffered() == 0 && len(e.carry) == 0 {
			e.nowFrame = wire.AppendPingFrame(e.nowFrame[:0], kind, p)
			size = len(e.nowFrame)
			ok = e.writeNowLocked(e.nowFrame)
			if cap(e.nowFrame) > 4<<10 {
				e.nowFrame = nil // a padded ping: do not keep its buffer
			}
		}
		e.wmu.Unlock()
		if ok {
			e.bytesOut.Add(uint64(size))
			e.n.bytesOut.Add(uint64(size))
			e.directFrames.Add(1)
			return true
		}
	}
	size := wire.HeaderLen + wire.PingFixedLen + len(p.Padding)
	if kind == wire.KindPong && len(p.Padding) > 0 {
		// An echo goes through the lane only while it and the node have
		// room for its padding: a peer that pings with padding but does
		// not read gets its pongs dropped instead of parking them here.
		if e.closing() || !e.q.ctrlRoom(size) {
			return false
		}
		return e.q.pushEcho(wire.AppendPingFrame(make([]byte, 0, size), kind, p))
	}
	f := wire.AppendPingFrame(make([]byte, 0, size), kind, p)
	return e.sendCtrl(f)
}
