package chaski

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/chaski-dev/chaski/chaski/wire"
)

// pairing is the discovery state of one subscription.
type pairing struct {
	paired  bool      // set by discovery, by Config.Paired or as first of topic
	first   bool      // paired because nobody answered
	peer    string    // who we paired with
	peerID  string    // its node id, when the pairing came over an edge
	lastRun time.Time // last discovery for this topic
	outcome string
	request []byte        // the discovery request in progress, if any
	anyReq  []byte        // its second half, asking unpaired subscribers too
	wake    chan struct{} // closed when the topic gets paired during a run
}

type discoveryState struct {
	seen    *idFilter     // discovery requests already handled
	dialSem chan struct{} // bounds pairing dials started by requests
	// answering lists the pairing dials in flight, by the origin they
	// answer (at most cap(dialSem) entries): an offer that origin makes us
	// meanwhile is the same pairing seen from its side (afterEdgeUp).
	mu        sync.Mutex
	answering map[wire.NodeID]pairHello
}

func (d *discoveryState) init() {
	d.seen = newIDFilter(4096, time.Minute)
	d.dialSem = make(chan struct{}, 8)
	d.answering = make(map[wire.NodeID]pairHello)
}

// answeringFor returns the request of origin's that a dial of ours is
// answering right now, if any.
func (d *discoveryState) answeringFor(origin wire.NodeID) (pairHello, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p, ok := d.answering[origin]
	return p, ok
}

// Paired reports whether the node is paired for every subscription.
func (n *Node) Paired() bool {
	n.mu.RLock()
	defer n.mu.RUnlock()
	for t := range n.subs {
		if !n.pairedForLocked(t) {
			return false
		}
	}
	return true
}

// PairedFor reports whether the node is paired for topic: discovery paired
// it (or made it the first of the topic), or a live edge shares the topic.
func (n *Node) PairedFor(topic string) bool {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.pairedForLocked(topic)
}

func (n *Node) pairedForLocked(topic string) bool {
	if !n.subs[topic] {
		return false
	}
	if n.cfg.Root {
		return true
	}
	if p := n.paired[topic]; p != nil && p.paired {
		return true
	}
	return n.edgeSharingLocked(topic) != ""
}

// sharesTopic reports whether e counts as an edge to a subscriber of topic.
func (e *edge) sharesTopic(topic string) bool {
	if e.pairTopic != "" && !e.pairConfirmed.Load() {
		return false // an answer to a discovery the origin has not accepted (yet)
	}
	r := e.route.Load()
	if r.root {
		return false
	}
	_, ok := r.subs[topic]
	return ok
}

// PairingInfo describes the discovery state of one subscription.
type PairingInfo struct {
	Topic   string
	Paired  bool
	First   bool // first of the topic: nobody answered discovery
	Peer    string
	LastRun time.Time
	Outcome string
	Running bool // a discovery for the topic is in progress
}

// Pairings returns the discovery state of every subscription.
func (n *Node) Pairings() []PairingInfo {
	n.mu.RLock()
	defer n.mu.RUnlock()
	var out []PairingInfo
	for _, t := range n.subscriptionsLocked() {
		pi := PairingInfo{Topic: t, Paired: n.pairedForLocked(t)}
		if p := n.paired[t]; p != nil {
			pi.First, pi.Peer, pi.LastRun, pi.Outcome = p.first, p.peer, p.lastRun, p.outcome
			pi.Running = p.request != nil
		}
		if pi.Peer == "" && pi.Paired && !pi.First {
			for _, e := range n.edges {
				if e.sharesTopic(t) {
					pi.Peer = e.peerName
					break
				}
			}
		}
		out = append(out, pi)
	}
	return out
}

