package tui

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/chaski-dev/chaski/chaski"
	"github.com/chaski-dev/chaski/theme"
)

// clock is a test clock the model reads.
type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func lat(c *clock, peer string, rtt time.Duration, lost bool) *chaski.LatencyEvent {
	return &chaski.LatencyEvent{EventBase: chaski.EventBase{At: c.t}, PeerID: "p-" + peer, Name: peer, RTT: rtt, Lost: lost}
}

func chartModel(t *testing.T, w, h int) (Model, *fakeBackend, *clock) {
	f := newFake()
	f.edges = []chaski.EdgeInfo{
		{PeerID: "p-bravo", Name: "bravo", Address: "127.0.0.1:8512", State: chaski.StateUp, Dialed: true},
		{PeerID: "p-delta", Name: "delta", Address: "127.0.0.1:8514", State: chaski.StateUp},
	}
	f.status.Subscriptions = nil // command mode: Edges takes the keys
	c := &clock{t: testStart}
	m := newTestModelOpts(t, f, w, h, Options{Now: c.now})
	keys(m, "1")
	return m, f, c
}

// frameAt moves the model's frame on and returns the screen.
func frameAt(m Model, c *clock) string {
	send(m, frameMsg{at: c.t})
	return frame(m)
}

// A lost ping is a red mark on the chart and breaks the line: the columns
// between the answered pings on either side of it stay empty.
func TestChartLossIsAGapNeverInterpolated(t *testing.T) {
	st, _ := theme.New("mono", nil)
	now := testStart
	s := &latSeries{}
	s.add(latPoint{at: now.Add(-90 * time.Second), rtt: 50 * time.Microsecond})
	s.add(latPoint{at: now.Add(-60 * time.Second), lost: true})
	s.add(latPoint{at: now.Add(-30 * time.Second), rtt: 50 * time.Microsecond})
	rows := renderChart(st, []chartLine{{s: s, style: st.Spark}}, now, 2*time.Minute, 48, 6, true)
	if len(rows) != 6 {
		t.Fatalf("%d rows", len(rows))
	}
	plot := make([]string, 0, 5)
	for _, r := range rows[:5] {
		plot = append(plot, ansi.Strip(r)[8:]) // past the y labels and "┤"
	}
	stars := 0
	for _, r := range plot {
		stars += strings.Count(r, "*")
	}
	if stars != 2 {
		t.Errorf("%d dots, want the 2 answered pings only (no line across the loss):\n%s", stars, strings.Join(rows, "\n"))
	}
	if !strings.Contains(plot[4], "x") {
		t.Errorf("no loss mark on the bottom row:\n%s", strings.Join(rows, "\n"))
	}
	// Two answered pings in a row are joined.
	s2 := &latSeries{}
	s2.add(latPoint{at: now.Add(-90 * time.Second), rtt: 10 * time.Microsecond})
	s2.add(latPoint{at: now.Add(-30 * time.Second), rtt: 50 * time.Microsecond})
	rows = renderChart(st, []chartLine{{s: s2, style: st.Spark}}, now, 2*time.Minute, 48, 6, true)
	stars = 0
	for _, r := range rows[:5] {
		stars += strings.Count(ansi.Strip(r)[8:], "*")
	}
	if stars < 10 {
		t.Errorf("consecutive answered pings not joined (%d dots):\n%s", stars, strings.Join(rows, "\n"))
	}
	if !strings.Contains(ansi.Strip(rows[0]), "50µs") || !strings.Contains(ansi.Strip(rows[4]), "0┤") {
		t.Errorf("y axis not labelled from zero in µs:\n%s", strings.Join(rows, "\n"))
	}
	if !strings.Contains(ansi.Strip(rows[5]), "-2m") || !strings.Contains(ansi.Strip(rows[5]), "now") {
		t.Errorf("time axis not labelled:\n%s", strings.Join(rows, "\n"))
	}
}

