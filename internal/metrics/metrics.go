// Package metrics exports a running node's figures in the Prometheus text
// format at /metrics (`--metrics HOST:PORT`).
//
// Nothing here sits on the node's hot paths. Most figures are read from the
// node when Prometheus scrapes (Status, Edges, TopicStats, Transfers, the
// store), by a custom Collector; the rest (the RTT histogram, lost pings,
// reconnections, discovery and pairing, transfer starts and ends) are
// counted by one goroutine that follows the node's event stream. If that
// goroutine falls behind, the node drops events for it (as for any
// observer, counted in chaski_events_dropped_total); transfers are
// reconciled from Transfers() at every scrape, so they are never lost.
//
// Cardinality is bounded: at most Options.MaxEdges peers and
// Options.MaxTopics topics get labels of their own; the rest are summed
// under the label value "_other" (see docs/OPERATIONS.md).
package metrics

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/chaski-dev/chaski/chaski"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Other is the label value under which peers and topics past the caps are
// summed.
const Other = "_other"

// Default label caps.
const (
	DefaultMaxEdges  = 64
	DefaultMaxTopics = 64
)

// Options tunes the exporter.
type Options struct {
	MaxEdges  int // peers with labels of their own (0: DefaultMaxEdges)
	MaxTopics int // topics with labels of their own (0: DefaultMaxTopics)
	// NoRuntime leaves out the Go runtime and process collectors (tests
	// that register two exporters in one process).
	NoRuntime bool
}

// RTTBuckets are the upper bounds, in seconds, of the RTT histogram: 50 µs
// (loopback) to 10 s (a congested link), about ×2.1 apart.
var RTTBuckets = prometheus.ExponentialBucketsRange(50e-6, 10, 17)

// Exporter follows one node and serves its metrics.
type Exporter struct {
	node *chaski.Node
	opts Options
	reg  *prometheus.Registry

	rtt        *prometheus.HistogramVec
	pingsLost  *prometheus.CounterVec
	reconnects *prometheus.CounterVec
	discovery  *prometheus.CounterVec
	pairings   *prometheus.CounterVec
	storeOps   *prometheus.CounterVec

	mu    sync.Mutex
	peers map[string]*peerLabels // peer id -> labels in use by the event-fed series
	down  map[string]bool        // peers whose edge went down expecting a reconnection
	xfers transferBook

	stopWatch func()
	done      chan struct{}
	closeOnce sync.Once
}

type peerLabels struct {
	name string
	live bool
}

// New starts following n. Close stops it.
func New(n *chaski.Node, opts Options) *Exporter {
	if opts.MaxEdges <= 0 {
		opts.MaxEdges = DefaultMaxEdges
	}
	if opts.MaxTopics <= 0 {
		opts.MaxTopics = DefaultMaxTopics
	}
	x := &Exporter{
		node:  n,
		opts:  opts,
		reg:   prometheus.NewRegistry(),
		peers: make(map[string]*peerLabels),
		down:  make(map[string]bool),
		xfers: newTransferBook(),
		done:  make(chan struct{}),
		rtt: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "chaski_edge_rtt_seconds", Help: "Round-trip times of the keep-alive and user pings on an edge.",
			Buckets: RTTBuckets,
		}, []string{"peer", "peer_id"}),
		pingsLost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chaski_edge_pings_lost_total", Help: "Pings on an edge that got no answer in time.",
		}, []string{"peer", "peer_id"}),
		reconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chaski_edge_reconnects_total", Help: "Times an edge came back up after an unexpected loss.",
		}, []string{"peer", "peer_id"}),
		discovery: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chaski_discovery_total", Help: "Discovery steps by phase (started, paired, first, skipped, failed).",
		}, []string{"phase"}),
		pairings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chaski_pairings_total", Help: "Topics paired, with a peer or as the first node of the topic.",
		}, []string{"how"}),
		storeOps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chaski_store_operations_total", Help: "Changes of the local store by kind (put, delete, expire, clear, fetched).",
		}, []string{"kind"}),
	}
	x.reg.MustRegister(x.rtt, x.pingsLost, x.reconnects, x.discovery, x.pairings, x.storeOps, (*scrape)(x))
	if !opts.NoRuntime {
		x.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	// The node drops events for a watcher that falls behind; a large
	// buffer makes that rare for this one, which only counts.
	events, stop := n.Watch(8192)
	x.stopWatch = stop
	go x.follow(events)
	return x
}

// Registry returns the registry holding the exporter's collectors.
func (x *Exporter) Registry() *prometheus.Registry { return x.reg }

