package tui

import (
	"strconv"
	"testing"
	"time"

	"github.com/chaski-dev/chaski/chaski"
	"github.com/chaski-dev/chaski/chaski/wire"
)

// BenchmarkUpdateViewPerMessage measures one 50 ms frame at 10,000
// messages/s with every pane on screen (160×50): 500 messages from the
// subscriber queue and a batch of 50 latency events through Update, each
// followed by the View the program asks for (cached), then the frame tick
// and the real repaint. ns/msg is the cost per incoming message; 5% of a
// core at 10,000 msgs/s is 5,000 ns/msg.
func BenchmarkUpdateViewPerMessage(b *testing.B) {
	const perFrame = 10000 / 20
	f := newFake()
	f.populate()
	f.status.Subscriptions = []string{"chat", "news"}
	m := newTestModel(b, f, 160, 50)
	evs := make([]chaski.Event, perFrame/10)
	msgs := make([]*chaski.Message, perFrame)
	for i := range evs {
		evs[i] = &chaski.LatencyEvent{PeerID: "p-bravo", RTT: time.Duration(30+i%9) * time.Microsecond}
	}
	for i := range msgs {
		topic := "chat"
		if i%3 == 0 {
			topic = "news"
		}
		msgs[i] = &chaski.Message{Topic: topic, From: "bravo", FromID: "id-bravo", Time: testStart,
			Data: []byte("message number " + strconv.Itoa(i) + " with a typical chat-sized payload")}
	}
	seq := uint64(0)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, msg := range msgs {
			seq++
			msg.ID = wire.MessageID{Origin: wire.NodeID{7}, Seq: seq}
		}
		m.Update(messagesMsg{msgs: msgs})
		_ = m.View() // the program renders after every Update: cached here
		m.Update(eventsMsg{evs: evs})
		_ = m.View()
		m.Update(frameMsg{})
		_ = m.View() // the frame's real repaint
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perFrame), "ns/msg")
}
