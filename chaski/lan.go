package chaski

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/chaski-dev/chaski/chaski/nearby"
	"github.com/chaski-dev/chaski/chaski/pki"
	"github.com/chaski-dev/chaski/chaski/wire"
	"github.com/google/uuid"
)

// LANConfig turns on nearby-node discovery (Config.LAN): the node announces
// itself on the LAN (DNS-SD over mDNS, service _chaski._tcp) and in the
// one-machine rendezvous directory, lists the nodes it finds there
// (Node.Nearby) and connects by itself to those that share one of its
// subscriptions. The zero value is the default policy.
type LANConfig struct {
	// Topics are the advertised topics; nil advertises the node's
	// subscriptions as they change. Announcements carry no secret: only the
	// id, name, protocol version, TLS yes/no and these topics.
	Topics []string
	// NoMulticast leaves out mDNS (only the rendezvous directory is used);
	// NoLocal leaves out the rendezvous directory.
	NoMulticast bool
	NoLocal     bool
	// Interfaces limits mDNS to these interfaces (default: every LAN
	// interface with IPv4).
	Interfaces []string
	// Dir overrides the rendezvous directory (default nearby.DefaultDir()).
	Dir string
	// NoAutoConnect lists nodes without connecting to them.
	NoAutoConnect bool
	// DialsPerSecond bounds automatic connection attempts (default 2, in
	// bursts of at most 4), whatever the network announces.
	DialsPerSecond float64
	// MaxNearby bounds the list of nearby nodes (default 64, an LRU).
	MaxNearby int
	// RecordTTL is the lifetime of our mDNS records (default 60s).
	RecordTTL time.Duration
	// Manual leaves the start to Node.StartLAN, so that a program can
	// Watch first: a node nearby may connect within milliseconds of
	// Start, and its edge_up would otherwise come before any watcher.
	Manual bool
}

// NearbyNode is a node found nearby.
type NearbyNode struct {
	ID, Name  string
	Address   string   // what this node dials
	Topics    []string // advertised
	TLS       bool
	Version   int    // wire protocol version
	Via       string // "local" (same machine) or "mdns"
	Interface string // the interface the announcement came in on (mDNS)
	FirstSeen time.Time
	LastSeen  time.Time
	Connected bool
	// Status says why the node is or is not connected automatically:
	// "connected", "dialing", "waiting for the peer to dial", "no shared topic", "TLS mismatch: ...",
	// "certificate did not verify: ...", "protocol version N", "failed: ...",
	// "disconnected" (connected once, the edge has ended since).
	Status string
}

// NearbyEvent reports a change of the nearby list. Change is "found",
// "updated", "lost", "connected" (an automatic connection succeeded) or
// "refused" (it will not be connected automatically: Node.Status says why).
type NearbyEvent struct {
	EventBase
	Node   NearbyNode
	Change string
}

// Limits of automatic connection.
const (
	lanDialBurst     = 4                // dials at once and the token bucket's depth
	lanRetryAfter    = 30 * time.Second // between two automatic dials of one node
	lanHigherIDGrace = 2 * time.Second  // the node with the higher id lets the other dial first
	lanMaxTracked    = 64               // connected peers remembered beyond the list (×4 before clearing)
)

// lanNever, as the time of the last dial, keeps a node from being dialed again.
var lanNever = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// ErrNotNearby is returned by ConnectNearby for an id that is not listed.
var ErrNotNearby = errors.New("chaski: no such nearby node")

type lanState struct {
	disc    *nearby.Discovery
	kick    chan struct{}
	mu      sync.Mutex
	status  map[string]string    // id -> why (not) connected
	tried   map[string]time.Time // id -> last automatic dial
	dialing int
	tokens  float64
	last    time.Time
}

func nodeIDHex(id string) string { return strings.ReplaceAll(id, "-", "") }

