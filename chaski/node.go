package chaski

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chaski-dev/chaski/chaski/wire"
)

// Node is a Chaski peer: it listens on TCP and UDP, keeps edges to other
// nodes, measures their latency, routes topic messages and answers status
// and named requests. Create one with Start; stop it with Close.
type Node struct {
	cfg   Config
	id    wire.NodeID
	idStr string
	log   *slog.Logger

	ln   net.Listener
	udp  *net.UDPConn
	addr string

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	closing   atomic.Bool
	closeOnce sync.Once

	// sendfileSameHost lets tests take the sendfile path on loopback
	// (set before the first send; see sendfileSource).
	sendfileSameHost bool
	closeErr         error
	started          time.Time

	events eventBus

	mu       sync.RWMutex
	edges    map[wire.NodeID]*edge
	pending  int                 // handshakes in progress
	ghosts   map[string]*ghost   // peers being reconnected, by address
	subs     map[string]bool     // our subscriptions
	paired   map[string]*pairing // per subscription
	handlers map[string]HandlerFunc

	msgs       chan *Message
	hist       *chatHistory // stored scrollback (Config.ChatHistory)
	terminated atomic.Bool
	// streamEnd is closed by TerminateStream, waking a Next that waits.
	streamEnd     chan struct{}
	terminateOnce sync.Once
	seq           atomic.Uint64
	pubMu         sync.Mutex
	pubScratch    []byte // where Publish builds small frames (pubMu held)
	// With Config.SignPublishes: this run's signing key (the node id is
	// derived from it), a digest hash and a scratch buffer for the plain
	// copy of a signed frame that peers without signed publishes get; all
	// used under pubMu.
	signKey      ed25519.PrivateKey
	signHash     hash.Hash
	plainScratch []byte
	// noSignedHello leaves Hello.Signed out, as a node of a version before
	// signed publishes did (tests of how such peers are served).
	noSignedHello bool
	pubClock      pubClock // publication times (pubMu held)

	chunkBodies bodyRecycler // received file chunk bodies, reused
	// originLocks serialise the handling of messages per origin (striped).
	originLocks [64]sync.Mutex
	// routeGen changes whenever an edge comes or goes, a peer's
	// subscriptions change or ours do; the route caches of the hot paths
	// (pubRoute, each edge's relay cache) are valid only for the
	// generation they were computed in.
	routeGen atomic.Uint64
	pubRoute atomic.Pointer[pubRouteCache]
	// msgFilter drops the copies of published messages already seen
	// (per-origin sequence windows; idFilter is the one for request ids).
	msgFilter *seqFilter
	taps      tapSet // bridges' observers (bridgehook.go)

	reqSem  chan struct{}
	nextReq atomic.Uint64
	reqMu   sync.Mutex
	reqs    map[uint64]chan reqResult

	msgsIn, msgsOut   atomic.Uint64
	bytesIn, bytesOut atomic.Uint64
	unknown           atomic.Uint64
	undelivered       atomic.Uint64
	topicStats        topicTable
	fetchCount        fetchCounters

	guard guardState
	prop  propagation
	disc  discoveryState
	files fileState
	fetch fetchState
	lan   atomic.Pointer[lanState] // nil until nearby discovery runs (Config.LAN)
	lanMu sync.Mutex               // orders StartLAN and Close
}

// Start creates a node, binds its TCP and UDP sockets and starts serving.
func Start(cfg Config) (*Node, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	n := &Node{
		cfg:       cfg,
		log:       cfg.Logger,
		edges:     make(map[wire.NodeID]*edge),
		ghosts:    make(map[string]*ghost),
		subs:      make(map[string]bool),
		paired:    make(map[string]*pairing),
		handlers:  make(map[string]HandlerFunc),
		msgs:      make(chan *Message, cfg.MessageBuffer),
		streamEnd: make(chan struct{}),
		msgFilter: newSeqFilter(cfg.DedupOrigins, cfg.DedupAge),
		reqSem:    make(chan struct{}, cfg.MaxConcurrentRequests),
		reqs:      make(map[uint64]chan reqResult),
		started:   time.Now(),
	}
	n.events.watchers = make(map[int]*watcher)
	n.guard.init()
	if cfg.SignPublishes {
		// A key of its own each run, like the random id it replaces: peers'
		// duplicate filters must see a new origin when a node restarts
		// (its sequence numbers start again at 1).
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		n.signKey, n.signHash, n.id = priv, wire.NewDigestHash(), wire.NodeIDForKey(pub)
	} else {
		if _, err := rand.Read(n.id[:]); err != nil {
			return nil, err
		}
		n.id[6] = n.id[6]&0x0f | 0x40 // UUID version 4
		n.id[8] = n.id[8]&0x3f | 0x80
	}
	n.idStr = idString(n.id)
	for _, s := range cfg.Subscriptions {
		n.subs[s] = true
		n.paired[s] = &pairing{paired: cfg.Paired || cfg.Root}
	}
	if err := n.listen(); err != nil {
		return nil, err
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.files.init()
	n.fetch.init()
	n.disc.init()
	if cfg.Store != nil {
		n.attachStore()
	}
	n.startHistory()
	n.goSafe(n.acceptLoop)
	n.goSafe(n.udpLoop)
	n.goSafe(n.keepAliveLoop)
	if err := n.startLAN(); err != nil {
		n.cancel()
		n.ln.Close()
		n.udp.Close()
		n.wg.Wait()
		n.closeHooks()
		return nil, err
	}
	n.logf(slog.LevelInfo, "node listening", "name", cfg.Name, "address", n.addr, "id", n.idStr)
	return n, nil
}

// goSafe runs f in a goroutine tracked by Close.
func (n *Node) goSafe(f func()) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
}

