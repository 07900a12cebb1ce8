package nearby

import (
	"errors"
	"net"
	"strings"

	"golang.org/x/net/dns/dnsmessage"
)

// The DNS-SD names of the service.
const (
	serviceName = "_chaski._tcp.local."
	// maxPacket is the largest mDNS packet read (RFC 6762 §17: 9000 bytes).
	maxPacket = 9000
	// maxRecords bounds the resource records looked at per packet, and
	// maxAnnouncements the nodes taken from one packet.
	maxRecords       = 64
	maxQuestions     = 16
	maxAnnouncements = 8
	// cacheFlush is the top bit of the class of a unique record (RFC 6762 §10.2).
	cacheFlush = 1 << 15
)

// instanceLabel is the DNS-SD instance label of a node: ASCII only, so no
// escaping is ever needed; the node's name travels in the TXT record.
func instanceLabel(id string) string { return "chaski-" + id[:12] }

// hostLabel names the A record of a node.
func hostLabel(id string) string { return "chaski-" + id[:12] + ".local." }

// announcement is one node as one mDNS response describes it.
type announcement struct {
	Record
	instance string
	ip       net.IP
	port     int
	ttl      uint32 // of the PTR record; 0 is a goodbye
}

// message is what one mDNS packet says that matters to us.
type message struct {
	response bool
	query    bool // asks for our service (PTR or ANY)
	ads      []announcement
	goodbyes []string // instances whose PTR came with TTL 0 (may lack SRV/TXT/A)
}

func buildQuery() ([]byte, error) {
	b := dnsmessage.NewBuilder(make([]byte, 0, 64), dnsmessage.Header{})
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(dnsmessage.Question{
		Name: dnsmessage.MustNewName(serviceName), Type: dnsmessage.TypePTR, Class: dnsmessage.ClassINET,
	}); err != nil {
		return nil, err
	}
	return b.Finish()
}

// buildResponse builds the answer announcing a node at ip:port: PTR, SRV,
// TXT and A in one packet (we never need a second round trip, and a
// receiver never keeps half-assembled state).
func buildResponse(r Record, ip net.IP, port int, ttl uint32) ([]byte, error) {
	ip4 := ip.To4()
	if ip4 == nil || len(r.ID) < 12 {
		return nil, errors.New("nearby: cannot announce without an IPv4 address and an id")
	}
	svc := dnsmessage.MustNewName(serviceName)
	inst, err := dnsmessage.NewName(instanceLabel(r.ID) + "." + serviceName)
	if err != nil {
		return nil, err
	}
	host, err := dnsmessage.NewName(hostLabel(r.ID))
	if err != nil {
		return nil, err
	}
	b := dnsmessage.NewBuilder(make([]byte, 0, 512), dnsmessage.Header{Response: true, Authoritative: true})
	b.EnableCompression()
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	hdr := func(n dnsmessage.Name, unique bool) dnsmessage.ResourceHeader {
		c := dnsmessage.ClassINET
		if unique {
			c |= cacheFlush
		}
		return dnsmessage.ResourceHeader{Name: n, Class: c, TTL: ttl}
	}
	if err := b.PTRResource(hdr(svc, false), dnsmessage.PTRResource{PTR: inst}); err != nil {
		return nil, err
	}
	if err := b.SRVResource(hdr(inst, true), dnsmessage.SRVResource{Port: uint16(port), Target: host}); err != nil {
		return nil, err
	}
	if err := b.TXTResource(hdr(inst, true), dnsmessage.TXTResource{TXT: EncodeTXT(r)}); err != nil {
		return nil, err
	}
	var a [4]byte
	copy(a[:], ip4)
	if err := b.AResource(hdr(host, true), dnsmessage.AResource{A: a}); err != nil {
		return nil, err
	}
	return b.Finish()
}

