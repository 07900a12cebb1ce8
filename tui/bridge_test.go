package tui

import (
	"testing"
)

// The NATS bridge is its own row in Edges, from the node's status fields:
// state, server, RTT, messages in and out, pending; an error is a row too.
func TestBridgeRowInEdges(t *testing.T) {
	f := newFake()
	f.status.Extra = map[string]string{
		"nats_state": "up", "nats_server": "nats://127.0.0.1:4222", "nats_rtt": "312µs",
		"nats_msgs_in": "5", "nats_msgs_out": "7", "nats_pending": "3", "nats_dropped": "0",
		"nats_topics": "chat", "nats_prefix": "chaski",
	}
	m := newTestModel(t, f, 200, 60)
	s := frame(m)
	wantIn(t, s, "nats up", "NATS", "127.0.0.1:4222", "312µs", "↓5 ↑7 ⧗3")
	wantNot(t, s, "no edges yet")

	f.mu.Lock()
	f.status.Extra["nats_dropped"] = "2"
	f.mu.Unlock()
	wantIn(t, frame(newTestModel(t, f, 200, 60)), "↓5 ↑7 ⧗3 dropped 2")

	// Enter on the row opens its detail.
	keys(m, "esc", "1", "enter")
	wantIn(t, frame(m), "NATS bridge", "messages from the mesh to NATS: 7")

	f.mu.Lock()
	f.status.Extra = map[string]string{"nats_state": "error", "nats_server": "nats://127.0.0.1:4222",
		"nats_error": "the NATS server at nats://127.0.0.1:4222 refused the credentials given"}
	f.mu.Unlock()
	m2 := newTestModel(t, f, 200, 60)
	wantIn(t, frame(m2), "nats error", "the NATS server at nats://127.0.0.1:4222")
	keys(m2, "esc", "1", "enter") // the whole sentence in the detail
	wantIn(t, frame(m2), "last error: the NATS server at nats://127.0.0.1:4222 refused the credentials given")

	for _, sz := range sizes {
		checkFits(t, newTestModel(t, f, sz[0], sz[1]).View(), sz[0], sz[1])
	}
}