// listen binds TCP and UDP on the same port. With port 0 it tries the
// preferred ports, then lets the kernel choose a TCP port and binds UDP to
// the same number, retrying when that UDP port happens to be taken. Nothing
// is probed and released, so no other process can slip in between.
func (n *Node) listen() error {
	host, portStr, err := net.SplitHostPort(n.cfg.Listen)
	if err != nil {
		return fmt.Errorf("chaski: listen address %q: %w", n.cfg.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return fmt.Errorf("chaski: listen address %q: bad port", n.cfg.Listen)
	}
	try := func(p int) error {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err != nil {
			return err
		}
		tcpPort := ln.Addr().(*net.TCPAddr).Port
		ua, err := net.ResolveUDPAddr("udp", net.JoinHostPort(host, strconv.Itoa(tcpPort)))
		if err != nil {
			ln.Close()
			return err
		}
		uc, err := net.ListenUDP("udp", ua)
		if err != nil {
			ln.Close()
			return err
		}
		n.ln, n.udp = ln, uc
		n.addr = net.JoinHostPort(host, strconv.Itoa(tcpPort))
		return nil
	}
	if port != 0 {
		if err := try(port); err != nil {
			return fmt.Errorf("chaski: listen on %s: %w", n.cfg.Listen, err)
		}
		return nil
	}
	for _, p := range n.cfg.PreferredPorts {
		if try(p) == nil {
			return nil
		}
	}
	var last error
	for i := 0; i < 16; i++ {
		if last = try(0); last == nil {
			return nil
		}
	}
	return fmt.Errorf("chaski: listen on %s: %w", n.cfg.Listen, last)
}

// ID returns the node's unique id.
func (n *Node) ID() string { return n.idStr }

// Name returns the node's name.
func (n *Node) Name() string { return n.cfg.Name }

// Addr returns the listening address (host:port) with the real port.
func (n *Node) Addr() string { return n.addr }

// String renders the node like the original does: Chaski@host:port, with a '*'
// in front when it is paired for all its subscriptions.
func (n *Node) String() string {
	star := ""
	if n.Paired() {
		star = "*"
	}
	return star + "Chaski@" + n.addr
}

// IsRoot reports whether this is a root node.
func (n *Node) IsRoot() bool { return n.cfg.Root }

// TLS reports whether edges use TLS.
func (n *Node) TLS() bool { return n.cfg.ServerTLS != nil }

// Config returns the node's configuration with defaults applied.
func (n *Node) Config() Config { return n.cfg }

func (n *Node) logf(level slog.Level, msg string, args ...any) {
	ok, suppressed := n.guard.logs.allow(msg)
	if !ok {
		return
	}
	clipLogAttrs(args)
	if suppressed > 0 {
		args = append(args, "suppressed", suppressed)
	}
	n.log.Log(context.Background(), level, msg, args...)
	var attrs string
	for i := 0; i+1 < len(args); i += 2 {
		if attrs != "" {
			attrs += " "
		}
		attrs += fmt.Sprintf("%v=%v", args[i], args[i+1])
	}
	n.emit(&LogEvent{EventBase: now(), Level: level, Message: msg, Attrs: attrs})
}

func (n *Node) emit(e Event) { n.events.publish(e) }

func now() EventBase { return EventBase{At: time.Now()} }

// Status returns the node's current status.
func (n *Node) Status() Status {
	s := n.status()
	s.AcceptsFiles = n.acceptsFiles()
	s.Extra = n.statusFields()
	return s
}

func (n *Node) status() Status {
	n.mu.RLock()
	defer n.mu.RUnlock()
	s := Status{
		ID:                n.idStr,
		Name:              n.cfg.Name,
		Address:           n.addr,
		Root:              n.cfg.Root,
		Subscriptions:     n.subscriptionsLocked(),
		Paired:            make(map[string]bool, len(n.subs)),
		Serving:           !n.closing.Load(),
		Reconnecting:      len(n.ghosts) > 0,
		Edges:             len(n.edges),
		TLS:               n.cfg.ServerTLS != nil,
		Started:           n.started,
		MsgsIn:            n.msgsIn.Load(),
		MsgsOut:           n.msgsOut.Load(),
		BytesIn:           n.bytesIn.Load(),
		BytesOut:          n.bytesOut.Load(),
		Dropped:           n.events.dropped.Load(),
		Unknown:           n.unknown.Load(),
		LateDropped:       n.msgFilter.lateDrops(),
		Signing:           n.signKey != nil,
		RequireSignatures: n.cfg.RequireSignatures,
		Unsigned:          n.guard.unsigned.Load(),
		BadSignatures:     n.guard.badSignatures.Load(),
	}
	for t := range n.subs {
		s.Paired[t] = n.pairedForLocked(t)
	}
	return s
}

func (n *Node) subscriptionsLocked() []string {
	out := make([]string, 0, len(n.subs))
	for t := range n.subs {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Edges returns the live edges and the peers being reconnected, sorted by
// name.
func (n *Node) Edges() []EdgeInfo {
	n.mu.RLock()
	out := make([]EdgeInfo, 0, len(n.edges)+len(n.ghosts))
	for _, e := range n.edges {
		out = append(out, e.info())
	}
	for _, g := range n.ghosts {
		out = append(out, g.info())
	}
	n.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Address < out[j].Address
	})
	return out
}

// EdgeCount returns the number of live edges.
func (n *Node) EdgeCount() int {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return len(n.edges)
}

// Edge returns the live edge to the peer with the given id, name or
// listening address.
func (n *Node) Edge(peer string) (EdgeInfo, bool) {
	e := n.findEdge(peer)
	if e == nil {
		return EdgeInfo{}, false
	}
	return e.info(), true
}

// ConnectedTo reports whether a live edge to the given peer (id, name or
// listening address) exists.
func (n *Node) ConnectedTo(peer string) bool { return n.findEdge(peer) != nil }

func (n *Node) findEdge(peer string) *edge {
	n.mu.RLock()
	defer n.mu.RUnlock()
	for _, e := range n.edges {
		if e.peerStr == peer {
			return e
		}
	}
	for _, e := range n.edges {
		if e.listenAddr() == peer || e.name() == peer {
			return e
		}
	}
	return nil
}

func (n *Node) liveEdges() []*edge {
	n.mu.RLock()
	defer n.mu.RUnlock()
	out := make([]*edge, 0, len(n.edges))
	for _, e := range n.edges {
		out = append(out, e)
	}
	return out
}

// CloseEdge deliberately closes the edge to a peer (by id, name or
// address), or stops reconnecting to it. The peer is told, so neither side
// reconnects.
func (n *Node) CloseEdge(peer string) error {
	if e := n.findEdge(peer); e != nil {
		e.close("closed by "+n.cfg.Name, true, false)
		return nil
	}
	n.mu.Lock()
	for addr, g := range n.ghosts {
		if g.peerID == peer || g.name == peer || addr == peer {
			g.stop()
			n.mu.Unlock()
			return nil
		}
	}
	n.mu.Unlock()
	return fmt.Errorf("%w: %s", ErrNoEdge, peer)
}

// Flush waits until every frame queued on every live edge has been written
// to its connection (not necessarily read by the peer), or ctx ends. An edge
// that is lost meanwhile no longer counts.
func (n *Node) Flush(ctx context.Context) error {
	for wait := 100 * time.Microsecond; ; wait = min(2*wait, 20*time.Millisecond) {
		pending := false
		for _, e := range n.liveEdges() {
			select {
			case <-e.done:
				continue
			default:
			}
			if !e.q.empty() || !e.writerIdle.Load() {
				pending = true
				break
			}
		}
		if !pending {
			return nil
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// closeFlushTimeout bounds how long Close waits for queued frames.
const closeFlushTimeout = 2 * time.Second

// Close flushes what is queued (for at most two seconds, or until ctx ends),
// stops the listeners, says goodbye to every peer, closes every edge and
// returns when every goroutine the node started has ended (or ctx is done,
// in which case it returns ctx.Err() and the rest finish later).
func (n *Node) Close(ctx context.Context) error {
	n.closeOnce.Do(func() {
		fctx, cancel := context.WithTimeout(ctx, closeFlushTimeout)
		_ = n.Flush(fctx)
		cancel()
		n.closing.Store(true)
		n.logf(slog.LevelInfo, "node closing", "name", n.cfg.Name)
		n.stopLAN()
		n.ln.Close()
		n.udp.Close()
		for _, e := range n.liveEdges() {
			e.close("node "+n.cfg.Name+" shutting down", true, false)
		}
		n.mu.Lock()
		for _, g := range n.ghosts {
			g.stop()
		}
		n.mu.Unlock()
		// Edges get a moment to send their goodbyes before everything that
		// might still be blocked is cancelled.
		done := make(chan struct{})
		go func() {
			n.waitEdges(2 * time.Second)
			n.cancel()
			n.wg.Wait()
			n.closeHooks()
			close(n.msgs)
			n.events.close()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			n.closeErr = ctx.Err()
		}
	})
	return n.closeErr
}

func (n *Node) waitEdges(max time.Duration) {
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) {
		n.mu.RLock()
		left := len(n.edges) + n.pending
		n.mu.RUnlock()
		if left == 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Done is closed when the node has begun closing.
func (n *Node) Done() <-chan struct{} { return n.ctx.Done() }

func randUint64() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:])
}

// randFloat returns a uniform number in [0, 1).
func randFloat() float64 { return float64(randUint64()>>11) / (1 << 53) }

var errStopReading = errors.New("stop reading")
