package metrics

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chaski-dev/chaski/chaski"
	"github.com/chaski-dev/chaski/chaski/store"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const waitTimeout = 20 * time.Second

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func startNode(t *testing.T, host string, cfg chaski.Config) *chaski.Node {
	t.Helper()
	cfg.Listen = host + ":0"
	cfg.ReconnectAttempts = -1
	n, err := chaski.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	return n
}

// get fetches url without keeping the connection (goleak).
func get(t *testing.T, url string) []byte {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return b
}

func parse(t *testing.T, text []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, text)
	}
	return fams
}

// find returns the sample of family name whose labels include want.
func find(fams map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	f := fams[name]
	if f == nil {
		return nil
	}
next:
	for _, m := range f.Metric {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		return m
	}
	return nil
}

func value(m *dto.Metric) float64 {
	switch {
	case m == nil:
		return -1
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return -1
}

// A node with live edges (over 127.0.0.1 and [::1]) is scraped over HTTP:
// the families exist with the peers' and topics' labels and values that
// match the traffic, and promtool accepts the output where it is installed.
func TestScrapeNodeWithLiveEdges(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "store.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	hub := startNode(t, "127.0.0.1", chaski.Config{Name: "hub", Subscriptions: []string{"news"}, Store: st})
	ast, err := store.Open(filepath.Join(t.TempDir(), "alice.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ast.Close() })
	alice := startNode(t, "127.0.0.1", chaski.Config{Name: "alice", Subscriptions: []string{"news"}, Store: ast,
		AcceptFiles: true, DownloadDir: t.TempDir()})
	bob := startNode(t, "[::1]", chaski.Config{Name: "bob", Subscriptions: []string{"news"}})

	srv, err := Listen("127.0.0.1:0", hub, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Error(err)
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	for _, n := range []*chaski.Node{alice, bob} {
		if _, err := n.Connect(ctx, hub.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "edges subscribed", func() bool {
		a, ok1 := hub.Edge(alice.ID())
		b, ok2 := hub.Edge(bob.ID())
		return ok1 && ok2 && a.Subscribes("news") && b.Subscribes("news")
	})
	// alice publishes 7 messages: the hub receives them and relays them
	// to bob.
	const msgs = 7
	for i := 0; i < msgs; i++ {
		if err := alice.Publish(ctx, "news", []byte(fmt.Sprint("m", i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < msgs; i++ {
		if _, err := bob.Next(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Three pings to each peer fill the RTT histograms.
	for _, n := range []*chaski.Node{alice, bob} {
		for i := 0; i < 3; i++ {
			if _, err := hub.Ping(ctx, n.ID(), 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := hub.StorePut("k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	// alice fetches k from the network: the hub serves it.
	if v, err := alice.Fetch(ctx, "k"); err != nil || string(v) != "v" {
		t.Fatalf("fetch: %q %v", v, err)
	}
	// The hub sends alice a file of 100,000 bytes.
	file := filepath.Join(t.TempDir(), "f.bin")
	if err := os.WriteFile(file, bytes.Repeat([]byte("z"), 100000), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := hub.SendFile(ctx, "news", file, nil); err != nil {
		t.Fatal(err)
	}

	url := "http://" + srv.Addr() + "/metrics"
	var fams map[string]*dto.MetricFamily
	var text []byte
	// The histogram is fed by the event goroutine: poll until it has
	// counted the pings.
	eventually(t, "RTT histogram filled", func() bool {
		text = get(t, url)
		fams = parse(t, text)
		for _, n := range []*chaski.Node{alice, bob} {
			m := find(fams, "chaski_edge_rtt_seconds", map[string]string{"peer": n.Name(), "peer_id": n.ID()})
			if m == nil || m.Histogram.GetSampleCount() < 3 {
				return false
			}
		}
		return true
	})

	for _, name := range []string{
		"chaski_node_info", "chaski_node_start_time_seconds", "chaski_edges", "chaski_messages_total", "chaski_bytes_total",
		"chaski_edge_up", "chaski_edge_bytes_total", "chaski_edge_frames_total", "chaski_edge_messages_total",
		"chaski_edge_queue_drops_total", "chaski_edge_jitter_seconds", "chaski_edge_loss_ratio", "chaski_edge_rtt_seconds",
		"chaski_edge_rtt_last_seconds", "chaski_edge_pings_lost_total", "chaski_edge_reconnects_total",
		"chaski_topic_messages_total", "chaski_topic_deliveries_dropped_total", "chaski_topic_paired",
		"chaski_transfers_started_total", "chaski_transfers_completed_total", "chaski_transfers_failed_total",
		"chaski_transfer_bytes_total", "chaski_transfers_active", "chaski_store_keys", "chaski_store_fetches_total",
		"chaski_store_operations_total", "chaski_messages_late_dropped_total", "chaski_events_dropped_total",
		"go_goroutines", "go_memstats_alloc_bytes", "process_cpu_seconds_total",
	} {
		if fams[name] == nil {
			t.Errorf("family %s missing", name)
		}
	}
	for _, n := range []*chaski.Node{alice, bob} {
		l := map[string]string{"peer": n.Name(), "peer_id": n.ID()}
		if v := value(find(fams, "chaski_edge_up", l)); v != 1 {
			t.Errorf("edge_up %s = %v", n.Name(), v)
		}
		in := map[string]string{"peer": n.Name(), "peer_id": n.ID(), "direction": "in"}
		out := map[string]string{"peer": n.Name(), "peer_id": n.ID(), "direction": "out"}
		if v := value(find(fams, "chaski_edge_bytes_total", in)); v <= 0 {
			t.Errorf("bytes in from %s = %v", n.Name(), v)
		}
		if v := value(find(fams, "chaski_edge_frames_total", out)); v < 3 {
			t.Errorf("frames out to %s = %v (3 pings at least)", n.Name(), v)
		}
	}
	if v := value(find(fams, "chaski_edge_messages_total", map[string]string{"peer": "alice", "direction": "in"})); v != msgs {
		t.Errorf("messages in from alice = %v, want %d", v, msgs)
	}
	if v := value(find(fams, "chaski_edge_messages_total", map[string]string{"peer": "bob", "direction": "out"})); v != msgs {
		t.Errorf("messages out to bob = %v, want %d", v, msgs)
	}
	if v := value(find(fams, "chaski_topic_messages_total", map[string]string{"topic": "news", "direction": "in"})); v != msgs {
		t.Errorf("topic news in = %v", v)
	}
	if v := value(find(fams, "chaski_topic_messages_total", map[string]string{"topic": "news", "direction": "relayed"})); v != msgs {
		t.Errorf("topic news relayed = %v", v)
	}
	if v := value(find(fams, "chaski_store_keys", nil)); v != 1 {
		t.Errorf("store keys = %v", v)
	}
	if v := value(find(fams, "chaski_edges", map[string]string{"state": "up"})); v != 2 {
		t.Errorf("edges up = %v", v)
	}
	if v := value(find(fams, "chaski_node_info", map[string]string{"name": "hub", "id": hub.ID()})); v != 1 {
		t.Errorf("node_info = %v", v)
	}
	eventually(t, "store put counted", func() bool {
		return value(find(parse(t, get(t, url)), "chaski_store_operations_total", map[string]string{"kind": "put"})) == 1
	})
	eventually(t, "fetch served counted", func() bool {
		return value(find(parse(t, get(t, url)), "chaski_store_fetches_total", map[string]string{"result": "served"})) == 1
	})
	// Outgoing transfers: bob does not accept files, alice does.
	eventually(t, "transfers counted", func() bool {
		f := parse(t, get(t, url))
		out := map[string]string{"direction": "out"}
		return value(find(f, "chaski_transfers_completed_total", out)) == 1 &&
			value(find(f, "chaski_transfer_bytes_total", out)) == 100000 &&
			value(find(f, "chaski_transfers_active", out)) == 0
	})
	f2 := parse(t, get(t, url))
	out := map[string]string{"direction": "out"}
	if st, fl := value(find(f2, "chaski_transfers_started_total", out)), value(find(f2, "chaski_transfers_failed_total", out)); st < 1 || st != 1+fl {
		t.Errorf("transfers started %v, failed %v (completed 1)", st, fl)
	}

	// The example Grafana dashboard plots only metrics that exist.
	dash, err := os.ReadFile("../../docs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range regexp.MustCompile(`chaski_[a-z_]+`).FindAllString(string(dash), -1) {
		if fams[strings.TrimSuffix(name, "_bucket")] == nil {
			t.Errorf("docs/grafana-dashboard.json plots %s, which the exporter does not serve", name)
		}
	}

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Log("promtool not installed: `promtool check metrics` skipped (Debian package prometheus)")
		return
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

// Past the label caps, peers and topics are summed under _other, and a
// reconnected peer is counted.
func TestCardinalityCapAndReconnects(t *testing.T) {
	hub := startNode(t, "127.0.0.1", chaski.Config{Name: "hub", Subscriptions: []string{"a", "b", "c"}})
	x := New(hub, Options{MaxEdges: 1, MaxTopics: 1, NoRuntime: true})
	defer x.Close()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	var peers []*chaski.Node
	for _, name := range []string{"p1", "p2", "p3"} {
		p := startNode(t, "127.0.0.1", chaski.Config{Name: name, Subscriptions: []string{"a"}})
		if _, err := p.Connect(ctx, hub.Addr()); err != nil {
			t.Fatal(err)
		}
		peers = append(peers, p)
	}
	for _, p := range peers {
		if _, err := hub.Ping(ctx, p.ID(), 0); err != nil {
			t.Fatal(err)
		}
	}
	// Traffic on two topics: b is busier (4 in) than a (1 in, 2 relayed to
	// p2 and p3), so it keeps its label.
	for _, topic := range []string{"a", "b", "b", "b", "b"} {
		if err := peers[0].Subscribe(topic); err != nil {
			t.Fatal(err)
		}
		eventually(t, "subscription seen", func() bool { e, ok := peers[0].Edge(hub.ID()); return ok && e.Subscribes(topic) })
		if err := peers[0].Publish(ctx, topic, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "hub received 5", func() bool { return hub.Status().MsgsIn == 5 })

	var fams map[string]*dto.MetricFamily
	eventually(t, "histogram counts 3 pings", func() bool {
		var buf bytes.Buffer
		fams = gather(t, x, &buf)
		total := uint64(0)
		if f := fams["chaski_edge_rtt_seconds"]; f != nil {
			for _, m := range f.Metric {
				total += m.Histogram.GetSampleCount()
			}
		}
		return total == 3
	})
	for _, name := range []string{"chaski_edge_up", "chaski_edge_rtt_seconds", "chaski_topic_messages_total"} {
		labelled := map[string]bool{}
		for _, m := range fams[name].Metric {
			for _, l := range m.Label {
				if l.GetName() == "peer_id" || l.GetName() == "topic" {
					labelled[l.GetValue()] = true
				}
			}
		}
		if len(labelled) != 2 || !labelled[Other] {
			t.Errorf("%s: label values %v, want one of its own and %s", name, labelled, Other)
		}
	}
	if find(fams, "chaski_topic_messages_total", map[string]string{"topic": "b"}) == nil {
		t.Errorf("the busiest topic lost its label")
	}
	if v := value(find(fams, "chaski_edge_up", map[string]string{"peer": Other})); v != 1 {
		t.Errorf("_other edge_up = %v", v)
	}

	// Reconnection: hub drops p1's edge as lost; p1 comes back.
	x.handle(&chaski.EdgeDownEvent{Edge: chaski.EdgeInfo{PeerID: "id-r", Name: "r"}, Reconnect: true})
	x.handle(&chaski.EdgeUpEvent{Edge: chaski.EdgeInfo{PeerID: "id-r", Name: "r"}})
	var buf bytes.Buffer
	fams = gather(t, x, &buf)
	total := 0.0
	for _, m := range fams["chaski_edge_reconnects_total"].Metric {
		total += m.Counter.GetValue()
	}
	if total != 1 {
		t.Errorf("reconnects = %v, want 1\n%s", total, buf.String())
	}
}

func gather(t *testing.T, x *Exporter, buf *bytes.Buffer) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := x.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
		_, _ = expfmt.MetricFamilyToText(buf, mf)
	}
	return out
}

func TestTransferBookCountsOnce(t *testing.T) {
	b := newTransferBook()
	x := chaski.TransferInfo{ID: "1", Outgoing: true, Size: 100, Resumed: 10, Done: 10, State: chaski.TransferActive}
	b.see(x)
	x.Done = 60
	b.see(x)
	b.see(x)
	x.Done, x.State = 100, chaski.TransferDone
	b.see(x)
	b.see(x) // the same end again, from Transfers() at a scrape
	if b.started[1] != 1 || b.completed[1] != 1 || b.bytes[1] != 90 || len(b.active) != 0 {
		t.Fatalf("%+v", b)
	}
	b.see(chaski.TransferInfo{ID: "2", Done: 5, State: chaski.TransferFailed})
	if b.started[0] != 1 || b.failed[0] != 1 || b.bytes[0] != 5 {
		t.Fatalf("%+v", b)
	}
	for i := 0; i < 2*maxEndedIDs; i++ {
		b.see(chaski.TransferInfo{ID: strings.Repeat("x", 3) + fmt.Sprint(i), State: chaski.TransferCancelled})
	}
	if len(b.ended) != maxEndedIDs || len(b.endedRing) != maxEndedIDs {
		t.Fatalf("ended set not bounded: %d", len(b.ended))
	}
}
