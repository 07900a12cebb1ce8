package nearby

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"golang.org/x/net/ipv4"
)

var mdnsGroup = &net.UDPAddr{IP: net.IPv4(224, 0, 0, 251), Port: 5353}

// mdnsConn is one UDP socket on port 5353 (shared with other responders
// of the machine through SO_REUSEADDR) that joined the mDNS group on each
// chosen interface. Packets are sent per interface, so each announcement
// carries the address of the interface it leaves on.
type mdnsConn struct {
	raw  net.PacketConn
	pc   *ipv4.PacketConn
	only []string // Config.Interfaces

	mu      sync.Mutex // guards ifaces, joined, lastAns and the multicast interface of pc
	ifaces  map[int]mdnsIface
	joined  map[int]bool
	lastAns map[int]time.Time
}

type mdnsIface struct {
	iface net.Interface
	nets  []*net.IPNet // IPv4 subnets of the interface
}

func openMDNS(only []string) (*mdnsConn, error) {
	lc := net.ListenConfig{Control: reuseAddr}
	raw, err := lc.ListenPacket(context.Background(), "udp4", "0.0.0.0:5353")
	if err != nil {
		return nil, fmt.Errorf("nearby: mDNS socket: %w", err)
	}
	pc := ipv4.NewPacketConn(raw)
	// The arrival interface decides which subnet an announcement must be in.
	if err := pc.SetControlMessage(ipv4.FlagInterface, true); err != nil {
		raw.Close()
		return nil, fmt.Errorf("nearby: mDNS socket: %w", err)
	}
	_ = pc.SetMulticastTTL(255) // RFC 6762 §11
	_ = pc.SetMulticastLoopback(true)
	m := &mdnsConn{raw: raw, pc: pc, only: only, ifaces: map[int]mdnsIface{},
		joined: map[int]bool{}, lastAns: map[int]time.Time{}}
	m.refreshInterfaces()
	return m, nil
}

func (m *mdnsConn) close() {
	if m != nil {
		m.raw.Close()
	}
}

// refreshInterfaces joins the group on interfaces that came up since the
// last call (a laptop joining a network) and forgets those that went away.
func (m *mdnsConn) refreshInterfaces() {
	list, err := net.Interfaces()
	if err != nil {
		return
	}
	cur := map[int]mdnsIface{}
	for _, ifi := range list {
		if ifi.Flags&net.FlagUp == 0 || ifi.Flags&net.FlagMulticast == 0 || ifi.Flags&net.FlagLoopback != 0 {
			continue
		}
		if len(m.only) > 0 && !slices.Contains(m.only, ifi.Name) {
			continue
		}
		addrs, err := ifi.Addrs()
		if err != nil {
			continue
		}
		var nets []*net.IPNet
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
				nets = append(nets, &net.IPNet{IP: n.IP.To4(), Mask: n.Mask[len(n.Mask)-4:]})
			}
		}
		if len(nets) == 0 {
			continue
		}
		cur[ifi.Index] = mdnsIface{iface: ifi, nets: nets}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for idx, mi := range cur {
		if !m.joined[idx] {
			ifi := mi.iface
			if err := m.pc.JoinGroup(&ifi, &net.UDPAddr{IP: mdnsGroup.IP}); err == nil {
				m.joined[idx] = true
			}
		}
	}
	for idx := range m.joined {
		if _, ok := cur[idx]; !ok {
			delete(m.joined, idx)
		}
	}
	m.ifaces = cur
}

func (m *mdnsConn) interfaces() []mdnsIface {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]mdnsIface, 0, len(m.ifaces))
	for idx, mi := range m.ifaces {
		if m.joined[idx] {
			out = append(out, mi)
		}
	}
	return out
}

func (m *mdnsConn) iface(idx int) (mdnsIface, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	mi, ok := m.ifaces[idx]
	return mi, ok && m.joined[idx]
}

// ifaceFor returns the interface with a subnet that holds ip.
func (m *mdnsConn) ifaceFor(ip net.IP) (mdnsIface, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for idx, mi := range m.ifaces {
		if m.joined[idx] && mi.subnetOf(ip) != nil {
			return mi, true
		}
	}
	return mdnsIface{}, false
}

// send multicasts b on one interface.
func (m *mdnsConn) send(mi mdnsIface, b []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	ifi := mi.iface
	if err := m.pc.SetMulticastInterface(&ifi); err != nil {
		return err
	}
	_, err := m.pc.WriteTo(b, nil, mdnsGroup)
	return err
}

// mayAnswer rate-limits answers to one per second per interface (RFC
// 6762 §6), so a flood of queries is not amplified.
func (m *mdnsConn) mayAnswer(idx int) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if time.Since(m.lastAns[idx]) < time.Second {
		return false
	}
	m.lastAns[idx] = time.Now()
	return true
}

// subnetOf returns the subnet of mi that holds ip, or nil.
func (mi mdnsIface) subnetOf(ip net.IP) *net.IPNet {
	for _, n := range mi.nets {
		if n.Contains(ip) {
			return n
		}
	}
	return nil
}

// announceIP is the address announced on mi for a node listening on
// listen: the interface's own address when the node listens on every
// address, the listening address when it belongs to mi, else none (a node
// on 127.0.0.1 is not announced on the LAN).
func announceIP(mi mdnsIface, listen string) net.IP {
	host := hostOf(listen)
	ip := net.ParseIP(host)
	if host == "" || (ip != nil && ip.IsUnspecified()) {
		return mi.nets[0].IP
	}
	if ip == nil || ip.To4() == nil {
		return nil
	}
	for _, n := range mi.nets {
		if n.IP.Equal(ip) {
			return n.IP
		}
	}
	return nil
}

