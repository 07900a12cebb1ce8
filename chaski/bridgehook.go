package chaski

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chaski-dev/chaski/chaski/wire"
)

// Hooks for bridges to other messaging systems (chaski/natsbridge): a tap
// that sees every message of chosen topics that this node publishes or
// receives, with its id, and Inject, which puts a message that carries an id
// of its own into the mesh as if this node relayed it. Together they let a
// bridge mirror topics without loops: what it injects is recorded in the
// duplicate filter, so when the same id comes back (through another bridge,
// or the mesh) it is dropped, and the tap never sees injected messages.

// Tap observes messages; see Node.AddTap.
type Tap struct {
	// Wants reports whether the tap observes topic. It is called on hot
	// paths and must be cheap and safe for concurrent use.
	Wants func(topic string) bool
	// Observe is called once per message: for this node's own publications
	// (local true; then Publish succeeds even when no mesh peer subscribes)
	// and for each message received from the mesh on a subscribed topic
	// (local false), on the goroutine that handles it (an edge's reader, or
	// the publisher). It must not block for long. m and m.Data may be kept
	// but not changed (the subscriber queue holds the same message).
	Observe func(m *Message, local bool)
}

type tapSet struct {
	mu   sync.Mutex
	list atomic.Pointer[[]*Tap]
	// injRoute caches Inject's targets like pubRoute does Publish's.
	injRoute atomic.Pointer[injectRouteCache]
}

type injectRouteCache struct {
	gen     uint64
	topic   string
	origin  wire.NodeID
	originS string // origin as text (Message.FromID), made once per origin
	targets []*edge
	stats   *topicCounters
}

// injectFrames are the scratch buffers Inject builds frames in (the queues
// copy them).
var injectFrames = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// AddTap registers t and returns a function that removes it.
func (n *Node) AddTap(t *Tap) (remove func()) {
	n.taps.mu.Lock()
	defer n.taps.mu.Unlock()
	var next []*Tap
	if cur := n.taps.list.Load(); cur != nil {
		next = append(next, *cur...)
	}
	next = append(next, t)
	n.taps.list.Store(&next)
	n.routeGen.Add(1)
	return func() {
		n.taps.mu.Lock()
		defer n.taps.mu.Unlock()
		var rest []*Tap
		if cur := n.taps.list.Load(); cur != nil {
			for _, x := range *cur {
				if x != t {
					rest = append(rest, x)
				}
			}
		}
		n.taps.list.Store(&rest)
	}
}

// tapsFor returns the taps that want topic (nil when none: the common case
// costs one atomic load).
func (n *Node) tapsFor(topic string) []*Tap {
	cur := n.taps.list.Load()
	if cur == nil || len(*cur) == 0 {
		return nil
	}
	// Usually every tap (one bridge) wants the topic: then the list itself
	// is the answer, without a slice per message (it is never changed in
	// place: AddTap and its remover store new lists).
	all := true
	for _, t := range *cur {
		if !t.Wants(topic) {
			all = false
			break
		}
	}
	if all {
		return *cur
	}
	var out []*Tap
	for _, t := range *cur {
		if t.Wants(topic) {
			out = append(out, t)
		}
	}
	return out
}

func observe(taps []*Tap, m *Message, local bool) {
	for _, t := range taps {
		t.Observe(m, local)
	}
}

// NodeID returns the node's id in wire form (the origin of its messages).
func (n *Node) NodeID() wire.NodeID { return n.id }