func (n *Node) lanService() nearby.Service {
	topics := n.cfg.LAN.Topics
	if topics == nil {
		topics = n.Subscriptions()
	}
	return nearby.Service{
		Record: nearby.Record{ID: nodeIDHex(n.idStr), Name: n.cfg.Name, Version: wire.Version,
			TLS: n.TLS(), Topics: topics},
		Listen: n.addr,
	}
}

// startLAN (from Start) applies the defaults of Config.LAN and starts
// nearby discovery unless LANConfig.Manual.
func (n *Node) startLAN() error {
	if n.cfg.LAN == nil {
		return nil
	}
	lc := new(LANConfig)
	*lc = *n.cfg.LAN
	n.cfg.LAN = lc // the caller's struct is not changed by the defaults
	if lc.DialsPerSecond <= 0 {
		lc.DialsPerSecond = 2
	}
	if lc.Manual {
		return nil
	}
	return n.runLAN()
}

// StartLAN starts nearby discovery when Config.LAN has Manual set (call it
// after Watch); otherwise, or when it runs already, it does nothing.
func (n *Node) StartLAN() error {
	if n.cfg.LAN == nil {
		return nil
	}
	n.lanMu.Lock()
	defer n.lanMu.Unlock()
	if n.closing.Load() {
		return ErrClosed
	}
	if n.lan.Load() != nil {
		return nil
	}
	return n.runLAN()
}

// runLAN starts the discovery and the policy loop. An mDNS socket that
// cannot be opened (port 5353 refused, no interface) is logged and the
// rendezvous directory still works.
func (n *Node) runLAN() error {
	lc := n.cfg.LAN
	st := &lanState{kick: make(chan struct{}, 1), status: map[string]string{},
		tried: map[string]time.Time{}, tokens: lanDialBurst, last: time.Now()}
	cfg := nearby.Config{
		Self: n.lanService(), Multicast: !lc.NoMulticast, Interfaces: lc.Interfaces,
		Local: !lc.NoLocal, Dir: lc.Dir, MaxPeers: lc.MaxNearby, RecordTTL: lc.RecordTTL,
		OnChange: func(p nearby.Peer, c nearby.Change) {
			if c != nearby.Updated {
				n.emit(&NearbyEvent{EventBase: now(), Node: n.nearbyNode(p, ""), Change: c.String()})
			}
			select {
			case st.kick <- struct{}{}:
			default:
			}
		},
	}
	d, err := nearby.Start(cfg)
	if err != nil && cfg.Multicast {
		n.logf(slog.LevelWarn, "LAN discovery without mDNS", "error", err)
		cfg.Multicast = false
		d, err = nearby.Start(cfg)
	}
	if err != nil {
		return err
	}
	st.disc = d
	n.lan.Store(st)
	n.goSafe(n.lanLoop)
	return nil
}

func (n *Node) stopLAN() {
	n.lanMu.Lock()
	defer n.lanMu.Unlock()
	if st := n.lan.Load(); st != nil {
		st.disc.Close()
	}
}

func nearbyNodeOf(p nearby.Peer) NearbyNode {
	id := p.ID
	if u, err := uuid.Parse(p.ID); err == nil {
		id = u.String()
	}
	return NearbyNode{ID: id, Name: p.Name, Address: p.Address, Topics: slices.Clone(p.Topics), TLS: p.TLS,
		Version: p.Version, Via: p.Via, Interface: p.Interface, FirstSeen: p.FirstSeen, LastSeen: p.LastSeen}
}

func (n *Node) nearbyNode(p nearby.Peer, status string) NearbyNode {
	nn := nearbyNodeOf(p)
	nn.Connected = n.findEdge(nn.ID) != nil
	nn.Status = status
	return nn
}

// Nearby lists the nodes found nearby, most recently heard from first
// (nil when Config.LAN is not set).
func (n *Node) Nearby() []NearbyNode {
	st := n.lan.Load()
	if st == nil {
		return nil
	}
	peers := st.disc.Peers()
	out := make([]NearbyNode, 0, len(peers))
	for _, p := range peers {
		nn := n.nearbyNode(p, "")
		st.mu.Lock()
		nn.Status = st.status[nn.ID]
		st.mu.Unlock()
		switch {
		case nn.Connected:
			nn.Status = "connected"
		case nn.Status == "connected":
			nn.Status = "disconnected"
		}
		out = append(out, nn)
	}
	return out
}