// The statistics are trippy's columns, computed over every ping.
func TestChartStatsOfSelectedEdge(t *testing.T) {
	m, _, c := chartModel(t, 200, 60)
	for i := 0; i < 40; i++ {
		c.add(time.Second)
		send(m, events(lat(c, "bravo", time.Duration(100+i%4*10)*time.Microsecond, i%10 == 9)))
	}
	v := frameAt(m, c)
	wantIn(t, v, "RTT · bravo · path direct (dialed) · last 2m", "last 120µs", "min 100µs", "max 130µs", "p95 130µs",
		"loss 10% (4/40)", "path direct (dialed)", "×", "-2m", "now")
	// The braille plot is there.
	if !strings.ContainsAny(v, "⠁⠂⠄⡀⠈⠐⠠⢀⣀⠤⠒⠉") {
		t.Errorf("no braille in the chart:\n%s", v)
	}
	// b switches to ASCII, + and - zoom.
	keys(m, "b", "+")
	v = frameAt(m, c)
	wantIn(t, v, "last 1m · ascii", "-1m")
	keys(m, "-", "-", "-", "-")
	wantIn(t, frameAt(m, c), "last 10m")
	checkFits(t, frame(m), 200, 60)
}

// A peer that goes away and comes back keeps its history and statistics
// (keyed by node id), and the outage is shaded on the chart.
func TestChartReconnectKeepsHistory(t *testing.T) {
	m, f, c := chartModel(t, 200, 60)
	for i := 0; i < 10; i++ {
		c.add(time.Second)
		send(m, events(lat(c, "bravo", 200*time.Microsecond, false)))
	}
	down := f.edges[0]
	c.add(time.Second)
	send(m, events(&chaski.EdgeDownEvent{EventBase: chaski.EventBase{At: c.t}, Edge: down, Reason: "EOF", Reconnect: true}))
	c.add(20 * time.Second)
	v := frameAt(m, c)
	wantIn(t, v, "down since", "░", "loss 0% (0/10)")
	up := down
	up.Latency = chaski.LatencyStats{} // the node's tracker starts again
	send(m, events(&chaski.EdgeUpEvent{EventBase: chaski.EventBase{At: c.t}, Edge: up}))
	for i := 0; i < 5; i++ {
		c.add(time.Second)
		send(m, events(lat(c, "bravo", 400*time.Microsecond, false)))
	}
	v = frameAt(m, c)
	wantIn(t, v, "min 200µs", "max 400µs", "loss 0% (0/15)", "░")
	wantNot(t, v, "down since")
	// r resets the selected edge's figures.
	keys(m, "r")
	v = frameAt(m, c)
	wantIn(t, v, "last –", "loss –")
	wantNot(t, v, "░")
}

// space freezes the chart and its figures, with a badge that counts, while
// samples keep arriving; space again is live.
func TestChartFreeze(t *testing.T) {
	m, _, c := chartModel(t, 200, 60)
	for i := 0; i < 5; i++ {
		c.add(time.Second)
		send(m, events(lat(c, "bravo", 100*time.Microsecond, false)))
	}
	keys(m, " ")
	for i := 0; i < 12; i++ {
		c.add(time.Second)
		send(m, events(lat(c, "bravo", 900*time.Microsecond, false)))
	}
	v := frameAt(m, c)
	wantIn(t, v, "frozen 12 s", "max 100µs")
	keys(m, " ")
	v = frameAt(m, c)
	wantIn(t, v, "max 900µs")
	wantNot(t, v, "frozen")
}

// "a" puts every edge on one chart with a legend.
func TestChartAllEdges(t *testing.T) {
	m, _, c := chartModel(t, 200, 60)
	for i := 0; i < 5; i++ {
		c.add(time.Second)
		send(m, events(lat(c, "bravo", 100*time.Microsecond, false), lat(c, "delta", 300*time.Microsecond, false)))
	}
	keys(m, "a")
	v := frameAt(m, c)
	wantIn(t, v, "RTT · all edges", "● bravo", "● delta")
	// Colours are distinct per peer.
	st, _ := theme.New(theme.DefaultName, nil)
	if st.Peer(0).GetForeground() == st.Peer(1).GetForeground() {
		t.Error("two peers share a colour")
	}
}

