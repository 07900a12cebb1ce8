package tui

import (
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/chaski-dev/chaski/chaski"
	"github.com/chaski-dev/chaski/chaski/wire"
)

// BenchmarkUpdateViewPerMessage measures one 50 ms frame at 10,000
// messages/s with every pane on screen (160×50): 500 messages from the
// subscriber queue and a batch of 50 latency events through Update, each
// followed by the View the program asks for (cached), a node snapshot every
// tenth frame, then the frame tick and the real repaint (the chat and the
// edges only, every pane once a second). The Edges pane has room for the
// latency chart of the selected edge at this size, so the chart is drawn
// with every latency batch. ns/msg is the cost per incoming message; 5% of a
// core at 10,000 msgs/s is 5,000 ns/msg.
func BenchmarkUpdateViewPerMessage(b *testing.B) {
	b.Run("cached", func(b *testing.B) { benchUpdateView(b) })
	b.Run("uncached", func(b *testing.B) {
		noPaneCache = true
		defer func() { noPaneCache = false }()
		benchUpdateView(b)
	})
}

func benchUpdateView(b *testing.B) {
	const perFrame = 10000 / 20
	f := newFake()
	f.populate()
	f.status.Subscriptions = []string{"chat", "news"}
	// The clock moves 50 ms per frame, so that the once-a-second full
	// repaint (uptime, ages) happens as in real use, and a snapshot of the
	// node arrives every 10 frames (every 500 ms).
	clock := testStart
	m := newTestModelOpts(b, f, 160, 50, Options{Now: func() time.Time { return clock }})
	snap := m.m.snapshot(true)
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
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, msg := range msgs {
			seq++
			msg.ID = wire.MessageID{Origin: wire.NodeID{7}, Seq: seq}
		}
		m.Update(messagesMsg{msgs: msgs})
		_ = m.View() // the program renders after every Update: cached here
		for _, ev := range evs {
			ev.(*chaski.LatencyEvent).At = clock // on the chart's time axis
		}
		m.Update(eventsMsg{evs: evs})
		_ = m.View()
		if i%10 == 9 {
			m.Update(snap)
			_ = m.View()
		}
		clock = clock.Add(frameInterval)
		m.Update(frameMsg{})
		_ = m.View() // the frame's real repaint
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perFrame), "ns/msg")
	// CPU time is steadier than wall time on a shared machine (it still
	// includes the garbage collector's work on other threads).
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N*perFrame), "cpu-ns/msg")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
