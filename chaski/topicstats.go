package chaski

import (
	"sort"
	"sync"
	"sync/atomic"
)

// MaxTrackedTopics bounds the per-topic counters a node keeps. Topic names
// come from the network (a root relays every topic a peer invents), so the
// table cannot grow with them: past this many topics, traffic is counted
// under OtherTopics.
const MaxTrackedTopics = 256

// OtherTopics is the TopicStats.Topic under which the traffic of topics
// beyond MaxTrackedTopics is counted.
const OtherTopics = "_other"

// TopicStats counts one topic's messages at this node since it started.
type TopicStats struct {
	Topic   string
	MsgsIn  uint64 // messages received for the first time (duplicates not counted)
	MsgsOut uint64 // messages this node published
	Relayed uint64 // copies forwarded to other peers (one per target edge)
	Dropped uint64 // received messages not delivered to the subscriber (after TerminateStream)
}

// topicCounters is one topic's row; the hot paths keep a pointer to it in
// their route caches, so counting costs one atomic add and no lookup.
type topicCounters struct {
	msgsIn, msgsOut, relayed, dropped atomic.Uint64
}

type topicTable struct {
	mu    sync.Mutex
	m     map[string]*topicCounters
	other topicCounters
}

// get returns the counters of topic, creating them while the table has room.
func (t *topicTable) get(topic string) *topicCounters {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c := t.m[topic]; c != nil {
		return c
	}
	if len(t.m) >= MaxTrackedTopics {
		return &t.other
	}
	if t.m == nil {
		t.m = make(map[string]*topicCounters)
	}
	c := &topicCounters{}
	t.m[topic] = c
	return c
}

// TopicStats returns the per-topic message counters, sorted by topic, with
// an OtherTopics row last when some topics were not tracked.
func (n *Node) TopicStats() []TopicStats {
	t := &n.topicStats
	t.mu.Lock()
	out := make([]TopicStats, 0, len(t.m)+1)
	for name, c := range t.m {
		out = append(out, c.snapshot(name))
	}
	other := t.other.snapshot(OtherTopics)
	t.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Topic < out[j].Topic })
	if other.MsgsIn|other.MsgsOut|other.Relayed|other.Dropped != 0 {
		out = append(out, other)
	}
	return out
}

func (c *topicCounters) snapshot(topic string) TopicStats {
	return TopicStats{Topic: topic, MsgsIn: c.msgsIn.Load(), MsgsOut: c.msgsOut.Load(),
		Relayed: c.relayed.Load(), Dropped: c.dropped.Load()}
}

// FetchStats counts store fetches over the network.
type FetchStats struct {
	OK     uint64 // Fetch calls answered by a peer
	Failed uint64 // Fetch calls that went to the network and got no answer
	Served uint64 // requests of other nodes this node answered from its store
}

type fetchCounters struct{ ok, failed, served atomic.Uint64 }

// FetchStats returns the node's fetch counters.
func (n *Node) FetchStats() FetchStats {
	c := &n.fetchCount
	return FetchStats{OK: c.ok.Load(), Failed: c.failed.Load(), Served: c.served.Load()}
}