func listenPort(listen string) int {
	_, port, err := net.SplitHostPort(listen)
	if err != nil {
		return 0
	}
	var p int
	if _, err := fmt.Sscan(port, &p); err != nil {
		return 0
	}
	return p
}

// announce sends our records (ttl 0: a goodbye) on one interface.
func (d *Discovery) announce(mi mdnsIface, ttl uint32) {
	self, _ := d.service()
	if self.ID == "" {
		return
	}
	ip := announceIP(mi, self.Listen)
	port := listenPort(self.Listen)
	if ip == nil || port == 0 {
		return
	}
	b, err := buildResponse(self.Record, ip, port, ttl)
	if err != nil {
		return
	}
	if d.mdns.send(mi, b) == nil {
		d.sent.Add(1)
	}
}

func (d *Discovery) query() {
	b, err := buildQuery()
	if err != nil {
		return
	}
	for _, mi := range d.mdns.interfaces() {
		if d.mdns.send(mi, b) == nil {
			d.sent.Add(1)
		}
	}
}

func (d *Discovery) sayGoodbye() {
	for _, mi := range d.mdns.interfaces() {
		d.announce(mi, 0)
	}
}

func (d *Discovery) recordTTL() uint32 { return uint32(d.cfg.RecordTTL / time.Second) }

// mdnsSendLoop announces twice a second apart at start and after every
// change (RFC 6762 §8.3), and queries at 0, 1, 2, 4, 8, 16 s and then every
// RecordTTL/3, so that entries are refreshed well before they expire.
func (d *Discovery) mdnsSendLoop() {
	_, epoch := d.service()
	announcements := 2
	queryGap := time.Second
	nextQuery := time.Now()
	nextAnnounce := time.Now()
	steady := max(d.cfg.RecordTTL/3, time.Second)
	refresh := time.NewTicker(30 * time.Second)
	defer refresh.Stop()
	for {
		now := time.Now()
		if announcements > 0 && !now.Before(nextAnnounce) {
			for _, mi := range d.mdns.interfaces() {
				d.announce(mi, d.recordTTL())
			}
			announcements--
			nextAnnounce = now.Add(time.Second)
		}
		if !now.Before(nextQuery) {
			d.query()
			nextQuery = now.Add(queryGap)
			queryGap = min(queryGap*2, steady)
		}
		next := nextQuery
		if announcements > 0 && nextAnnounce.Before(next) {
			next = nextAnnounce
		}
		timer := time.NewTimer(time.Until(next))
		select {
		case <-d.ctx.Done():
			timer.Stop()
			return
		case <-refresh.C:
			d.mdns.refreshInterfaces()
		case <-d.changed:
			if _, e := d.service(); e != epoch {
				epoch = e
				announcements = 2
				nextAnnounce = time.Now()
			}
		case <-timer.C:
		}
		timer.Stop()
	}
}

// mdnsReadLoop reads packets until the socket is closed.
func (d *Discovery) mdnsReadLoop() {
	buf := make([]byte, maxPacket)
	for {
		n, cm, src, err := d.mdns.pc.ReadFrom(buf)
		if err != nil {
			if d.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		d.packets.Add(1)
		ifIndex := 0
		if cm != nil {
			ifIndex = cm.IfIndex
		}
		udp, _ := src.(*net.UDPAddr)
		if udp == nil {
			continue
		}
		d.handlePacket(buf[:n], ifIndex, udp)
	}
}

// handlePacket acts on one packet that arrived on interface ifIndex from
// src: answers a query for our service, lists announced nodes whose address
// is in the arrival interface's subnet (and the sender's), drops goodbyes.
func (d *Discovery) handlePacket(b []byte, ifIndex int, src *net.UDPAddr) {
	mi, ok := d.mdns.iface(ifIndex)
	if !ok && ifIndex == 0 {
		// No control message: the interface whose subnet holds the sender.
		mi, ok = d.mdns.ifaceFor(src.IP)
	}
	if !ok {
		d.foreign.Add(1)
		return // not an interface we use
	}
	m, err := parseMessage(b)
	if err != nil {
		d.malformed.Add(1)
		return
	}
	if m.query && d.mdns.mayAnswer(ifIndex) {
		d.announce(mi, d.recordTTL())
	}
	if !m.response {
		return
	}
	if src.Port != mdnsGroup.Port { // RFC 6762 §6: responses come from port 5353
		d.malformed.Add(1)
		return
	}
	for _, inst := range m.goodbyes {
		d.removeWhere(func(p *Peer) bool { return p.Via == ViaMDNS && p.instance == inst })
	}
	subnet := mi.subnetOf(src.IP)
	for _, a := range m.ads {
		if subnet == nil || !subnet.Contains(a.ip) {
			d.rejected.Add(1)
			continue
		}
		ttl := time.Duration(min(a.ttl, 7200)) * time.Second
		d.upsert(Peer{
			Record:    a.Record,
			Address:   net.JoinHostPort(a.ip.String(), fmt.Sprint(a.port)),
			Via:       ViaMDNS,
			Interface: mi.iface.Name,
			instance:  a.instance,
		}, ttl)
	}
}
