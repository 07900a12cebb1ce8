package sshui

import (
	"sync"
	"sync/atomic"

	"github.com/chaski-dev/chaski/chaski"
)

// viewerMessages is each viewer's message buffer: enough for a second of a
// busy topic between two of its frames; past it the viewer loses lines.
const viewerMessages = 4096

// fanout hands every message the node delivers to each viewer's own
// bounded channel. The node's subscriber queue belongs to its own consumer
// (`chaski node` prints it), so viewers get copies of the node's message
// events instead: one watch on the node for all viewers, started with the
// first viewer and stopped with the last, and a send that never waits, so
// a viewer that falls behind loses lines (counted) and nobody else waits.
type fanout struct {
	node *chaski.Node

	mu      sync.Mutex
	subs    map[chan *chaski.Message]struct{}
	stop    func()        // stops the current watch; nil when none
	done    chan struct{} // closed when the current watch's goroutine ended
	closed  bool          // the node closed: no more messages
	dropped atomic.Uint64
}

func newFanout(n *chaski.Node) *fanout {
	return &fanout{node: n, subs: map[chan *chaski.Message]struct{}{}}
}

// subscribe returns a viewer's message channel and the function that ends
// it.
func (f *fanout) subscribe() (<-chan *chaski.Message, func()) {
	ch := make(chan *chaski.Message, viewerMessages)
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		close(ch)
		return ch, func() {}
	}
	f.subs[ch] = struct{}{}
	if f.stop == nil {
		events, stop := f.node.WatchMessages(8192)
		done := make(chan struct{})
		f.stop, f.done = stop, done
		go f.run(events, done)
	}
	f.mu.Unlock()
	var once sync.Once
	return ch, func() { once.Do(func() { f.unsubscribe(ch) }) }
}

func (f *fanout) unsubscribe(ch chan *chaski.Message) {
	f.mu.Lock()
	if _, ok := f.subs[ch]; ok {
		delete(f.subs, ch)
		close(ch)
	}
	var stop func()
	var done chan struct{}
	if len(f.subs) == 0 && f.stop != nil {
		stop, done = f.stop, f.done
		f.stop, f.done = nil, nil
	}
	f.mu.Unlock()
	if stop != nil {
		// Without viewers the node need not build message events.
		stop()
		<-done
	}
}

func (f *fanout) run(events <-chan chaski.Event, done chan struct{}) {
	defer close(done)
	for ev := range events {
		me, ok := ev.(*chaski.MessageEvent)
		// Incoming messages only: a viewer shows its own lines when it
		// publishes them, as the local dashboard does.
		if !ok || me.Msg == nil || me.Outgoing {
			continue
		}
		f.mu.Lock()
		for ch := range f.subs {
			select {
			case ch <- me.Msg:
			default:
				f.dropped.Add(1)
			}
		}
		f.mu.Unlock()
	}
	// The watch ended: stopped by the last viewer (then it is no longer
	// the current one), or the node closed.
	f.mu.Lock()
	if f.done == done {
		f.closed = true
		f.stop, f.done = nil, nil
		for ch := range f.subs {
			close(ch)
			delete(f.subs, ch)
		}
	}
	f.mu.Unlock()
}

// Dropped counts messages viewers lost because they fell behind.
func (f *fanout) Dropped() uint64 { return f.dropped.Load() }