// Inject puts m into the mesh under its own id m.ID: it is relayed to every
// edge whose peer wants m.Topic (except the edge to the id's origin) and
// delivered to this node's subscriber queue when the node subscribes to the
// topic, as if a peer had sent it (m.From, m.Time and m.Via are kept; Hops
// is 0). It reports false, doing nothing, when the duplicate filter has
// already seen the id (the message was here before, through the mesh or an
// earlier injection). The message is marked as bridged (wire.PublishBridged,
// Message.Bridged), so that other bridges of the mesh do not send it back
// out; the taps of this node do not observe it at all. Inject waits
// while a target's queue is full (backpressure) until ctx ends. The node
// keeps m; the caller must not change it afterwards.
func (n *Node) Inject(ctx context.Context, m *Message) (bool, error) {
	if !wire.ValidName(m.Topic, wire.MaxTopicLen) {
		return false, fmt.Errorf("%w: %q", ErrInvalidTopic, m.Topic)
	}
	if n.closing.Load() {
		return false, ErrClosed
	}
	if len(m.From) > wire.MaxNameLen {
		m.From = m.From[:wire.MaxNameLen]
	}
	if len(m.Data)+wire.PublishFixedLen+len(m.From) > n.cfg.MaxFrameBody {
		return false, fmt.Errorf("%w: %d bytes (limit %d)", ErrTooLarge, len(m.Data), n.cfg.MaxFrameBody-wire.PublishFixedLen-len(m.From))
	}
	id := m.ID
	p := wire.Publish{ID: id, Time: m.Time.UnixNano(), TTL: uint8(n.cfg.TTL), Hops: wire.PublishBridged, Name: m.From, Payload: m.Data}
	// A message that comes with its origin's signature (a bridge carried
	// it) goes on signed, once the signature is checked against what is
	// injected; one that does not verify goes on unsigned, like any other.
	var signedFrame []byte
	if len(m.Data)+wire.PublishFixedLen+len(m.From)+wire.SigBlockLen > n.cfg.MaxFrameBody {
		m.Signature = nil // no room for the block under our peers' limit
	}
	if len(m.Signature) > 0 {
		f, err := wire.AppendSignedPublishWith(nil, m.Topic, &p, m.Signature, wire.NewDigestHash())
		if err != nil {
			n.guard.badSignatures.Add(1)
			m.Signature = nil
		} else {
			signedFrame = f
		}
	}
	m.Signed = signedFrame != nil
	if n.cfg.RequireSignatures && !m.Signed {
		n.guard.unsigned.Add(1)
		return false, ErrUnsigned
	}
	// The same stripe lock as handlePublish, so a copy arriving from the
	// mesh at the same moment is handled strictly before or after.
	lock := &n.originLocks[binary.LittleEndian.Uint64(id.Origin[:8])%uint64(len(n.originLocks))]
	lock.Lock()
	defer lock.Unlock()
	if !n.msgFilter.firstSight(id, time.Now().UnixNano(), injectSerial) {
		return false, nil
	}
	n.msgsIn.Add(1)
	gen := n.routeGen.Load()
	rc := n.taps.injRoute.Load()
	if rc == nil || rc.gen != gen || rc.topic != m.Topic || rc.origin != id.Origin {
		rc = &injectRouteCache{gen: gen, topic: m.Topic, origin: id.Origin, originS: idString(id.Origin),
			targets: n.routeTargets(m.Topic, nil, &id.Origin), stats: n.topicStats.get(m.Topic)}
		n.taps.injRoute.Store(rc)
	}
	rc.stats.msgsIn.Add(1)
	if len(rc.targets) > 0 {
		buf := injectFrames.Get().(*[]byte)
		frame, err := wire.AppendPublishFrame((*buf)[:0], m.Topic, &p)
		if err != nil {
			injectFrames.Put(buf)
			return false, err
		}
		var perr error
		for _, e := range rc.targets {
			f, borrowed := frame, true
			if signedFrame != nil && e.peerSigned {
				// Shared by the queues, never written to again.
				f, borrowed = signedFrame, false
			}
			if err := e.q.pushData(ctx, e.done, f, borrowed); err != nil {
				if ctx.Err() != nil {
					perr = err
					break
				}
				continue
			}
			e.msgsOut.Add(1)
		}
		if cap(frame) <= 64<<10 {
			*buf = frame[:0]
			injectFrames.Put(buf)
		}
		if perr != nil {
			return true, perr
		}
	}
	if n.cfg.DeliverAll || n.subscribedTo(m.Topic) {
		m.FromID, m.Seq, m.Hops, m.Bridged = rc.originS, id.Seq, 0, true
		n.deliver(nil, m, rc.stats)
	}
	return true, nil
}

// injectSerial stands for the edge of injected messages in the duplicate
// filter's leap rule (edge serials count from 1; no edge has this one).
const injectSerial = ^uint64(0)

// Emit publishes an event of a component attached to the node (a bridge's
// state changes) to the node's watchers, like the node's own events.
func (n *Node) Emit(e Event) { n.emit(e) }
