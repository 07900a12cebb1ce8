package tui

import (
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"
)

// The NATS bridge's row in Edges. The bridge (chaski/natsbridge) reports
// itself through the node's status fields (nats_state, nats_server,
// nats_rtt, nats_msgs_in, nats_msgs_out, nats_pending, nats_dropped,
// nats_topics, nats_error; see Bridge.StatusFields), which every snapshot
// carries, so the dashboard needs no bridge API and shows the same figures
// as `chaski status`, locally and over SSH.

// bridgeRow is the bridge's state from one status snapshot.
type bridgeRow struct {
	state, server, rtt, in, out, pending, dropped, topics, stream, kv, err string
}

// bridgeOf reads the bridge's fields; ok is false when the node has none.
func bridgeOf(extra map[string]string) (bridgeRow, bool) {
	if extra["nats_state"] == "" {
		return bridgeRow{}, false
	}
	return bridgeRow{
		state: extra["nats_state"], server: extra["nats_server"], rtt: extra["nats_rtt"],
		in: extra["nats_msgs_in"], out: extra["nats_msgs_out"], pending: extra["nats_pending"],
		dropped: extra["nats_dropped"], topics: extra["nats_topics"], stream: extra["nats_stream"],
		kv: extra["nats_kv"], err: extra["nats_error"],
	}, true
}

func (p *edgesPane) bridgeState(b *bridgeRow) (string, lipgloss.Style) {
	st := p.sh.st
	sy := st.Symbols
	switch b.state {
	case "up":
		return sy.Up + " nats up", st.EdgeUp
	case "connecting":
		return sy.Connecting + " nats connecting", st.EdgeConnecting
	case "reconnecting":
		return sy.Reconnecting + " nats reconnecting", st.EdgeReconnecting
	case "error":
		return sy.Fail + " nats error", st.Error
	}
	return sy.Closed + " nats " + b.state, st.EdgeClosed
}

func (p *edgesPane) bridgeCells(b *bridgeRow, t *table) []cell {
	st := p.sh.st
	state, sty := p.bridgeState(b)
	if b.state == "error" {
		return []cell{{text: state, style: &sty}, {text: "NATS"}, {text: b.err, style: &sty, span: true}} // NAME and STATE are always shown
	}
	rtt := "–"
	if d, err := time.ParseDuration(b.rtt); err == nil && d > 0 {
		rtt = fmtRTT(d)
	}
	server := b.server
	if server == "" {
		server = "–"
	}
	topics := b.topics
	if b.stream != "" {
		topics += " ⊂ " + b.stream
	}
	// After the round trip, one cell over the remaining columns carries the
	// bridge's traffic (or, when it is not up, why).
	traffic := "↓" + b.in + " ↑" + b.out
	if b.pending != "" && b.pending != "0" {
		traffic += " ⧗" + b.pending
	}
	trafficStyle := st.Row
	if b.dropped != "" && b.dropped != "0" {
		traffic += " dropped " + b.dropped
		trafficStyle = st.Warn
	}
	if b.state != "up" && b.err != "" {
		traffic, trafficStyle = b.err, st.Muted
	}
	cells := []cell{
		{text: state, style: &sty},
		{text: "NATS"},
		{text: strings.TrimPrefix(server, "nats://"), style: &st.Muted},
		{text: topics},
		{text: rtt},
	}
	// The traffic spans from the first column after LAST that is on screen
	// (a span cell in a hidden column would not be drawn).
	for i := len(cells); i < len(t.widths); i++ {
		if t.widths[i] > 0 {
			return append(cells, cell{text: traffic, style: &trafficStyle, span: true})
		}
		cells = append(cells, cell{})
	}
	return cells
}

func (p *edgesPane) bridgeDetail(b *bridgeRow) string {
	lines := []string{
		"NATS bridge (topic T is subject <prefix>.T, both ways)",
		"state: " + b.state, "server: " + b.server, "round trip: " + b.rtt, "topics: " + b.topics,
		"messages from NATS into the mesh: " + b.in, "messages from the mesh to NATS: " + b.out,
		"waiting for NATS (queued, held while disconnected, or not yet acknowledged): " + b.pending,
		"dropped (buffers full): " + b.dropped,
	}
	if b.stream != "" {
		lines = append(lines, "JetStream stream: "+b.stream)
	}
	if b.kv != "" {
		lines = append(lines, "key-value bucket: "+b.kv)
	}
	if b.err != "" {
		lines = append(lines, "last error: "+b.err)
	}
	return strings.Join(lines, "\n")
}
