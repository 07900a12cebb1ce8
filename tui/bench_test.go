package tui

import (
	"strconv"
	"testing"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/chaski-dev/chaski/chaski"
	"github.com/chaski-dev/chaski/chaski/wire"
)

// BenchmarkUpdateViewPerMessage measures one 50 ms frame at 10,000
// messages/s: 500 messages from the subscriber queue plus their 500 message
// events (which the dashboard must recognise and skip), each batch through
// Update followed by the View the program asks for (cached), then the frame
// tick and the real repaint. ns/msg is the cost per incoming message.
func BenchmarkUpdateViewPerMessage(b *testing.B) {
	const perFrame = 10000 / 20
	f := newFake()
	f.populate()
	f.status.Subscriptions = []string{"chat", "news"}
	m := newTestModel(b, f, 160, 50)
	m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("2")})
	evs := make([]chaski.Event, perFrame)
	msgs := make([]*chaski.Message, perFrame)
	for i := range evs {
		topic := "chat"
		if i%3 == 0 {
			topic = "news"
		}
		msgs[i] = &chaski.Message{Topic: topic, From: "bravo", FromID: "id-bravo", Time: testStart,
			Data: []byte("message number " + strconv.Itoa(i) + " with a typical chat-sized payload")}
		evs[i] = &chaski.MessageEvent{Msg: msgs[i]}
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
