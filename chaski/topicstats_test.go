package chaski

import (
	"fmt"
	"testing"
)

// A chain a – b – c on one topic: b receives a's messages, relays them to c
// and delivers them; the per-topic and per-edge counters say so.
func TestTopicAndFrameCounters(t *testing.T) {
	a := startNode(t, "127.0.0.1", Config{Name: "a", Subscriptions: []string{"t"}})
	b := startNode(t, "127.0.0.1", Config{Name: "b", Subscriptions: []string{"t"}})
	c := startNode(t, "127.0.0.1", Config{Name: "c", Subscriptions: []string{"t"}})
	connect(t, b, a)
	connect(t, c, b)
	eventually(t, "subscriptions known", func() bool {
		ea, ok1 := a.Edge(b.ID())
		eb, ok2 := b.Edge(c.ID())
		return ok1 && ok2 && ea.Subscribes("t") && eb.Subscribes("t")
	})
	const n = 5
	for i := 0; i < n; i++ {
		publish(t, a, "t", fmt.Sprint(i))
	}
	for i := 0; i < n; i++ {
		recv(t, b)
		recv(t, c)
	}
	row := func(nd *Node) TopicStats {
		for _, s := range nd.TopicStats() {
			if s.Topic == "t" {
				return s
			}
		}
		return TopicStats{}
	}
	if s := row(a); s.MsgsOut != n || s.MsgsIn != 0 {
		t.Fatalf("a: %+v", s)
	}
	if s := row(b); s.MsgsIn != n || s.Relayed != n || s.Dropped != 0 {
		t.Fatalf("b: %+v", s)
	}
	if s := row(c); s.MsgsIn != n || s.Relayed != 0 {
		t.Fatalf("c: %+v", s)
	}
	ab, _ := a.Edge(b.ID())
	ba, _ := b.Edge(a.ID())
	// Every message is a frame (keep-alive pings may add more; the
	// handshake is not counted).
	if ab.FramesOut < n || ba.FramesIn < n || ab.QueueDrops != 0 {
		t.Fatalf("a→b frames out %d, b←a frames in %d, drops %d", ab.FramesOut, ba.FramesIn, ab.QueueDrops)
	}
	c.TerminateStream()
	publish(t, a, "t", "late")
	eventually(t, "c counts the undelivered message", func() bool { return row(c).Dropped == 1 })
}

func TestTopicTableIsBounded(t *testing.T) {
	var tt topicTable
	for i := 0; i < MaxTrackedTopics+10; i++ {
		tt.get(fmt.Sprint("t", i)).msgsIn.Add(1)
	}
	if len(tt.m) != MaxTrackedTopics || tt.other.msgsIn.Load() != 10 {
		t.Fatalf("%d rows, other %d", len(tt.m), tt.other.msgsIn.Load())
	}
}