// NearbyStats returns the counters of nearby discovery (packets, malformed,
// rejected, evicted, sent).
func (n *Node) NearbyStats() nearby.Stats {
	st := n.lan.Load()
	if st == nil {
		return nearby.Stats{}
	}
	return st.disc.Stats()
}

// ConnectNearby connects to a listed nearby node (the dashboard's Enter),
// whether or not the policy would have done it; TLS still decides: a
// plaintext node does not dial a TLS one or the reverse.
func (n *Node) ConnectNearby(ctx context.Context, id string) (EdgeInfo, error) {
	for _, p := range n.Nearby() {
		if p.ID == id || p.Name == id {
			if p.TLS != n.TLS() {
				return EdgeInfo{}, fmt.Errorf("chaski: %s", tlsMismatch(n.TLS()))
			}
			return n.Connect(ctx, p.Address)
		}
	}
	return EdgeInfo{}, fmt.Errorf("%w: %s", ErrNotNearby, id)
}

func tlsMismatch(self bool) string {
	if self {
		return "TLS mismatch: this node uses TLS, the nearby node is plaintext"
	}
	return "TLS mismatch: the nearby node uses TLS, this node is plaintext"
}

// refusal says why p is not dialed automatically, or "" if it may be.
func (n *Node) refusal(p NearbyNode, subs []string) string {
	switch {
	case p.TLS != n.TLS():
		// Never plaintext <-> TLS: a TLS node that fell back to plaintext
		// would undo the operator's choice, and a plaintext node dialing a
		// TLS one fails its handshake anyway.
		return tlsMismatch(n.TLS())
	case n.cfg.Root:
		return ""
	case !slices.ContainsFunc(p.Topics, func(t string) bool { return slices.Contains(subs, t) }):
		return "no shared topic"
	}
	return ""
}

// lanLoop keeps the announcement current and dials nearby nodes that
// announce one of the topics this node announces, at most DialsPerSecond (token bucket of depth
// lanDialBurst) and each at most once per lanRetryAfter. A node connected
// once is not dialed again while it stays listed: an unexpected loss is
// the reconnect logic's business, and an edge the user closed stays closed.
func (n *Node) lanLoop() {
	st := n.lan.Load()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	// Edges that come up (whoever dialed) are noted at once: an edge the
	// user closes before a policy round saw it must not be redialed.
	evs, stopWatch := n.Watch(256)
	defer stopWatch()
	for {
		select {
		case <-n.ctx.Done():
			return
		case ev, ok := <-evs:
			if !ok {
				return
			}
			if up, isUp := ev.(*EdgeUpEvent); isUp {
				st.mu.Lock()
				st.tried[up.Edge.PeerID] = lanNever
				st.status[up.Edge.PeerID] = "connected"
				st.mu.Unlock()
			}
			continue
		case <-tick.C:
		case <-st.kick:
		}
		svc := n.lanService()
		st.disc.SetService(svc)
		if n.cfg.LAN.NoAutoConnect {
			continue
		}
		// Only advertised topics count: connecting tells the peer every
		// subscription (the hello carries them), so a topic left out of
		// --lan-topics must not be a reason to connect.
		subs := svc.Record.Topics
		nowT := time.Now()
		st.mu.Lock()
		st.tokens = min(lanDialBurst, st.tokens+nowT.Sub(st.last).Seconds()*n.cfg.LAN.DialsPerSecond)
		st.last = nowT
		st.mu.Unlock()
		listed := map[string]bool{}
		for _, p := range n.Nearby() {
			listed[p.ID] = true
			if p.Connected {
				// Connected (by us or by the peer): never dialed again while listed.
				st.mu.Lock()
				st.tried[p.ID] = lanNever
				st.status[p.ID] = "connected"
				st.mu.Unlock()
				continue
			}
			var why string
			if p.Version != wire.Version {
				why = fmt.Sprintf("protocol version %d", p.Version)
			} else {
				why = n.refusal(p, subs)
			}
			st.mu.Lock()
			if why != "" {
				changed := st.status[p.ID] != why
				st.status[p.ID] = why
				st.mu.Unlock()
				if changed {
					p.Status = why
					n.emit(&NearbyEvent{EventBase: now(), Node: p, Change: "refused"})
				}
				continue
			}
			if last, ok := st.tried[p.ID]; ok && nowT.Sub(last) < lanRetryAfter {
				st.mu.Unlock()
				continue
			}
			if n.idStr > p.ID && nowT.Sub(p.FirstSeen) < lanHigherIDGrace {
				st.status[p.ID] = "waiting for the peer to dial"
				st.mu.Unlock()
				continue
			}
			if st.tokens < 1 || st.dialing >= lanDialBurst {
				st.mu.Unlock()
				continue
			}
			st.tokens--
			st.dialing++
			st.tried[p.ID] = nowT
			st.status[p.ID] = "dialing"
			st.mu.Unlock()
			p := p
			n.goSafe(func() { n.lanDial(p) })
		}
		// Forget what is no longer listed, except edges that came up (a
		// peer may connect before we list it), within a bound.
		st.mu.Lock()
		for id, at := range st.tried {
			if !listed[id] && (at != lanNever || len(st.tried) > 4*lanMaxTracked) {
				delete(st.tried, id)
				delete(st.status, id)
			}
		}
		for id := range st.status {
			if _, ok := st.tried[id]; !ok && !listed[id] {
				delete(st.status, id)
			}
		}
		st.mu.Unlock()
	}
}

