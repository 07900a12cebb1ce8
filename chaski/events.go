package chaski

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Event is something that happened in the node, for observers such as the
// dashboard and `chaski node --json`. Events are informational: they travel
// on bounded channels and are dropped (and counted) when an observer falls
// behind, so a slow observer never slows the node. Messages owed to a
// subscriber never travel as events; they use Messages/Stream.
type Event interface {
	When() time.Time
}

// EventBase carries the time of an event.
type EventBase struct{ At time.Time }

// When returns the time of the event.
func (e EventBase) When() time.Time { return e.At }

// EdgeUpEvent: a handshake completed and the edge is live.
type EdgeUpEvent struct {
	EventBase
	Edge EdgeInfo
}

// EdgeDownEvent: an edge ended. Reconnect tells whether the node will try
// to reconnect (an unexpected loss) or not (a deliberate close).
type EdgeDownEvent struct {
	EventBase
	Edge      EdgeInfo
	Reason    string
	Reconnect bool
}

// EdgeStateEvent: a lost peer's reconnection state changed (reconnecting
// with an attempt number, or given up: StateClosed). Next is when the
// attempt will dial; Err is why the previous attempt failed (or, with
// StateClosed, the last error).
type EdgeStateEvent struct {
	EventBase
	PeerID, Name, Address string
	State                 EdgeState
	Attempt               int
	Next                  time.Time
	Err                   string
}

// LatencyEvent: one ping completed (RTT) or was counted lost.
type LatencyEvent struct {
	EventBase
	PeerID string
	Name   string
	RTT    time.Duration
	Lost   bool
}

// LogEvent mirrors one log record of the node.
type LogEvent struct {
	EventBase
	Level   slog.Level
	Message string
	Attrs   string
}

// SubscriptionEvent: this node's subscriptions changed.
type SubscriptionEvent struct {
	EventBase
	Subscriptions []string
}

// PeerSubscriptionEvent: a peer announced new subscriptions.
type PeerSubscriptionEvent struct {
	EventBase
	PeerID, Name  string
	Subscriptions []string
	Root          bool
}

// DiscoveryEvent reports the progress of a discovery for one topic. Phase is
// one of "started", "paired", "first" (no peer answered in time: this node is
// now the first of the topic), "skipped" (already paired) or "failed".
type DiscoveryEvent struct {
	EventBase
	Topic  string
	Phase  string
	Peer   string // the peer paired with, when Phase is "paired"
	Detail string
}

// PairedEvent: the node is now paired for Topic. First is true when no peer
// answered and the node became the first of the topic.
type PairedEvent struct {
	EventBase
	Topic string
	Peer  string
	First bool
}

// TransferEvent reports a file transfer's progress or end.
type TransferEvent struct {
	EventBase
	Transfer TransferInfo
}

// StoreEvent reports a change of the local store.
type StoreEvent struct {
	EventBase
	Kind    string // put, delete, expire, clear, fetched
	Key     string
	Size    int
	Expires time.Time
	From    string // fetched: the name of the peer that answered
}

// MessageEvent is a lightweight notice that a message was published or
// delivered, for traffic counters and views. It carries the message only for
// observers that asked for it (WatchMessages); the copy owed to the
// subscriber goes through Messages regardless.
type MessageEvent struct {
	EventBase
	Outgoing bool
	Msg      *Message
}

// eventBus fans events out to watchers with non-blocking sends.
type eventBus struct {
	mu       sync.RWMutex
	watchers map[int]*watcher
	next     int
	dropped  atomic.Uint64
	msgWatch atomic.Int32 // number of watchers that want MessageEvents
	watching atomic.Int32 // number of watchers
	// recent keeps the last log events so that an observer attached after
	// start-up (a dashboard) still sees what happened just before.
	logMu  sync.Mutex
	recent [recentLogs]*LogEvent
	nLogs  int
}

const recentLogs = 64

type watcher struct {
	ch       chan Event
	messages bool
}

// Watch returns a channel of events with the given buffer (0 → 1024) and a
// function that stops the watch. It starts with the node's last log events
// (up to 64), so a late observer sees what happened just before. The channel is closed when the watch stops
// or the node closes. When the buffer is full, events are dropped and counted
// in Status().Dropped.
func (n *Node) Watch(buffer int) (<-chan Event, func()) {
	return n.watch(buffer, false)
}

// WatchMessages is Watch that also receives a MessageEvent for every message
// this node publishes or receives (for dashboards); they are dropped like
// any other event when the buffer is full.
func (n *Node) WatchMessages(buffer int) (<-chan Event, func()) {
	return n.watch(buffer, true)
}

func (n *Node) watch(buffer int, messages bool) (<-chan Event, func()) {
	if buffer <= 0 {
		buffer = 1024
	}
	b := &n.events
	w := &watcher{ch: make(chan Event, buffer), messages: messages}
	b.mu.Lock()
	if b.watchers == nil {
		// The node already closed: hand back a closed channel.
		b.mu.Unlock()
		close(w.ch)
		return w.ch, func() {}
	}
	// Replay recent log lines first. Publishers hold the read lock while
	// they record and send, so every event is either replayed here or sent
	// after registration, never both.
	b.logMu.Lock()
	for i := max(0, b.nLogs-recentLogs); i < b.nLogs; i++ {
		select {
		case w.ch <- b.recent[i%recentLogs]:
		default:
		}
	}
	b.logMu.Unlock()
	id := b.next
	b.next++
	b.watchers[id] = w
	b.watching.Add(1)
	if messages {
		b.msgWatch.Add(1)
	}
	b.mu.Unlock()
	var once sync.Once
	return w.ch, func() {
		once.Do(func() {
			b.mu.Lock()
			if ww, ok := b.watchers[id]; ok {
				delete(b.watchers, id)
				b.watching.Add(-1)
				if ww.messages {
					b.msgWatch.Add(-1)
				}
				close(ww.ch)
			}
			b.mu.Unlock()
		})
	}
}

func (b *eventBus) publish(e Event) {
	_, isMsg := e.(*MessageEvent)
	b.mu.RLock()
	if l, ok := e.(*LogEvent); ok {
		b.logMu.Lock()
		b.recent[b.nLogs%recentLogs] = l
		b.nLogs++
		b.logMu.Unlock()
	}
	for _, w := range b.watchers {
		if isMsg && !w.messages {
			continue
		}
		select {
		case w.ch <- e:
		default:
			b.dropped.Add(1)
		}
	}
	b.mu.RUnlock()
}

func (b *eventBus) close() {
	b.mu.Lock()
	for id, w := range b.watchers {
		close(w.ch)
		delete(b.watchers, id)
	}
	b.watchers = nil
	b.mu.Unlock()
}

func (b *eventBus) wantsMessages() bool { return b.msgWatch.Load() > 0 }

// watched reports whether anyone watches events at all: hot paths skip
// building an event nobody will see.
func (b *eventBus) watched() bool { return b.watching.Load() > 0 }