// Discover looks for peers already paired for each unpaired subscription
// (the original's discovery): a request travels every edge with a TTL and a
// visited set; a node paired for the topic dials this node back (or reports
// on an existing edge). A topic nobody answers within the timeout makes this
// node the first of that topic, which counts as paired so that later nodes
// can pair with it; the DiscoveryEvent says so ("first").
func (n *Node) Discover(ctx context.Context, opts DiscoverOptions) error {
	if opts.Timeout <= 0 {
		opts.Timeout = n.cfg.DiscoverTimeout
	}
	if opts.OnPair == "" {
		opts.OnPair = OnPairNone
	}
	if opts.OnPair != OnPairNone && opts.OnPair != OnPairDisconnect {
		return fmt.Errorf("chaski: on_pair must be %q or %q, not %q", OnPairNone, OnPairDisconnect, opts.OnPair)
	}
	if n.cfg.Root {
		return nil // a root is paired for everything
	}
	entry := n.liveEdges()
	if opts.Via != "" {
		e := n.findEdge(opts.Via)
		if e == nil {
			return fmt.Errorf("%w: discovery via %s", ErrNoEdge, opts.Via)
		}
		entry = []*edge{e}
	}
	var via []*edge // the second half's edges: nil = every edge up by then
	if opts.Via != "" {
		via = entry
	}
	topics := opts.Topics
	if len(topics) == 0 {
		topics = n.Subscriptions()
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	pairedWithPeer := false
	for _, t := range topics {
		n.mu.Lock()
		p := n.paired[t]
		if p == nil || !n.subs[t] {
			n.mu.Unlock()
			continue
		}
		p.lastRun = time.Now()
		if n.pairedForLocked(t) && p.request == nil {
			p.outcome = "already paired"
			if n.edgeSharingLocked(t) != "" {
				// Paired with a peer before this run (it answered another
				// node's discovery, say): on_pair=disconnect applies too.
				mu.Lock()
				pairedWithPeer = true
				mu.Unlock()
			}
			n.mu.Unlock()
			n.emit(&DiscoveryEvent{EventBase: now(), Topic: t, Phase: "skipped", Detail: "already paired"})
			continue
		}
		req := make([]byte, 16)
		_, _ = rand.Read(req)
		p.request, p.wake, p.outcome = req, make(chan struct{}), "searching"
		wake := p.wake
		n.mu.Unlock()
		n.disc.seen.firstSight(wire.MessageID{Origin: wire.NodeID(req)})
		n.emit(&DiscoveryEvent{EventBase: now(), Topic: t, Phase: "started", Detail: fmt.Sprintf("asking %d edges", len(entry))})
		n.logf(slog.LevelInfo, "discovery started", "topic", t, "edges", len(entry))
		d := &wire.Discover{Request: req, Origin: n.id[:], OriginName: n.cfg.Name, OriginAddr: n.addr,
			Topic: t, TTL: n.cfg.TTL, Visited: [][]byte{n.id[:]}, OnPair: string(opts.OnPair)}
		if f, err := wire.AppendControlFrame(nil, wire.KindDiscover, "", d); err == nil {
			for _, e := range entry {
				e.sendCtrl(f)
			}
		}
		wg.Add(1)
		go func(t string, req []byte, wake chan struct{}) {
			defer wg.Done()
			// The first half asks paired nodes only; the second asks every
			// subscriber.
			first := opts.Timeout / 2
			timer := time.NewTimer(first)
			defer timer.Stop()
			var outcome string
			for half := 1; outcome == ""; {
				select {
				case <-wake:
					outcome = "paired"
				case <-timer.C:
					if half == 1 {
						half = 2
						n.askAnySubscriber(t, req, d, via)
						timer.Reset(opts.Timeout - first)
						continue
					}
					outcome = "first"
				case <-ctx.Done():
					outcome = "cancelled"
				case <-n.ctx.Done():
					outcome = "cancelled"
				}
			}
			n.mu.Lock()
			p := n.paired[t]
			if p == nil || !bytes.Equal(p.request, req) {
				n.mu.Unlock()
				return
			}
			p.request, p.anyReq = nil, nil
			switch outcome {
			case "first":
				if sharing := n.edgeSharingLocked(t); sharing != "" && !p.paired {
					// No pairing report, but an edge that shares the topic
					// came up meanwhile (its peer answered another request,
					// or connected on its own): that is a pairing.
					p.paired, p.first, p.peer = true, false, sharing
					outcome = "paired"
				} else if !p.paired {
					p.paired, p.first, p.peer = true, true, ""
					p.outcome = "first of topic, no peer found"
				} else {
					outcome = "paired"
				}
			case "cancelled":
				p.outcome = "cancelled"
			}
			if outcome == "paired" {
				p.outcome = "paired with " + p.peer
			}
			peer := p.peer
			n.mu.Unlock()
			switch outcome {
			case "first":
				n.logf(slog.LevelInfo, "discovery: no peer found, first of topic", "topic", t)
				n.emit(&DiscoveryEvent{EventBase: now(), Topic: t, Phase: "first", Detail: "first of topic, no peer found"})
				n.emit(&PairedEvent{EventBase: now(), Topic: t, First: true})
			case "paired":
				mu.Lock()
				pairedWithPeer = true
				mu.Unlock()
				_ = peer
			case "cancelled":
				n.emit(&DiscoveryEvent{EventBase: now(), Topic: t, Phase: "failed", Detail: "cancelled"})
			}
		}(t, req, wake)
	}
	wg.Wait()
	if pairedWithPeer && opts.OnPair == OnPairDisconnect {
		n.disconnectEntries(entry)
	}
	return ctx.Err()
}

// askAnySubscriber sends the second half of discovery request req for
// topic: the same request under a new id, asking every subscriber, through
// the edge of DiscoverOptions.Via when one was given (via), else every edge
// up by now.
func (n *Node) askAnySubscriber(topic string, req []byte, d *wire.Discover, via []*edge) {
	anyReq := make([]byte, 16)
	_, _ = rand.Read(anyReq)
	n.mu.Lock()
	p := n.paired[topic]
	if p == nil || !bytes.Equal(p.request, req) {
		n.mu.Unlock()
		return
	}
	p.anyReq = anyReq
	n.mu.Unlock()
	n.disc.seen.firstSight(wire.MessageID{Origin: wire.NodeID(anyReq)})
	d2 := *d
	d2.Request, d2.Any, d2.Visited = anyReq, true, [][]byte{n.id[:]}
	f, err := wire.AppendControlFrame(nil, wire.KindDiscover, "", &d2)
	if err != nil {
		return
	}
	if via == nil {
		via = n.liveEdges()
	}
	for _, e := range via {
		e.sendCtrl(f)
	}
}

// ConnectWithDiscovery is the original's connect(addr, discovery=True): connect
// to addr, then run discovery for the subscriptions that connection did not
// pair. Without options it uses the original's on_pair "disconnect" for this
// call (the entry edge is only a way in), but not its 0.5 s
// discovery_timeout: the timeout is Config.DiscoverTimeout (10 s) unless
// opts.Timeout is set. Discovery returns as soon as every topic is paired,
// so the longer wait costs time only when nobody answers; a short one makes
// a node whose answer is merely slow (a loaded machine, a TLS dial back)
// "first of topic" and splits the topic in two groups that never meet,
// since pairings that arrive after the timeout are refused.
func (n *Node) ConnectWithDiscovery(ctx context.Context, addr string, opts DiscoverOptions) (EdgeInfo, error) {
	info, err := n.Connect(ctx, addr)
	if err != nil {
		return info, err
	}
	if opts.OnPair == "" {
		opts.OnPair = OnPairDisconnect
	}
	// The returned info describes the entry edge as connected; with
	// "disconnect" it may be closing by the time this returns.
	return info, n.Discover(ctx, opts)
}

// disconnectEntries closes the edges discovery went through that share no
// subscription with this node (the original's on_pair="disconnect").
func (n *Node) disconnectEntries(entry []*edge) {
	mine := n.Subscriptions()
	for _, e := range entry {
		r := e.route.Load()
		shared := false
		for _, t := range mine {
			if _, ok := r.subs[t]; ok {
				shared = true
				break
			}
		}
		if !shared {
			n.logf(slog.LevelInfo, "discovery: dropping entry edge after pairing", "peer", e.name())
			e.close("paired elsewhere; entry edge no longer needed", true, false)
		}
	}
}

// markPaired records a pairing for topic reported on edge e. It only
// accepts pairings for a discovery that is in progress, so no peer can
// impose one (or make us drop edges) unasked.
func (n *Node) markPaired(e *edge, topic string, request []byte) bool {
	n.mu.Lock()
	p := n.paired[topic]
	if p == nil || p.request == nil || !(bytes.Equal(p.request, request) || (p.anyReq != nil && bytes.Equal(p.anyReq, request))) {
		n.mu.Unlock()
		return false
	}
	if p.paired && !p.first {
		n.mu.Unlock()
		return false
	}
	p.paired, p.first, p.peer, p.peerID = true, false, e.name(), e.peerStr
	if p.wake != nil {
		close(p.wake)
		p.wake = nil
	}
	n.mu.Unlock()
	n.logf(slog.LevelInfo, "paired", "topic", topic, "peer", e.name())
	n.emit(&DiscoveryEvent{EventBase: now(), Topic: topic, Phase: "paired", Peer: e.name()})
	n.emit(&PairedEvent{EventBase: now(), Topic: topic, Peer: e.name()})
	return true
}

func init() {
	routeFrames(func(n *Node, e *edge, f wire.Frame) error { return n.handleDiscover(e, f.Body) }, wire.KindDiscover)
	routeFrames(func(n *Node, e *edge, f wire.Frame) error { return n.handlePairReport(e, f.Body) }, wire.KindPaired)
}

// edgeSharingLocked names a live non-root peer that subscribes to topic, or "".
func (n *Node) edgeSharingLocked(topic string) string {
	for _, e := range n.edges {
		if e.sharesTopic(topic) {
			return e.peerName
		}
	}
	return ""
}

func (n *Node) handleDiscover(e *edge, body []byte) error {
	var d wire.Discover
	if err := wire.Unmarshal(body, &d); err != nil {
		return err
	}
	if !wire.ValidID(d.Request) || !wire.ValidID(d.Origin) || !wire.ValidName(d.Topic, wire.MaxTopicLen) ||
		len(d.Visited) > wire.MaxVisited || len(d.OriginAddr) > wire.MaxAddrLen || len(d.OriginName) > wire.MaxNameLen {
		return fmt.Errorf("malformed discovery request")
	}
	if !n.disc.seen.firstSight(wire.MessageID{Origin: wire.NodeID(d.Request)}) {
		return nil
	}
	origin := wire.NodeID(d.Origin)
	if origin == n.id {
		return nil
	}
	if d.TTL > wire.MaxTTL {
		d.TTL = wire.MaxTTL
	}
	n.mu.RLock()
	// A paired subscriber answers (the seed's rule), and in the second half
	// of a discovery (Any) every subscriber does. The seed answered only
	// when paired, so a node that subscribes but never ran discovery itself
	// (n1 below) stayed invisible: with n1 (alpha, beta), n2 (alpha,
	// connected to n1) and n3 (beta, gamma, connected to n2), n3 asked for
	// beta, n2 forwarded to n1, n1 kept quiet, and n3 called itself the
	// first of beta while n1 was two hops away. Paired nodes are asked
	// first so that answers join the group already formed for the topic
	// rather than a second island of it.
	canPair := !n.cfg.Root && n.subs[d.Topic] && (d.Any || n.pairedForLocked(d.Topic))
	sharing := 0
	for _, x := range n.edges {
		if _, ok := x.route.Load().subs[d.Topic]; ok {
			sharing++
		}
	}
	existing := n.edges[origin]
	n.mu.RUnlock()
	if canPair {
		if d.TTL <= 0 {
			return nil
		}
		if existing != nil {
			// Already connected: report the pairing on that edge (the
			// original sent nothing and left the origin waiting), unless
			// that edge is a surplus offer being closed.
			n.answerOnEdge(existing, d.Topic, d.Request)
			return nil
		}
		if sharing >= n.cfg.MaxConnections {
			return nil
		}
		select {
		case n.disc.dialSem <- struct{}{}:
		default:
			return nil // enough pairing dials in flight already
		}
		if ok, _ := n.guard.dials.take(); !ok {
			<-n.disc.dialSem
			return nil // dialling addresses from the network at its rate limit
		}
		addr := d.OriginAddr
		ph := pairHello{topic: d.Topic, request: d.Request}
		n.disc.mu.Lock()
		n.disc.answering[origin] = ph
		n.disc.mu.Unlock()
		n.goSafe(func() {
			defer func() {
				n.disc.mu.Lock()
				if a, ok := n.disc.answering[origin]; ok && bytes.Equal(a.request, ph.request) {
					delete(n.disc.answering, origin)
				}
				n.disc.mu.Unlock()
				<-n.disc.dialSem
			}()
			ctx, cancel := context.WithTimeout(n.ctx, n.cfg.DialTimeout+n.cfg.HandshakeTimeout)
			defer cancel()
			if _, err := n.connect(ctx, addr, &pairHello{topic: d.Topic, request: d.Request}); err != nil {
				n.logf(slog.LevelDebug, "pairing dial failed", "topic", d.Topic, "origin", d.OriginName, "err", err.Error())
			} else {
				n.logf(slog.LevelInfo, "paired with discovery origin", "topic", d.Topic, "origin", d.OriginName)
			}
		})
		return nil
	}
	n.forwardFlood(CommandDiscover, e, origin, wire.KindDiscover, &d.TTL, &d.Visited, &d)
	return nil
}

// forwardFlood passes on a request that floods the network (discovery, store
// fetch): TTL minus one and this node added to the visited ids, to every
// edge except the one it came from, the origin and nodes already visited.
// Bounded by TTL and the visited set (node ids, not names); nothing happens
// when command c is not propagated, the TTL is spent, or the visited list is
// full or already names this node. msg must hold ttl and visited.
func (n *Node) forwardFlood(c Command, from *edge, origin wire.NodeID, kind wire.Kind, ttl *int, visited *[][]byte, msg any) {
	if *ttl > wire.MaxTTL {
		*ttl = wire.MaxTTL
	}
	if !n.prop.enabled(c) || *ttl-1 <= 0 || len(*visited) >= wire.MaxVisited {
		return
	}
	seen := make(map[wire.NodeID]bool, len(*visited)+1)
	for _, v := range *visited {
		if wire.ValidID(v) {
			seen[wire.NodeID(v)] = true
		}
	}
	if seen[n.id] {
		return
	}
	*ttl--
	*visited = append(*visited, n.id[:])
	f, err := wire.AppendControlFrame(nil, kind, "", msg)
	if err != nil {
		return
	}
	for _, x := range n.liveEdges() {
		if x == from || x.peer == origin || seen[x.peer] {
			continue
		}
		x.sendCtrl(f)
	}
}

func (n *Node) handlePairReport(e *edge, body []byte) error {
	var r wire.PairReport
	if err := wire.Unmarshal(body, &r); err != nil {
		return err
	}
	if !wire.ValidID(r.Request) || !wire.ValidName(r.Topic, wire.MaxTopicLen) {
		return fmt.Errorf("malformed pair report")
	}
	if e.dialed && e.pairTopic == r.Topic {
		// The origin of the discovery we answered accepted the pairing.
		n.pairingConfirmed(e, r.Topic)
		return nil
	}
	n.markPaired(e, r.Topic, r.Request)
	return nil
}

// pairingConfirmed records that the origin of a discovery this node answered
// (by dialing it) accepted the pairing: the edge now counts as shared, and a
// discovery of our own for the topic, if one is running, is answered too.
func (n *Node) pairingConfirmed(e *edge, topic string) {
	e.pairConfirmed.Store(true)
	n.mu.Lock()
	p := n.paired[topic]
	woke := false
	if p != nil && p.request != nil && (!p.paired || p.first) {
		p.paired, p.first, p.peer, p.peerID = true, false, e.name(), e.peerStr
		if p.wake != nil {
			close(p.wake)
			p.wake = nil
		}
		woke = true
	}
	n.mu.Unlock()
	if woke {
		n.logf(slog.LevelInfo, "paired", "topic", topic, "peer", e.name())
		n.emit(&DiscoveryEvent{EventBase: now(), Topic: topic, Phase: "paired", Peer: e.name()})
		n.emit(&PairedEvent{EventBase: now(), Topic: topic, Peer: e.name()})
	}
}

// answerOnEdge answers a discovery request of e's peer on e, an edge we
// already have to it: the pairing report says its request found us. An
// offer of that peer's that we were about to close as surplus is not used
// (it is going).
func (n *Node) answerOnEdge(e *edge, topic string, request []byte) {
	if !e.pairFate.CompareAndSwap(fateUndecided, fateAnswer) && e.pairFate.Load() != fateAnswer {
		return
	}
	e.sendPairReport(topic, request)
}

// sendPairReport tells e's peer that its discovery request for topic was
// answered on e (the dialer does not count an edge as a pairing until
// then).
func (e *edge) sendPairReport(topic string, request []byte) {
	if f, err := wire.AppendControlFrame(nil, wire.KindPaired, "", &wire.PairReport{Request: request, Topic: topic}); err == nil {
		e.sendCtrl(f)
	}
}

// answeringOffer answers, on e, the request of e's peer that a pairing
// dial of ours is answering right now; false if there is none.
func (n *Node) answeringOffer(e *edge) bool {
	ph, ok := n.disc.answeringFor(e.peer)
	if !ok {
		return false
	}
	n.answerOnEdge(e, ph.topic, ph.request)
	return true
}

// surplusOfferGrace is how long an offer for a topic we are already paired
// for is kept before it is closed (afterEdgeUp).
const surplusOfferGrace = 2 * time.Second

// Values of edge.pairFate.
const (
	fateUndecided = iota
	fateAnswer
	fateSurplus
)

// afterEdgeUp handles the pairing fields of a new edge's hello: the dialer
// is answering one of our discovery requests.
func (n *Node) afterEdgeUp(e *edge, h *wire.Hello) {
	if e.dialed || h.PairTopic == "" {
		return
	}
	if n.markPaired(e, h.PairTopic, h.PairRequest) {
		e.sendPairReport(h.PairTopic, h.PairRequest)
	} else {
		n.mu.RLock()
		p := n.paired[h.PairTopic]
		already := p != nil && p.paired && !p.first
		samePeer := already && p.peerID == e.peerStr
		n.mu.RUnlock()
		switch {
		case samePeer:
			// The peer we paired with answered twice (both halves of the
			// request reached it) and this second connection won the
			// duplicate rule over the first, which is closed: this edge is
			// the pairing now. Closing it too would leave us paired with
			// nobody.
			e.sendPairReport(h.PairTopic, h.PairRequest)
		case already && n.answeringOffer(e):
			// We are dialling this peer ourselves, to answer its own
			// request for a topic: its offer is the same pairing seen from
			// its side, and closing it could leave neither connection (the
			// duplicate rule may keep this one and close ours).
		case already && e.pairFate.Load() == fateUndecided:
			// A second offer for a topic already paired: this edge exists
			// only for the pairing, so it goes (as in the original), after
			// a grace. The peer answered a request of ours, so it is
			// likely to be looking for the topic itself; when its own
			// request reaches us meanwhile it is answered on this edge
			// (answerOnEdge), which then stays. Closed at once, the request
			// met an edge on its way out and went unanswered, and the
			// peer's discovery ran to its second half alone.
			topic := h.PairTopic
			n.goSafe(func() {
				t := time.NewTimer(surplusOfferGrace)
				defer t.Stop()
				select {
				case <-t.C:
				case <-e.done:
					return
				case <-n.ctx.Done():
					return
				}
				if e.pairFate.CompareAndSwap(fateUndecided, fateSurplus) {
					e.close("already paired for "+topic, true, false)
				}
			})
		}
	}
}

func (n *Node) afterEdgeDown(e *edge) {
	n.files.edgeLost(n, e)
}