func (n *Node) lanDial(p NearbyNode) {
	st := n.lan.Load()
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.DialTimeout)
	defer cancel()
	_, err := n.Connect(ctx, p.Address)
	status, change := "connected", "connected"
	if err != nil {
		change = "refused"
		var uerr x509.UnknownAuthorityError
		var herr x509.HostnameError
		var cerr *tls.CertificateVerificationError
		var alert tls.AlertError
		if errors.As(err, &uerr) || errors.As(err, &herr) || errors.As(err, &cerr) || errors.As(err, &alert) ||
			errors.Is(err, pki.ErrUntrustedPeer) || errors.Is(err, pki.ErrPeerCertInvalid) || errors.Is(err, pki.ErrNoPeerCert) {
			status = "certificate did not verify: " + err.Error()
		} else {
			status = "failed: " + err.Error()
		}
		n.logf(slog.LevelInfo, "nearby node not connected", "name", p.Name, "address", p.Address, "error", err)
	}
	st.mu.Lock()
	st.dialing--
	st.status[p.ID] = status
	if err == nil {
		st.tried[p.ID] = lanNever
	}
	st.mu.Unlock()
	p.Status = status
	p.Connected = err == nil
	if n.ctx.Err() == nil {
		n.emit(&NearbyEvent{EventBase: now(), Node: p, Change: change})
	}
}

// BrowseNearby lists the nodes nearby without announcing anything or
// connecting (`chaski lan`): it listens for wait (mDNS asks at once and
// again after one second) and returns what it heard, most recent first.
// Only the mechanism fields of lc are used (NoMulticast, NoLocal,
// Interfaces, Dir, MaxNearby).
func BrowseNearby(ctx context.Context, lc LANConfig, wait time.Duration) ([]NearbyNode, error) {
	d, err := nearby.Start(nearby.Config{Multicast: !lc.NoMulticast, Interfaces: lc.Interfaces,
		Local: !lc.NoLocal, Dir: lc.Dir, MaxPeers: lc.MaxNearby})
	if err != nil {
		return nil, err
	}
	defer d.Close()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	var out []NearbyNode
	for _, p := range d.Peers() {
		out = append(out, nearbyNodeOf(p))
	}
	return out, ctx.Err()
}