// Handler serves the metrics in the Prometheus text format.
func (x *Exporter) Handler() http.Handler {
	return promhttp.HandlerFor(x.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Close stops following the node; it returns once the event goroutine ended.
func (x *Exporter) Close() {
	x.closeOnce.Do(x.stopWatch)
	<-x.done
}

func (x *Exporter) follow(events <-chan chaski.Event) {
	defer close(x.done)
	for ev := range events {
		x.handle(ev)
	}
}

func (x *Exporter) handle(ev chaski.Event) {
	switch e := ev.(type) {
	case *chaski.LatencyEvent:
		peer, id := x.peerLabel(e.PeerID, e.Name)
		if e.Lost {
			x.pingsLost.WithLabelValues(peer, id).Inc()
		} else {
			x.rtt.WithLabelValues(peer, id).Observe(e.RTT.Seconds())
		}
	case *chaski.EdgeUpEvent:
		x.mu.Lock()
		again := x.down[e.Edge.PeerID]
		delete(x.down, e.Edge.PeerID)
		x.mu.Unlock()
		peer, id := x.peerLabel(e.Edge.PeerID, e.Edge.Name)
		x.setLive(e.Edge.PeerID, true)
		if again {
			x.reconnects.WithLabelValues(peer, id).Inc()
		} else {
			// Make the series exist from the first sight of the peer,
			// so rate() has a zero to start from.
			x.reconnects.WithLabelValues(peer, id)
			x.pingsLost.WithLabelValues(peer, id)
		}
	case *chaski.EdgeDownEvent:
		x.mu.Lock()
		if e.Reconnect {
			x.down[e.Edge.PeerID] = true
		} else {
			delete(x.down, e.Edge.PeerID)
		}
		if len(x.down) > 4*x.opts.MaxEdges {
			// Peers that never came back: forget the oldest at random
			// rather than grow.
			for k := range x.down {
				delete(x.down, k)
				break
			}
		}
		x.mu.Unlock()
		x.setLive(e.Edge.PeerID, false)
	case *chaski.DiscoveryEvent:
		x.discovery.WithLabelValues(e.Phase).Inc()
	case *chaski.PairedEvent:
		how := "peer"
		if e.First {
			how = "first"
		}
		x.pairings.WithLabelValues(how).Inc()
	case *chaski.StoreEvent:
		x.storeOps.WithLabelValues(e.Kind).Inc()
	case *chaski.TransferEvent:
		x.mu.Lock()
		x.xfers.see(e.Transfer)
		x.mu.Unlock()
	}
}

// peerLabel returns the labels of a peer for the event-fed series: its own
// while fewer than MaxEdges peers hold labels, else those of a peer no
// longer live are given up (its series deleted), else Other.
func (x *Exporter) peerLabel(id, name string) (string, string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if p, ok := x.peers[id]; ok {
		return p.name, id
	}
	if len(x.peers) >= x.opts.MaxEdges {
		evicted := false
		for oid, p := range x.peers {
			if !p.live {
				x.deleteSeries(p.name, oid)
				delete(x.peers, oid)
				evicted = true
				break
			}
		}
		if !evicted {
			return Other, Other
		}
	}
	x.peers[id] = &peerLabels{name: name}
	return name, id
}

func (x *Exporter) deleteSeries(name, id string) {
	l := prometheus.Labels{"peer": name, "peer_id": id}
	x.rtt.Delete(l)
	x.pingsLost.Delete(l)
	x.reconnects.Delete(l)
}

func (x *Exporter) setLive(id string, live bool) {
	x.mu.Lock()
	if p, ok := x.peers[id]; ok {
		p.live = live
	}
	x.mu.Unlock()
}

// Server serves /metrics on a TCP address.
type Server struct {
	*Exporter
	ln  net.Listener
	srv *http.Server
	end chan struct{}
}

// Listen starts an exporter for n and serves it at http://addr/metrics.
func Listen(addr string, n *chaski.Node, opts Options) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	x := New(n, opts)
	mux := http.NewServeMux()
	mux.Handle("/metrics", x.Handler())
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte("chaski node " + n.Name() + ": metrics at /metrics\n"))
	})
	s := &Server{Exporter: x, ln: ln, end: make(chan struct{}),
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
			WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 16 << 10}}
	go func() {
		defer close(s.end)
		_ = s.srv.Serve(ln)
	}()
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops serving and following the node.
func (s *Server) Close(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		err = s.srv.Close()
	}
	<-s.end
	s.Exporter.Close()
	return err
}

// sortedTopics orders topic rows by traffic, busiest first, so that the
// cap keeps the topics that matter.
func sortedTopics(rows []chaski.TopicStats) {
	sort.SliceStable(rows, func(i, j int) bool {
		a := rows[i].MsgsIn + rows[i].MsgsOut + rows[i].Relayed
		b := rows[j].MsgsIn + rows[j].MsgsOut + rows[j].Relayed
		if a != b {
			return a > b
		}
		return rows[i].Topic < rows[j].Topic
	})
}
