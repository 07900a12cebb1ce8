package metrics

import (
	"github.com/chaski-dev/chaski/chaski"
	"github.com/prometheus/client_golang/prometheus"
)

// scrape is the Exporter's custom collector: it reads the node's own
// counters when Prometheus asks, so they cost nothing between scrapes.
type scrape Exporter

var (
	edgeLabels = []string{"peer", "peer_id"}
	dirLabels  = []string{"peer", "peer_id", "direction"}

	descInfo      = prometheus.NewDesc("chaski_node_info", "The node's identity (value 1).", []string{"id", "name", "address", "root", "tls"}, nil)
	descStart     = prometheus.NewDesc("chaski_node_start_time_seconds", "When the node started, Unix time.", nil, nil)
	descEdges     = prometheus.NewDesc("chaski_edges", "Edges by state (up, reconnecting).", []string{"state"}, nil)
	descMsgs      = prometheus.NewDesc("chaski_messages_total", "Messages published (out) and received for the first time (in) by the node.", []string{"direction"}, nil)
	descBytes     = prometheus.NewDesc("chaski_bytes_total", "Bytes on all edges, frame headers included.", []string{"direction"}, nil)
	descLate      = prometheus.NewDesc("chaski_messages_late_dropped_total", "Messages dropped for arriving far behind a copy seen on another path.", nil, nil)
	descEvDropped = prometheus.NewDesc("chaski_events_dropped_total", "Observer events dropped because an observer (dashboard, this exporter) fell behind.", nil, nil)
	descUnknown   = prometheus.NewDesc("chaski_unknown_frames_total", "Frames of unknown kind received and ignored.", nil, nil)

	descEdgeUp     = prometheus.NewDesc("chaski_edge_up", "1 for a live edge, 0 for a lost peer being reconnected.", edgeLabels, nil)
	descEdgeBytes  = prometheus.NewDesc("chaski_edge_bytes_total", "Bytes on an edge since it came up, frame headers included.", dirLabels, nil)
	descEdgeFrames = prometheus.NewDesc("chaski_edge_frames_total", "Frames on an edge since it came up (messages, pings, control).", dirLabels, nil)
	descEdgeMsgs   = prometheus.NewDesc("chaski_edge_messages_total", "Messages on an edge since it came up (out includes relayed copies).", dirLabels, nil)
	descEdgeDrops  = prometheus.NewDesc("chaski_edge_queue_drops_total", "Frames dropped because the edge's send queue was full.", edgeLabels, nil)
	descEdgeJitter = prometheus.NewDesc("chaski_edge_jitter_seconds", "RFC 3550 jitter of the edge's round-trip times.", edgeLabels, nil)
	descEdgeLoss   = prometheus.NewDesc("chaski_edge_loss_ratio", "Fraction of the edge's last 100 pings that were lost.", edgeLabels, nil)
	descEdgeLast   = prometheus.NewDesc("chaski_edge_rtt_last_seconds", "The edge's last round-trip time.", edgeLabels, nil)

	descTopicMsgs    = prometheus.NewDesc("chaski_topic_messages_total", "Messages of a topic: in (received, first copy), out (published here), relayed (copies forwarded, one per edge).", []string{"topic", "direction"}, nil)
	descTopicDropped = prometheus.NewDesc("chaski_topic_deliveries_dropped_total", "Messages of a topic received but not delivered to the subscriber.", []string{"topic"}, nil)
	descTopicPaired  = prometheus.NewDesc("chaski_topic_paired", "1 when the node is paired for a subscribed topic.", []string{"topic"}, nil)

	descXferStarted   = prometheus.NewDesc("chaski_transfers_started_total", "File transfers started.", []string{"direction"}, nil)
	descXferCompleted = prometheus.NewDesc("chaski_transfers_completed_total", "File transfers completed and verified.", []string{"direction"}, nil)
	descXferFailed    = prometheus.NewDesc("chaski_transfers_failed_total", "File transfers failed or cancelled.", []string{"direction"}, nil)
	descXferBytes     = prometheus.NewDesc("chaski_transfer_bytes_total", "File bytes moved (a resumed prefix is not counted).", []string{"direction"}, nil)
	descXferActive    = prometheus.NewDesc("chaski_transfers_active", "File transfers in progress.", []string{"direction"}, nil)

	descStoreKeys    = prometheus.NewDesc("chaski_store_keys", "Live keys in the local store.", nil, nil)
	descStoreFetches = prometheus.NewDesc("chaski_store_fetches_total", "Network fetches: ok and failed (this node asked), served (this node answered).", []string{"result"}, nil)
)

