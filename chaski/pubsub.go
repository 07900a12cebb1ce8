package chaski

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"iter"
	"log/slog"
	"sync"
	"time"

	"github.com/chaski-dev/chaski/chaski/wire"
)

// Publish sends data to every node subscribed to topic that is reachable
// through subscribers or root nodes (the original's push). It is sent only to
// edges whose peer subscribes to the topic or is root; the publisher does not
// receive its own message. Publish returns once the frame is queued on every
// such edge, waiting while an edge's queue is full (backpressure); it returns
// ErrNoSubscribers when no connected peer would receive it.
func (n *Node) Publish(ctx context.Context, topic string, data []byte) error {
	if !wire.ValidName(topic, wire.MaxTopicLen) {
		return fmt.Errorf("%w: %q", ErrInvalidTopic, topic)
	}
	if n.closing.Load() {
		return ErrClosed
	}
	overhead := wire.PublishFixedLen + len(n.cfg.Name)
	if n.signKey != nil {
		overhead += wire.SigBlockLen
	}
	if len(data)+overhead > n.cfg.MaxFrameBody {
		return fmt.Errorf("%w: %d bytes (limit %d)", ErrTooLarge, len(data), n.cfg.MaxFrameBody-overhead)
	}
	// Sequence numbers are handed out in the order frames are queued, so
	// "publication order" is the same for every receiver. The targets are
	// chosen under the same lock, so that a new edge's seq mark (see
	// sendSeqMark) is a promise kept.
	n.pubMu.Lock()
	defer n.pubMu.Unlock()
	targets, ts := n.publishTargets(topic)
	taps := n.tapsFor(topic) // a bridge counts as a subscriber
	if len(targets) == 0 && len(taps) == 0 {
		return fmt.Errorf("%w: %q", ErrNoSubscribers, topic)
	}
	p := wire.Publish{
		ID:      wire.MessageID{Origin: n.id, Seq: n.seq.Add(1)},
		Time:    n.pubClock.nowUnixNano(),
		TTL:     uint8(n.cfg.TTL),
		Name:    n.cfg.Name,
		Payload: data,
	}
	n.msgFilter.firstSight(p.ID, p.Time, 0)
	// Small frames are built in a scratch buffer that the queues copy
	// from (no allocation per message); a large one is handed over.
	size := wire.HeaderLen + len(topic) + overhead + len(data)
	var buf []byte
	borrowed := size <= segCopyMax
	if borrowed {
		buf = n.pubScratch[:0]
	} else {
		buf = make([]byte, 0, size)
	}
	var frame, plain []byte
	var err error
	if n.signKey != nil {
		frame, err = wire.AppendSignedPublishFrame(buf, topic, &p, n.signKey, n.signHash)
	} else {
		frame, err = wire.AppendPublishFrame(buf, topic, &p)
	}
	if err != nil {
		return err
	}
	if borrowed {
		n.pubScratch = frame[:0]
	}
	var firstErr error
	sent := 0
	for _, e := range targets {
		f := frame
		if n.signKey != nil && !e.peerSigned {
			// A peer that does not know signed publishes gets the plain
			// frame (built once per message, in a scratch buffer when small).
			if plain == nil {
				if borrowed {
					plain, _ = wire.AppendPublishFrame(n.plainScratch[:0], topic, &p)
					n.plainScratch = plain[:0]
				} else {
					plain, _ = wire.AppendPublishFrame(nil, topic, &p)
				}
			}
			f = plain
		}
		if err := e.q.pushData(ctx, e.done, f, borrowed); err != nil {
			if ctx.Err() != nil {
				return err
			}
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		e.msgsOut.Add(1)
		sent++
	}
	if sent == 0 && len(taps) == 0 {
		return firstErr
	}
	if len(taps) > 0 {
		tm := &Message{Topic: topic, Data: append([]byte(nil), data...), From: n.cfg.Name, FromID: n.idStr,
			Seq: p.ID.Seq, Time: time.Unix(0, p.Time), ID: p.ID}
		if n.signKey != nil {
			// The bridge carries our signature on.
			body := frame[wire.HeaderLen+len(topic):]
			at := wire.SignedHeadLen(body)
			tm.Signed, tm.Signature = true, append([]byte(nil), body[at:at+wire.SigBlockLen]...)
		}
		observe(taps, tm, true)
	}
	n.msgsOut.Add(1)
	ts.msgsOut.Add(1)
	if n.hist != nil {
		n.remember(topic, n.cfg.Name, n.idStr, time.Unix(0, p.Time), data, true)
	}
	if n.events.wantsMessages() {
		n.emit(&MessageEvent{EventBase: EventBase{At: time.Unix(0, p.Time)}, Outgoing: true, Msg: &Message{
			Topic: topic, Data: data, From: n.cfg.Name, FromID: n.idStr, Seq: p.ID.Seq, Time: time.Unix(0, p.Time), ID: p.ID,
		}})
	}
	return nil
}

// Push is Publish under the original's name.
func (n *Node) Push(ctx context.Context, topic string, data []byte) error {
	return n.Publish(ctx, topic, data)
}

// pubRouteCache is the target list of the last topic published, valid for
// one route generation. It is immutable once stored.
type pubRouteCache struct {
	gen     uint64
	topic   string
	targets []*edge
	stats   *topicCounters
}

// publishTargets is routeTargets(topic, nil, nil), cached while nothing
// that routing depends on changes: a steady stream of publications on one
// topic takes no lock and allocates nothing to find its edges.
func (n *Node) publishTargets(topic string) ([]*edge, *topicCounters) {
	gen := n.routeGen.Load()
	if c := n.pubRoute.Load(); c != nil && c.gen == gen && c.topic == topic {
		return c.targets, c.stats
	}
	targets := n.routeTargets(topic, nil, nil)
	stats := n.topicStats.get(topic)
	n.pubRoute.Store(&pubRouteCache{gen: gen, topic: topic, targets: targets, stats: stats})
	return targets, stats
}

// relayRouteCache is an edge reader's memo of what to do with a message on
// topic from origin: whether this node subscribes to topic and where it
// relays it. Valid for one route generation; only the reader touches it.
type relayRouteCache struct {
	valid      bool
	gen        uint64
	topic      string
	origin     wire.NodeID
	subscribed bool // subscribedTo(topic)
	targets    []*edge
	stats      *topicCounters // the topic's counters
}

// routeTargets lists the live edges that should get a message on topic,
// except the edge it came from and its origin.
func (n *Node) routeTargets(topic string, from *edge, origin *wire.NodeID) []*edge {
	n.mu.RLock()
	defer n.mu.RUnlock()
	var out []*edge
	for id, e := range n.edges {
		if e == from || (origin != nil && id == *origin) {
			continue
		}
		if e.route.Load().wants(topic) {
			out = append(out, e)
		}
	}
	return out
}

// recvCache keeps the strings of the last message an edge's reader
// decoded, so that a stream from one publisher allocates none per message.
// Only the edge's reader goroutine touches it.
type recvCache struct {
	name      string // origin name of the last message
	origin    wire.NodeID
	originStr string    // idString(origin), "" until first use
	via       string    // the peer's name
	msgs      []Message // unused rest of the current block of messages
	// The neighbour edge of the last relayed origin looked up (see
	// forgedOrigin), valid for one route generation.
	nbrGen    uint64
	nbrOrigin wire.NodeID
	nbrEdge   *edge
	nbrValid  bool
	direct    bool      // a message of the peer's own arrived (firstDirect is set)
	sigHash   hash.Hash // digests of signed publishes (made at the first one)
}

func (c *recvCache) originID(id wire.NodeID) string {
	if c.originStr == "" || id != c.origin {
		c.origin, c.originStr = id, idString(id)
	}
	return c.originStr
}

// forgedOrigin reports whether a publish that names another origin than the
// peer it came from must be dropped, and counts it. The origin field is not
// authenticated (not even under TLS, which authenticates the peer, not who
// it relays for), so what can be checked is checked:
//
//   - a message with our own id comes back around a cycle or is forged:
//     either way it is not new;
//   - hops 0 means "sent by its origin", and its origin is not this peer;
//   - the origin is a neighbour: every one of its messages from the number
//     its seq mark named (or the first seen on its edge, from a peer that
//     sends no mark) reaches us on its own edge (it sends to every
//     subscriber, in order), so a copy from elsewhere is redundant at best,
//     and a forged one must neither be delivered as the neighbour's nor
//     move its duplicate window. Earlier numbers (in flight through relays
//     when the edge came up) still pass.
func (n *Node) forgedOrigin(e *edge, p *wire.Publish) bool {
	if p.ID.Origin == n.id {
		return true
	}
	if p.Hops == 0 {
		n.guard.forged.Add(1)
		return true
	}
	rc := &e.rc
	if gen := n.routeGen.Load(); !rc.nbrValid || rc.nbrGen != gen || rc.nbrOrigin != p.ID.Origin {
		n.mu.RLock()
		d := n.edges[p.ID.Origin]
		n.mu.RUnlock()
		rc.nbrValid, rc.nbrGen, rc.nbrOrigin, rc.nbrEdge = true, gen, p.ID.Origin, d
	}
	if d := rc.nbrEdge; d != nil {
		if first := d.firstDirect.Load(); first != 0 && p.ID.Seq+1 >= first {
			n.guard.neighbourCopies.Add(1)
			return true
		}
	}
	return false
}

func init() {
	routeFrames((*Node).handlePublish, wire.KindPublish, wire.KindPublishSigned)
	routeFrames((*Node).handleSeqMark, wire.KindSeqMark)
	routeFrames(func(n *Node, e *edge, f wire.Frame) error { return n.handleSubs(e, f.Body) }, wire.KindSubs)
}

// sendSeqMark tells a new edge's peer from which of our sequence numbers on
// our own messages come to it on this edge (all later ones on topics it
// subscribes do), so that from the start it can refuse anyone else's claim
// to them (forgedOrigin). Under pubMu, so no publish falls in between.
func (n *Node) sendSeqMark(e *edge) {
	n.pubMu.Lock()
	defer n.pubMu.Unlock()
	_ = e.q.pushData(n.ctx, e.done, wire.AppendSeqMarkFrame(nil, n.seq.Load()+1), false)
}

// handleSeqMark records the peer's mark, unless one of its own messages came
// first (that one is the earlier promise).
func (n *Node) handleSeqMark(e *edge, f wire.Frame) error {
	next, err := wire.ParseSeqMark(f.Body)
	if err != nil {
		return err
	}
	if !e.rc.direct {
		e.rc.direct = true
		e.firstDirect.Store(next + 1)
	}
	return nil
}

func (n *Node) handlePublish(e *edge, f wire.Frame) error {
	rc := &e.rc
	var p wire.Publish
	var sp wire.SignedPublish
	var err error
	signed := f.Kind == wire.KindPublishSigned
	if signed {
		sp, err = wire.ParseSignedPublishReuse(f.Body, rc.name)
		p = sp.Publish
	} else {
		p, err = wire.ParsePublishReuse(f.Body, rc.name)
	}
	if err != nil {
		return err
	}
	rc.name = p.Name
	if !wire.ValidName(f.Topic, wire.MaxTopicLen) {
		return fmt.Errorf("invalid topic %q", truncate(f.Topic, 40))
	}
	if p.ID.Origin != e.peer {
		if n.forgedOrigin(e, &p) {
			return nil
		}
	}
	if signed || n.cfg.RequireSignatures {
		if !signed {
			n.guard.unsigned.Add(1)
			return nil
		}
		// A copy of a message already seen is dropped below anyway; only
		// a new one is worth the ~90 µs of a verification.
		if n.msgFilter.seen(p.ID) {
			return nil
		}
		if rc.sigHash == nil {
			rc.sigHash = wire.NewDigestHash()
		}
		if err := sp.Verify(f.Topic, rc.sigHash); err != nil {
			// Every node that knows signed publishes verifies them before
			// it relays them, so a bad one was made by this peer itself:
			// drop the edge, as for any other malformed frame.
			n.guard.badSignatures.Add(1)
			return fmt.Errorf("publish %s/%d on %q: %w", idString(p.ID.Origin), p.ID.Seq, truncate(f.Topic, 40), err)
		}
	}
	if p.ID.Origin == e.peer && !rc.direct {
		rc.direct = true
		e.firstDirect.Store(p.ID.Seq + 1)
	}
	e.msgsIn.Add(1)
	// First sight, relaying and delivery of one origin's messages happen
	// under that origin's stripe lock: another reader that sees the next
	// message of the same origin first must wait until this one is relayed
	// and delivered, or per-sender order would be lost between edges.
	lock := &n.originLocks[binary.LittleEndian.Uint64(p.ID.Origin[:8])%uint64(len(n.originLocks))]
	if !lock.TryLock() {
		// Another reader is handling this origin (and may be waiting for
		// the consumer). A copy already seen can be dropped without
		// queueing behind it: "seen" never turns back into "new", so the
		// answer cannot be stale. In a mesh most copies are such
		// duplicates, and this keeps their readers reading.
		if n.msgFilter.seen(p.ID) {
			return nil
		}
		lock.Lock()
	}
	defer lock.Unlock()
	if !n.msgFilter.firstSight(p.ID, e.lastRecv.Load(), e.serial) {
		return nil
	}
	n.msgsIn.Add(1)
	// Relay first, in arrival order, so every node forwards each origin's
	// messages in the order it first saw them: that keeps per-sender order
	// along every path.
	rr := &e.relay
	if gen := n.routeGen.Load(); !rr.valid || rr.gen != gen || rr.topic != f.Topic || rr.origin != p.ID.Origin {
		*rr = relayRouteCache{valid: true, gen: gen, topic: f.Topic, origin: p.ID.Origin,
			subscribed: n.subscribedTo(f.Topic), stats: n.topicStats.get(f.Topic)}
		if n.cfg.Root || rr.subscribed {
			rr.targets = n.routeTargets(f.Topic, e, &p.ID.Origin)
		}
	}
	rr.stats.msgsIn.Add(1)
	if p.TTL > 1 && (n.cfg.Root || rr.subscribed) && n.prop.enabled(CommandPublish) {
		if targets := rr.targets; len(targets) > 0 {
			// Each target's lane gets the frame assembled in place,
			// with TTL and hops rewritten: one copy per target.
			fwd := relayFrame{topic: f.Topic, body: f.Body, ttl: p.TTL - 1, hops: (p.Hops&^wire.PublishBridged + 1) | p.Hops&wire.PublishBridged}
			if signed {
				fwd.signedHead = wire.SignedHeadLen(f.Body)
			}
			for _, t := range targets {
				fwd.strip = signed && !t.peerSigned
				if err := n.relay(t, &fwd, rr.stats); err != nil {
					break
				}
			}
		}
	}
	if !n.cfg.DeliverAll && !rr.subscribed {
		return nil
	}
	if rc.via == "" {
		rc.via = e.name()
	}
	// Messages are cut from a per-edge block too (see wire.Reader.body).
	if len(rc.msgs) == 0 {
		rc.msgs = make([]Message, 256)
	}
	m := &rc.msgs[0]
	rc.msgs = rc.msgs[1:]
	// Field by field into the zeroed block: a composite literal would be
	// built on the stack and copied with a bulk write barrier, which costs
	// a subscriber several percent while the GC runs.
	m.Topic = f.Topic
	m.Data = p.Payload
	m.From = p.Name
	m.FromID = rc.originID(p.ID.Origin)
	m.Seq = p.ID.Seq
	m.Time = time.Unix(0, p.Time)
	m.Hops = int(p.Hops&^wire.PublishBridged) + 1
	m.Bridged = p.Hops&wire.PublishBridged != 0
	m.Via = rc.via
	m.ID = p.ID
	m.Signed = signed
	m.Signature = sp.Block
	if taps := n.tapsFor(f.Topic); taps != nil {
		observe(taps, m, false)
	}
	n.deliver(e, m, rr.stats)
	return nil
}

// subscribedTo reports whether this node subscribes to topic. Only
// subscribers (and roots) relay, as in the original, so a node never carries
// traffic it did not ask for; DeliverAll widens delivery, not relaying.
func (n *Node) subscribedTo(topic string) bool {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.subs[topic]
}

// relay queues a forwarded frame on t, waiting briefly for room (see
// pushRelay); it gives up when t or the node closes, and drops t when its
// queue passes the hard limit.
func (n *Node) relay(t *edge, frame *relayFrame, stats *topicCounters) error {
	err := t.q.pushRelay(n.ctx, t.done, frame, relayPatience, relayHardFactor*n.cfg.SendQueueBytes)
	switch {
	case err == nil:
		t.msgsOut.Add(1)
		stats.relayed.Add(1)
	case errors.Is(err, errQueueOverflow):
		t.queueDrops.Add(1)
		n.logf(slog.LevelWarn, "dropping an edge that does not drain", "peer", t.name(), "queued_bytes", t.q.backlog())
		t.close(fmt.Sprintf("send queue over %d MiB: peer not keeping up", relayHardFactor*n.cfg.SendQueueBytes>>20), false, true)
	case n.ctx.Err() != nil:
		return err
	}
	return nil
}

// Relaying waits relayPatience for room below the send-queue bound, then
// may fill the queue up to relayHardFactor times the bound (see pushRelay).
const (
	relayPatience   = 50 * time.Millisecond
	relayHardFactor = 4
)

// deliver hands a message to the subscriber queue. When the queue is full
// the edge's reader waits (TCP flow control then slows the sender); while it
// waits, keep-alive does not count the peer's unread pongs against it (the
// reader marks itself busy around every frame it handles).
func (n *Node) deliver(e *edge, m *Message, stats *topicCounters) {
	if n.events.wantsMessages() {
		n.emit(&MessageEvent{EventBase: now(), Msg: m})
	}
	if n.hist != nil {
		n.remember(m.Topic, m.From, m.FromID, m.Time, m.Data, false)
	}
	if n.terminated.Load() {
		n.undelivered.Add(1)
		stats.dropped.Add(1)
		return
	}
	select {
	case n.msgs <- m: // the common case, without a full select
		return
	default:
	}
	select {
	case n.msgs <- m:
	case <-n.ctx.Done():
	}
}

// Messages returns the subscriber queue: every message received on a
// subscribed topic, in arrival order. It is closed when the node closes.
// The queue is bounded; a consumer that falls behind slows the senders down
// instead of losing messages.
func (n *Node) Messages() <-chan *Message { return n.msgs }

// Next waits for the next message (the original's message_stream, one step).
// After TerminateStream it returns ErrStreamTerminated at once, and a Next
// already waiting returns it too.
func (n *Node) Next(ctx context.Context) (*Message, error) {
	if n.terminated.Load() {
		return nil, ErrStreamTerminated
	}
	// A queued message is taken without the three-way select (the common
	// case for a busy consumer).
	select {
	case m, ok := <-n.msgs:
		if !ok {
			return nil, ErrClosed
		}
		return m, nil
	default:
	}
	select {
	case m, ok := <-n.msgs:
		if !ok {
			return nil, ErrClosed
		}
		return m, nil
	case <-n.streamEnd:
		return nil, ErrStreamTerminated
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Stream iterates over incoming messages until ctx ends, the node closes or
// TerminateStream is called (the original's `async with streamer as
// stream`, whose generator stops after terminate_stream).
func (n *Node) Stream(ctx context.Context) iter.Seq[*Message] {
	return func(yield func(*Message) bool) {
		for {
			m, err := n.Next(ctx)
			if err != nil || !yield(m) {
				return
			}
		}
	}
}

// TerminateStream stops delivering messages to the subscriber queue (the
// original's terminate_stream): Stream ends and Next returns
// ErrStreamTerminated, at once for a caller already waiting. Routing and
// relaying go on. Messages not delivered because of it are counted in
// Undelivered; it cannot be undone.
func (n *Node) TerminateStream() {
	n.terminateOnce.Do(func() {
		n.terminated.Store(true)
		close(n.streamEnd)
	})
}

// Undelivered counts messages not delivered after TerminateStream.
func (n *Node) Undelivered() uint64 { return n.undelivered.Load() }

// Subscriptions returns this node's topics.
func (n *Node) Subscriptions() []string {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.subscriptionsLocked()
}

// Subscribe adds topics at run time; peers learn of it at once.
func (n *Node) Subscribe(topics ...string) error { return n.subscribe(false, topics) }

// SubscribePaired adds topics at run time as already paired (the
// original's subscribe(subscriptions, paired=True)): discovery does not
// look for peers of them, and other nodes' discovery may pair with this
// one. Topics already subscribed become paired.
func (n *Node) SubscribePaired(topics ...string) error { return n.subscribe(true, topics) }

func (n *Node) subscribe(paired bool, topics []string) error {
	for _, t := range topics {
		if !wire.ValidName(t, wire.MaxTopicLen) {
			return fmt.Errorf("%w: %q", ErrInvalidTopic, t)
		}
	}
	changed := false
	n.mu.Lock()
	for _, t := range topics {
		if !n.subs[t] {
			if len(n.subs) >= wire.MaxSubscriptions {
				n.mu.Unlock()
				return fmt.Errorf("%w: more than %d subscriptions", ErrInvalidTopic, wire.MaxSubscriptions)
			}
			n.subs[t] = true
			n.paired[t] = &pairing{paired: n.cfg.Root || paired, outcome: pairedOutcome(paired)}
			changed = true
		} else if p := n.paired[t]; paired && p != nil && !p.paired {
			p.paired, p.outcome = true, pairedOutcome(paired)
		}
	}
	n.mu.Unlock()
	if changed {
		n.announceSubs()
	}
	return nil
}

func pairedOutcome(paired bool) string {
	if paired {
		return "subscribed as paired"
	}
	return ""
}

// Unsubscribe removes topics at run time; peers learn of it at once.
func (n *Node) Unsubscribe(topics ...string) error {
	changed := false
	n.mu.Lock()
	for _, t := range topics {
		if n.subs[t] {
			delete(n.subs, t)
			delete(n.paired, t)
			changed = true
		}
	}
	n.mu.Unlock()
	if changed {
		n.announceSubs()
	}
	return nil
}

// announceSubs invalidates cached routes and tells every peer our new
// subscriptions.
func (n *Node) announceSubs() {
	n.routeGen.Add(1)
	n.mu.RLock()
	subs := n.subscriptionsLocked()
	n.mu.RUnlock()
	f, err := wire.AppendControlFrame(nil, wire.KindSubs, "", &wire.Subs{Subs: subs, Root: n.cfg.Root})
	if err != nil {
		return
	}
	for _, e := range n.liveEdges() {
		e.sendCtrl(f)
	}
	n.emit(&SubscriptionEvent{EventBase: now(), Subscriptions: subs})
}

func (n *Node) handleSubs(e *edge, body []byte) error {
	var s wire.Subs
	if err := wire.Unmarshal(body, &s); err != nil {
		return err
	}
	if len(s.Subs) > wire.MaxSubscriptions {
		return fmt.Errorf("%d subscriptions (limit %d)", len(s.Subs), wire.MaxSubscriptions)
	}
	for _, t := range s.Subs {
		if !wire.ValidName(t, wire.MaxTopicLen) {
			return fmt.Errorf("invalid subscription %q", truncate(t, 40))
		}
	}
	r := newRoute(s.Subs, s.Root)
	e.route.Store(r)
	n.routeGen.Add(1)
	n.emit(&PeerSubscriptionEvent{EventBase: now(), PeerID: e.peerStr, Name: e.name(), Subscriptions: r.list, Root: r.root})
	return nil
}

// Command names the kinds of traffic a node relays for others (the original's
// propagation commands).
type Command string

// Relayed commands.
const (
	CommandPublish  Command = "publish"  // topic messages
	CommandDiscover Command = "discover" // discovery requests
	CommandFetch    Command = "fetch"    // store fetch requests
)

// propagation is a set of relayed commands; every command is relayed by
// default.
type propagation struct {
	mu  sync.RWMutex
	off map[Command]bool
	all bool // global switch off
}

func (p *propagation) enabled(c Command) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return !p.all && !p.off[c]
}

// SetPropagation turns relaying for other nodes on or off (the original's
// enable/disable_message_propagation). Unlike the original, turning it off never
// stops local delivery: the node still receives its own subscriptions.
func (n *Node) SetPropagation(on bool) {
	n.prop.mu.Lock()
	n.prop.all = !on
	n.prop.mu.Unlock()
}

// SetPropagated adds or removes one command from the relayed set (the
// original's add/remove_propagation_command). A command other than
// CommandPublish, CommandDiscover and CommandFetch is an ErrUnknownCommand
// (the original accepted any string, so a typo silently changed nothing).
func (n *Node) SetPropagated(c Command, on bool) error {
	switch c {
	case CommandPublish, CommandDiscover, CommandFetch:
	default:
		return fmt.Errorf("%w: %q (relayed commands: %s, %s, %s)", ErrUnknownCommand, c, CommandPublish, CommandDiscover, CommandFetch)
	}
	n.prop.mu.Lock()
	defer n.prop.mu.Unlock()
	if n.prop.off == nil {
		n.prop.off = make(map[Command]bool)
	}
	if on {
		delete(n.prop.off, c)
	} else {
		n.prop.off[c] = true
	}
	return nil
}

// Propagated reports whether the node relays command c.
func (n *Node) Propagated(c Command) bool { return n.prop.enabled(c) }

// pubClock reads the wall clock for publication times at half the cost of
// time.Now: one monotonic reading added to a wall-clock anchor, which is
// renewed every second so that adjustments of the system clock are
// followed. Only Publish uses it, under pubMu.
type pubClock struct {
	anchor time.Time // carries a monotonic reading
	wall   int64     // anchor's Unix nanoseconds
}

func (c *pubClock) nowUnixNano() int64 {
	if !c.anchor.IsZero() {
		if d := time.Since(c.anchor); d >= 0 && d < time.Second {
			return c.wall + int64(d)
		}
	}
	c.anchor = time.Now()
	c.wall = c.anchor.UnixNano()
	return c.wall
}