// parseMessage reads an mDNS packet. Records of other services are
// skipped; a node is taken only when its PTR, SRV, TXT and A records are
// all in the packet and its TXT parses. Messages with a non-zero opcode or
// rcode are ignored (RFC 6762 §18.3, §18.11).
func parseMessage(buf []byte) (message, error) {
	var m message
	if len(buf) > maxPacket {
		return m, ErrMalformed
	}
	var p dnsmessage.Parser
	h, err := p.Start(buf)
	if err != nil {
		return m, err
	}
	if h.OpCode != 0 || h.RCode != 0 {
		return m, ErrMalformed
	}
	m.response = h.Response
	for i := 0; ; i++ {
		q, err := p.Question()
		if errors.Is(err, dnsmessage.ErrSectionDone) {
			break
		}
		if err != nil {
			return m, err
		}
		if i >= maxQuestions {
			break
		}
		if !h.Response && sameName(q.Name, serviceName) && (q.Type == dnsmessage.TypePTR || q.Type == dnsmessage.TypeALL) {
			m.query = true
		}
	}
	if !h.Response {
		return m, nil
	}
	if err := p.SkipAllQuestions(); err != nil {
		return m, err
	}
	type srv struct {
		port   int
		target string
	}
	ptrs := map[string]uint32{}
	var order []string
	srvs := map[string]srv{}
	txts := map[string][]string{}
	as := map[string]net.IP{}
	records := 0
	section := func(header func() (dnsmessage.ResourceHeader, error), skip func() error) error {
		for {
			rh, err := header()
			if errors.Is(err, dnsmessage.ErrSectionDone) {
				return nil
			}
			if err != nil {
				return err
			}
			records++
			if records > maxRecords {
				return nil
			}
			name := strings.ToLower(rh.Name.String())
			switch rh.Type {
			case dnsmessage.TypePTR:
				r, err := p.PTRResource()
				if err != nil {
					return err
				}
				if name == serviceName {
					inst := strings.ToLower(r.PTR.String())
					if _, dup := ptrs[inst]; !dup {
						order = append(order, inst)
					}
					ptrs[inst] = rh.TTL
				}
			case dnsmessage.TypeSRV:
				r, err := p.SRVResource()
				if err != nil {
					return err
				}
				srvs[name] = srv{int(r.Port), strings.ToLower(r.Target.String())}
			case dnsmessage.TypeTXT:
				r, err := p.TXTResource()
				if err != nil {
					return err
				}
				txts[name] = r.TXT
			case dnsmessage.TypeA:
				r, err := p.AResource()
				if err != nil {
					return err
				}
				as[name] = net.IPv4(r.A[0], r.A[1], r.A[2], r.A[3])
			default:
				if err := skip(); err != nil {
					return err
				}
			}
		}
	}
	if err := section(p.AnswerHeader, p.SkipAnswer); err != nil {
		return m, err
	}
	if records <= maxRecords {
		if err := p.SkipAllAuthorities(); err != nil {
			return m, err
		}
		if err := section(p.AdditionalHeader, p.SkipAdditional); err != nil {
			return m, err
		}
	}
	var bad error
	for _, inst := range order {
		ttl := ptrs[inst]
		if ttl == 0 {
			m.goodbyes = append(m.goodbyes, inst)
			continue
		}
		if len(m.ads) == maxAnnouncements {
			break
		}
		s, ok1 := srvs[inst]
		txt, ok2 := txts[inst]
		ip, ok3 := as[s.target]
		if !ok1 || !ok2 || !ok3 || s.port == 0 {
			continue
		}
		rec, err := ParseTXT(txt)
		if err != nil {
			bad = err
			continue
		}
		m.ads = append(m.ads, announcement{Record: rec, instance: inst, ip: ip, port: s.port, ttl: ttl})
	}
	if len(m.ads) == 0 && len(m.goodbyes) == 0 && bad != nil {
		return m, bad
	}
	return m, nil
}

func sameName(n dnsmessage.Name, s string) bool { return strings.EqualFold(n.String(), s) }