var scrapeDescs = []*prometheus.Desc{descInfo, descStart, descEdges, descMsgs, descBytes, descLate, descEvDropped, descUnknown,
	descEdgeUp, descEdgeBytes, descEdgeFrames, descEdgeMsgs, descEdgeDrops, descEdgeJitter, descEdgeLoss, descEdgeLast,
	descTopicMsgs, descTopicDropped, descTopicPaired,
	descXferStarted, descXferCompleted, descXferFailed, descXferBytes, descXferActive,
	descStoreKeys, descStoreFetches}

func (s *scrape) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range scrapeDescs {
		ch <- d
	}
}

func counter(d *prometheus.Desc, v uint64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
}

func gauge(d *prometheus.Desc, v float64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func boolStr(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func (s *scrape) Collect(ch chan<- prometheus.Metric) {
	x := (*Exporter)(s)
	n := x.node
	st := n.Status()
	ch <- gauge(descInfo, 1, st.ID, st.Name, st.Address, boolStr(st.Root), boolStr(st.TLS))
	ch <- gauge(descStart, float64(st.Started.UnixNano())/1e9)
	ch <- counter(descMsgs, st.MsgsIn, "in")
	ch <- counter(descMsgs, st.MsgsOut, "out")
	ch <- counter(descBytes, st.BytesIn, "in")
	ch <- counter(descBytes, st.BytesOut, "out")
	ch <- counter(descLate, st.LateDropped)
	ch <- counter(descEvDropped, st.Dropped)
	ch <- counter(descUnknown, st.Unknown)

	x.collectEdges(ch)
	x.collectTopics(ch, st)
	x.collectTransfers(ch)

	if store := n.Store(); store != nil {
		ch <- gauge(descStoreKeys, float64(store.Len()))
	}
	f := n.FetchStats()
	ch <- counter(descStoreFetches, f.OK, "ok")
	ch <- counter(descStoreFetches, f.Failed, "failed")
	ch <- counter(descStoreFetches, f.Served, "served")
}

// edgeSum accumulates the figures of one labelled row (a peer, or Other).
type edgeSum struct {
	peer, id            string
	up                  bool
	bytesIn, bytesOut   uint64
	framesIn, framesOut uint64
	msgsIn, msgsOut     uint64
	drops               uint64
	jitter, loss, last  float64
	hasLatency          bool
	summed              int
}

func (x *Exporter) collectEdges(ch chan<- prometheus.Metric) {
	edges := x.node.Edges()
	up, reconnecting := 0, 0
	rows := make(map[string]*edgeSum, len(edges))
	var order []*edgeSum
	for i, e := range edges {
		if e.State == chaski.StateUp {
			up++
		} else {
			reconnecting++
		}
		key, peer, id := e.PeerID, e.Name, e.PeerID
		if i >= x.opts.MaxEdges {
			key, peer, id = Other, Other, Other
		}
		r := rows[key]
		if r == nil {
			r = &edgeSum{peer: peer, id: id}
			rows[key] = r
			order = append(order, r)
		} else if key != Other {
			// The same peer twice (a live edge and a ghost are never
			// both listed; be safe anyway): keep the first.
			continue
		}
		r.summed++
		r.up = r.up || e.State == chaski.StateUp
		r.bytesIn += e.BytesIn
		r.bytesOut += e.BytesOut
		r.framesIn += e.FramesIn
		r.framesOut += e.FramesOut
		r.msgsIn += e.MsgsIn
		r.msgsOut += e.MsgsOut
		r.drops += e.QueueDrops
		if e.Latency.Samples > 0 || e.Latency.Sent > 0 {
			r.hasLatency = true
			// For Other the worst edge is the honest figure.
			r.jitter = max(r.jitter, e.Latency.Jitter.Seconds())
			r.loss = max(r.loss, e.Latency.Loss)
			r.last = max(r.last, e.Latency.Last.Seconds())
		}
	}
	ch <- gauge(descEdges, float64(up), "up")
	ch <- gauge(descEdges, float64(reconnecting), "reconnecting")
	for _, r := range order {
		upv := 0.0
		if r.up {
			upv = 1
		}
		ch <- gauge(descEdgeUp, upv, r.peer, r.id)
		ch <- counter(descEdgeBytes, r.bytesIn, r.peer, r.id, "in")
		ch <- counter(descEdgeBytes, r.bytesOut, r.peer, r.id, "out")
		ch <- counter(descEdgeFrames, r.framesIn, r.peer, r.id, "in")
		ch <- counter(descEdgeFrames, r.framesOut, r.peer, r.id, "out")
		ch <- counter(descEdgeMsgs, r.msgsIn, r.peer, r.id, "in")
		ch <- counter(descEdgeMsgs, r.msgsOut, r.peer, r.id, "out")
		ch <- counter(descEdgeDrops, r.drops, r.peer, r.id)
		if r.hasLatency {
			ch <- gauge(descEdgeJitter, r.jitter, r.peer, r.id)
			ch <- gauge(descEdgeLoss, r.loss, r.peer, r.id)
			ch <- gauge(descEdgeLast, r.last, r.peer, r.id)
		}
	}
}

func (x *Exporter) collectTopics(ch chan<- prometheus.Metric, st chaski.Status) {
	rows := x.node.TopicStats()
	sortedTopics(rows)
	var other chaski.TopicStats
	hasOther := false
	for i, r := range rows {
		if i >= x.opts.MaxTopics || r.Topic == chaski.OtherTopics {
			other.MsgsIn += r.MsgsIn
			other.MsgsOut += r.MsgsOut
			other.Relayed += r.Relayed
			other.Dropped += r.Dropped
			hasOther = true
			continue
		}
		emitTopic(ch, r.Topic, r)
	}
	if hasOther {
		emitTopic(ch, Other, other)
	}
	for _, t := range st.Subscriptions {
		v := 0.0
		if st.Paired[t] {
			v = 1
		}
		ch <- gauge(descTopicPaired, v, t)
	}
}

func emitTopic(ch chan<- prometheus.Metric, topic string, r chaski.TopicStats) {
	ch <- counter(descTopicMsgs, r.MsgsIn, topic, "in")
	ch <- counter(descTopicMsgs, r.MsgsOut, topic, "out")
	ch <- counter(descTopicMsgs, r.Relayed, topic, "relayed")
	ch <- counter(descTopicDropped, r.Dropped, topic)
}

func (x *Exporter) collectTransfers(ch chan<- prometheus.Metric) {
	list := x.node.Transfers()
	x.mu.Lock()
	for _, t := range list {
		x.xfers.see(t)
	}
	b := x.xfers
	active := [2]int{}
	for _, a := range b.active {
		active[a.dir]++
	}
	x.mu.Unlock()
	for d, name := range []string{"in", "out"} {
		ch <- counter(descXferStarted, b.started[d], name)
		ch <- counter(descXferCompleted, b.completed[d], name)
		ch <- counter(descXferFailed, b.failed[d], name)
		ch <- counter(descXferBytes, b.bytes[d], name)
		ch <- gauge(descXferActive, float64(active[d]), name)
	}
}

// transferBook turns transfer snapshots (from events and from Transfers())
// into monotonic counters: a transfer is counted started the first time it
// is seen, its bytes as they grow, and its end once.
type transferBook struct {
	active    map[string]*xferSeen
	ended     map[string]bool
	endedRing []string // oldest first, bounds ended
	started   [2]uint64
	completed [2]uint64
	failed    [2]uint64
	bytes     [2]uint64
}

type xferSeen struct {
	dir  int // 0 in, 1 out
	done int64
}

// maxEndedIDs bounds the memory of ended transfers; the node itself keeps
// the last 200, so 1024 is enough never to count one twice.
const maxEndedIDs = 1024

func newTransferBook() transferBook {
	return transferBook{active: make(map[string]*xferSeen), ended: make(map[string]bool)}
}

func (b *transferBook) see(t chaski.TransferInfo) {
	if t.ID == "" || b.ended[t.ID] {
		return
	}
	dir := 0
	if t.Outgoing {
		dir = 1
	}
	a := b.active[t.ID]
	if a == nil {
		a = &xferSeen{dir: dir, done: t.Resumed}
		b.active[t.ID] = a
		b.started[dir]++
	}
	if t.Done > a.done {
		b.bytes[dir] += uint64(t.Done - a.done)
		a.done = t.Done
	}
	if !t.State.Finished() {
		return
	}
	if t.State == chaski.TransferDone {
		b.completed[dir]++
	} else {
		b.failed[dir]++
	}
	delete(b.active, t.ID)
	b.ended[t.ID] = true
	b.endedRing = append(b.endedRing, t.ID)
	if len(b.endedRing) > maxEndedIDs {
		delete(b.ended, b.endedRing[0])
		b.endedRing = b.endedRing[1:]
	}
}