// At 80×24 the edge list stays compact (the chart is drawn when zoomed).
func TestChartCompactAndZoomed(t *testing.T) {
	m, _, c := chartModel(t, 80, 24)
	for i := 0; i < 5; i++ {
		c.add(time.Second)
		send(m, events(lat(c, "bravo", 100*time.Microsecond, false)))
	}
	v := frameAt(m, c)
	checkFits(t, v, 80, 24)
	keys(m, "z")
	v = frameAt(m, c)
	checkFits(t, v, 80, 24)
	wantIn(t, v, "RTT · bravo", "loss 0% (0/5)") // the figures wrap rather than lose loss
}

// The export of a peer's latency has the chart's statistics, its points
// (lost ones marked) and its outages, as JSON.
func TestLatencyExport(t *testing.T) {
	m, f, c := chartModel(t, 200, 60)
	c.add(time.Second)
	send(m, events(lat(c, "bravo", 100*time.Microsecond, false)))
	c.add(time.Second)
	send(m, events(lat(c, "bravo", 0, true)))
	c.add(time.Second)
	send(m, events(&chaski.EdgeDownEvent{EventBase: chaski.EventBase{At: c.t}, Edge: f.edges[0], Reconnect: true}))
	x := m.m.edges.latencyExportOf("p-bravo")
	raw, err := json.Marshal(x)
	if err != nil {
		t.Fatal(err)
	}
	s := string(raw)
	for _, want := range []string{`"peer_id":"p-bravo"`, `"samples":1`, `"sent":2`, `"lost":1`, `"loss":0.5`, `"rtt_ns":100000`, `"lost":true`, `"outages":[{"from"`} {
		if !strings.Contains(s, want) {
			t.Errorf("export lacks %s: %s", want, s)
		}
	}
	if len(m.m.edges.latencyExports()) != 1 {
		t.Error("latencyExports")
	}
}

// e on Edges writes each edge with the dashboard's latency view (stats
// with p95, points with losses); e on Topics writes the messages, lines
// from the stored history marked.
func TestExportEdgesAndTopics(t *testing.T) {
	dir := t.TempDir()
	f := newFake()
	f.edges = []chaski.EdgeInfo{{PeerID: "p-bravo", Name: "bravo", Address: "127.0.0.1:8512", State: chaski.StateUp}}
	c := &clock{t: testStart}
	m := newTestModelOpts(t, f, 160, 40, Options{Now: c.now, DataDir: dir})
	for i := 0; i < 4; i++ {
		c.add(time.Second)
		send(m, events(lat(c, "bravo", time.Duration(100+100*i)*time.Microsecond, i == 2)))
	}
	m.m.chat.onHistory(historyMsg{topic: "chat", lines: []chaski.HistoryLine{{Topic: "chat", From: "bravo", FromID: "id-bravo", Time: testStart.Add(-time.Hour), Data: []byte("old line")}}})
	send(m, messagesMsg{msgs: []*chaski.Message{chatMsg("chat", "bravo", "new line")}})
	runAll(m, keys(m, "esc", "1", "e"))
	runAll(m, keys(m, "esc", "2", "esc", "e"))
	read := func(name string) string {
		fs, _ := filepath.Glob(filepath.Join(dir, "export-"+name+"-*.json"))
		if len(fs) != 1 {
			t.Fatalf("%s exports: %v", name, fs)
		}
		raw, _ := os.ReadFile(fs[0])
		return string(raw)
	}
	edges := read("edges")
	for _, want := range []string{`"latency_view"`, `"p95_ns": 400000`, `"lost": 1`, `"sent": 4`, `"lost": true`} {
		if !strings.Contains(edges, want) {
			t.Errorf("edges export lacks %s:\n%s", want, edges)
		}
	}
	topics := read("topics")
	if !strings.Contains(topics, `"history": true`) || strings.Count(topics, `"history"`) != 1 || !strings.Contains(topics, "new line") {
		t.Errorf("topics export:\n%s", topics)
	}
}
