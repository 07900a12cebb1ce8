// Package nearby finds Chaski nodes near this one without any address
// being typed: on the local network by DNS-SD over multicast DNS (service
// _chaski._tcp, RFC 6762/6763), and on one machine through a rendezvous
// directory in the user's runtime directory (multicast does not work on the
// loopback interface). It only announces and lists; what to do with a node
// found nearby (the auto-connect policy) is decided by the caller, the
// chaski package.
//
// Everything read from the network or from the rendezvous directory is
// bounded: a packet is at most 9000 bytes and is parsed without
// recursion, at most 64 records of it are looked at, the list of nodes is
// an LRU of at most MaxPeers entries, and an announcement whose address is
// outside the subnet of the interface it arrived on is dropped.
package nearby

import (
	"container/list"
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Service is what this node announces.
type Service struct {
	Record
	// Listen is the node's listening address (host:port). An unspecified
	// host (0.0.0.0, ::) is announced with each interface's own address;
	// a loopback host only through the rendezvous directory.
	Listen string
}

// Via tells how a node was found.
const (
	ViaLocal = "local" // the rendezvous directory (same machine)
	ViaMDNS  = "mdns"  // multicast DNS on a LAN interface
)

// Peer is a node found nearby.
type Peer struct {
	Record
	Address   string // host:port to dial
	Via       string // ViaLocal or ViaMDNS
	Interface string // the interface the announcement arrived on (mDNS)
	FirstSeen time.Time
	LastSeen  time.Time

	instance string    // mDNS instance name (for goodbyes)
	expires  time.Time // when the entry leaves the list unless refreshed
}

// Change is what happened to a peer in the list.
type Change int

// Kinds of Change.
const (
	Found   Change = iota // a new node is listed
	Updated               // a listed node changed its name, topics, address or TLS
	Lost                  // the node left: goodbye, TTL expired, file removed or evicted
)

func (c Change) String() string {
	switch c {
	case Found:
		return "found"
	case Updated:
		return "updated"
	default:
		return "lost"
	}
}

// Config configures a Discovery.
type Config struct {
	// Self is announced; with an empty Self.ID the Discovery only browses
	// (as `chaski lan` does).
	Self Service
	// Multicast enables DNS-SD over mDNS on the LAN interfaces.
	Multicast bool
	// Interfaces limits mDNS to these interface names; empty means every
	// interface that is up, multicast-capable, not loopback and has an IPv4
	// address.
	Interfaces []string
	// Local enables the one-machine rendezvous directory.
	Local bool
	// Dir is the rendezvous directory; empty means DefaultDir().
	Dir string
	// MaxPeers bounds the list (an LRU: the node heard from least recently
	// is evicted first). Default 64.
	MaxPeers int
	// RecordTTL is the time-to-live of our mDNS records; a node not heard
	// from for its records' TTL leaves the list. Default 60s; browsers ask
	// again every RecordTTL/3.
	RecordTTL time.Duration
	// ScanInterval is how often the rendezvous directory is read (default
	// 500ms).
	ScanInterval time.Duration
	// OnChange is called for every change of the list, from the
	// Discovery's own goroutines; it must not block.
	OnChange func(Peer, Change)
}

// Stats counts what the Discovery saw.
type Stats struct {
	Packets   uint64 // mDNS packets received
	Malformed uint64 // packets or announcements that did not parse
	Rejected  uint64 // announcements dropped: address outside the arrival interface's subnet
	Evicted   uint64 // entries pushed out of the full LRU
	Foreign   uint64 // packets that came in on an interface not in use
	Sent      uint64 // mDNS packets sent
}

// ErrUnsupported is returned by Start when multicast is asked for on a
// platform where this package has no mDNS socket code.
var ErrUnsupported = errors.New("nearby: mDNS is not supported on this platform")

// Discovery announces this node and lists the nodes nearby.
type Discovery struct {
	cfg    Config
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	self  Service
	epoch uint64 // bumped by SetService, so announcers re-announce
	lru   *list.List
	byID  map[string]*list.Element

	mdns *mdnsConn
	rdv  *rendezvous

	packets, malformed, rejected, evicted, sent, foreign atomic.Uint64
	changed                                              chan struct{}
}

// Start starts announcing (unless Self.ID is empty) and browsing.
func Start(cfg Config) (*Discovery, error) {
	if cfg.MaxPeers <= 0 {
		cfg.MaxPeers = 64
	}
	if cfg.RecordTTL <= 0 {
		cfg.RecordTTL = 60 * time.Second
	}
	cfg.RecordTTL = max(cfg.RecordTTL, time.Second)
	if cfg.ScanInterval <= 0 {
		cfg.ScanInterval = 500 * time.Millisecond
	}
	d := &Discovery{
		cfg:     cfg,
		self:    cfg.Self,
		lru:     list.New(),
		byID:    map[string]*list.Element{},
		changed: make(chan struct{}, 1),
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	if cfg.Local {
		r, err := openRendezvous(cfg.Dir)
		if err != nil {
			d.cancel()
			return nil, err
		}
		d.rdv = r
	}
	if cfg.Multicast {
		m, err := openMDNS(cfg.Interfaces)
		if err != nil {
			d.cancel()
			return nil, err
		}
		d.mdns = m
	}
	if d.rdv != nil {
		if err := d.rdv.publish(d.self); err != nil {
			d.mdns.close()
			d.cancel()
			return nil, err
		}
		d.goLoop(d.rendezvousLoop)
	}
	if d.mdns != nil {
		d.goLoop(d.mdnsReadLoop)
		d.goLoop(d.mdnsSendLoop)
	}
	d.goLoop(d.expireLoop)
	return d, nil
}

func (d *Discovery) goLoop(f func()) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		f()
	}()
}

// Close says goodbye (mDNS records with TTL 0, the rendezvous file
// removed) and returns when every goroutine of the Discovery has ended.
func (d *Discovery) Close() error {
	if d.ctx.Err() != nil {
		return nil
	}
	d.cancel()
	if d.mdns != nil {
		d.sayGoodbye()
		d.mdns.close()
	}
	d.wg.Wait()
	if d.rdv != nil {
		d.rdv.remove()
	}
	return nil
}

// SetService changes what is announced (topics changed, for example).
func (d *Discovery) SetService(s Service) {
	if d.ctx.Err() != nil {
		return // closed: the goodbye is said, the file is gone
	}
	d.mu.Lock()
	changed := !slices.Equal(s.Topics, d.self.Topics) || s.Name != d.self.Name ||
		s.TLS != d.self.TLS || s.Listen != d.self.Listen || s.ID != d.self.ID
	d.self = s
	if changed {
		d.epoch++
	}
	d.mu.Unlock()
	if !changed {
		return
	}
	if d.rdv != nil {
		_ = d.rdv.publish(s)
	}
	select {
	case d.changed <- struct{}{}:
	default:
	}
}

func (d *Discovery) service() (Service, uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.self, d.epoch
}

// Peers returns the nodes listed now, most recently heard from first.
func (d *Discovery) Peers() []Peer {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]Peer, 0, d.lru.Len())
	for e := d.lru.Front(); e != nil; e = e.Next() {
		out = append(out, *e.Value.(*Peer))
	}
	return out
}

// Stats returns the counters.
func (d *Discovery) Stats() Stats {
	return Stats{Packets: d.packets.Load(), Malformed: d.malformed.Load(),
		Rejected: d.rejected.Load(), Evicted: d.evicted.Load(), Sent: d.sent.Load(), Foreign: d.foreign.Load()}
}

// upsert records a sighting of p; ttl is how long it stays listed without
// another one. Our own announcements (looped back) are ignored. A node seen
// both locally and by mDNS keeps its local address (loopback is the
// shorter path).
func (d *Discovery) upsert(p Peer, ttl time.Duration) {
	now := time.Now()
	var events []struct {
		p Peer
		c Change
	}
	d.mu.Lock()
	if p.ID == d.self.ID {
		d.mu.Unlock()
		return
	}
	if el, ok := d.byID[p.ID]; ok {
		cur := el.Value.(*Peer)
		if cur.Via == ViaLocal && p.Via == ViaMDNS {
			cur.LastSeen = now
			d.lru.MoveToFront(el)
			d.mu.Unlock()
			return
		}
		changed := cur.Name != p.Name || cur.Address != p.Address || cur.TLS != p.TLS ||
			!slices.Equal(cur.Topics, p.Topics) || cur.Version != p.Version
		p.FirstSeen = cur.FirstSeen
		p.LastSeen = now
		p.expires = now.Add(ttl)
		*cur = p
		d.lru.MoveToFront(el)
		if changed {
			events = append(events, struct {
				p Peer
				c Change
			}{p, Updated})
		}
	} else {
		p.FirstSeen, p.LastSeen, p.expires = now, now, now.Add(ttl)
		for d.lru.Len() >= d.cfg.MaxPeers {
			old := d.lru.Back()
			op := old.Value.(*Peer)
			d.lru.Remove(old)
			delete(d.byID, op.ID)
			d.evicted.Add(1)
			events = append(events, struct {
				p Peer
				c Change
			}{*op, Lost})
		}
		cp := p
		d.byID[p.ID] = d.lru.PushFront(&cp)
		events = append(events, struct {
			p Peer
			c Change
		}{p, Found})
	}
	d.mu.Unlock()
	for _, ev := range events {
		d.notify(ev.p, ev.c)
	}
}

// removeWhere drops the entries for which match is true.
func (d *Discovery) removeWhere(match func(*Peer) bool) {
	var gone []Peer
	d.mu.Lock()
	for e := d.lru.Front(); e != nil; {
		next := e.Next()
		if p := e.Value.(*Peer); match(p) {
			d.lru.Remove(e)
			delete(d.byID, p.ID)
			gone = append(gone, *p)
		}
		e = next
	}
	d.mu.Unlock()
	for _, p := range gone {
		d.notify(p, Lost)
	}
}

func (d *Discovery) notify(p Peer, c Change) {
	if d.cfg.OnChange != nil {
		d.cfg.OnChange(p, c)
	}
}

func (d *Discovery) expireLoop() {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-d.ctx.Done():
			return
		case now := <-t.C:
			d.removeWhere(func(p *Peer) bool { return now.After(p.expires) })
		}
	}
}

// hostOf returns the host of a host:port, or "".
func hostOf(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	return h
}
