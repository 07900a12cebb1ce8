package nearby

import (
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testID = "0123456789abcdef0123456789abcdef"

func TestTXTRoundTrip(t *testing.T) {
	r := Record{ID: testID, Name: "alice's laptop", Version: 1, TLS: true, Topics: []string{"chat", "news"}}
	got, err := ParseTXT(EncodeTXT(r))
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != r.ID || got.Name != r.Name || got.Version != 1 || !got.TLS || !slices.Equal(got.Topics, r.Topics) {
		t.Fatalf("round trip: %+v", got)
	}
	// No topics, TLS off.
	got, err = ParseTXT(EncodeTXT(Record{ID: testID, Name: "b", Version: 1}))
	if err != nil || got.TLS || len(got.Topics) != 0 {
		t.Fatalf("no topics: %+v %v", got, err)
	}
}

func TestAdvertisableTopicsFitOneTXTString(t *testing.T) {
	var many []string
	for i := range 40 {
		many = append(many, strings.Repeat(string(rune('a'+i%26)), 30)+string(rune('A'+i%26)))
	}
	many = append(many, "has,comma", "", "chat", "chat")
	ts := AdvertisableTopics(many)
	if len(ts) > MaxTopics {
		t.Fatalf("%d topics", len(ts))
	}
	if s := "topics=" + strings.Join(ts, ","); len(s) > 255 {
		t.Fatalf("topics string of %d bytes", len(s))
	}
	for _, s := range EncodeTXT(Record{ID: testID, Name: strings.Repeat("n", 100), Topics: many}) {
		if len(s) > 255 {
			t.Fatalf("TXT string of %d bytes", len(s))
		}
	}
	if _, err := ParseTXT(EncodeTXT(Record{ID: testID, Name: strings.Repeat("n", 100), Topics: many})); err != nil {
		t.Fatalf("what we encode must parse: %v", err)
	}
}

func TestParseTXTRejects(t *testing.T) {
	good := EncodeTXT(Record{ID: testID, Name: "n", Version: 1, Topics: []string{"t"}})
	with := func(k, v string) []string {
		out := slices.Clone(good)
		for i, s := range out {
			if strings.HasPrefix(s, k+"=") {
				out[i] = k + "=" + v
			}
		}
		return out
	}
	without := func(k string) []string {
		return slices.DeleteFunc(slices.Clone(good), func(s string) bool { return strings.HasPrefix(s, k+"=") })
	}
	for name, parts := range map[string][]string{
		"short id":        with("id", "0123"),
		"upper-case id":   with("id", strings.ToUpper(testID)),
		"non-hex id":      with("id", strings.Repeat("z", 32)),
		"no id":           without("id"),
		"no name":         without("name"),
		"control in name": with("name", "a\x00b"),
		"long name":       with("name", strings.Repeat("x", 65)),
		"no version":      without("v"),
		"bad version":     with("v", "-1"),
		"no tls":          without("tls"),
		"tls maybe":       with("tls", "maybe"),
		"empty topic":     with("topics", "a,,b"),
		"too many topics": with("topics", strings.Repeat("t,", 16)+"t"),
		"long string":     append(slices.Clone(good), strings.Repeat("x", 256)),
	} {
		if _, err := ParseTXT(parts); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Unknown keys are ignored; the first of a repeated key wins.
	r, err := ParseTXT(append(slices.Clone(good), "future=1", "name=second"))
	if err != nil || r.Name != "n" {
		t.Fatalf("extra keys: %+v %v", r, err)
	}
}

func TestPacketRoundTrip(t *testing.T) {
	r := Record{ID: testID, Name: "alice", Version: 1, Topics: []string{"chat"}}
	b, err := buildResponse(r, net.IPv4(10, 1, 2, 3), 8511, 60)
	if err != nil {
		t.Fatal(err)
	}
	m, err := parseMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	if !m.response || m.query || len(m.ads) != 1 {
		t.Fatalf("parsed %+v", m)
	}
	a := m.ads[0]
	if a.ID != testID || a.Name != "alice" || !a.ip.Equal(net.IPv4(10, 1, 2, 3)) || a.port != 8511 || a.ttl != 60 {
		t.Fatalf("announcement %+v", a)
	}
	bye, _ := buildResponse(r, net.IPv4(10, 1, 2, 3), 8511, 0)
	m, err = parseMessage(bye)
	if err != nil || len(m.ads) != 0 || len(m.goodbyes) != 1 || m.goodbyes[0] != a.instance {
		t.Fatalf("goodbye parsed as %+v, %v", m, err)
	}
	q, _ := buildQuery()
	m, err = parseMessage(q)
	if err != nil || !m.query || m.response {
		t.Fatalf("query parsed as %+v, %v", m, err)
	}
}

func TestParseMessageIgnoresGarbage(t *testing.T) {
	good, _ := buildResponse(Record{ID: testID, Name: "a", Version: 1}, net.IPv4(10, 0, 0, 1), 1, 60)
	for i := range good {
		if _, err := parseMessage(good[:i]); err == nil && i < 12 {
			t.Fatalf("a %d-byte packet parsed", i)
		}
	}
	if _, err := parseMessage(make([]byte, maxPacket+1)); err == nil {
		t.Fatal("oversized packet parsed")
	}
	// A response with a bad TXT yields no announcement.
	bad, _ := buildResponse(Record{ID: testID, Name: "a", Version: 1}, net.IPv4(10, 0, 0, 1), 1, 60)
	idx := strings.Index(string(bad), "tls=no")
	copy(bad[idx:], "tls=xx")
	if m, err := parseMessage(bad); err == nil || len(m.ads) != 0 {
		t.Fatalf("bad TXT accepted: %+v %v", m, err)
	}
}

// testDiscovery is a Discovery with no sockets, for the list logic.
func testDiscovery(maxPeers int) (*Discovery, *[]string) {
	var changes []string
	d, err := Start(Config{MaxPeers: maxPeers, OnChange: func(p Peer, c Change) {
		changes = append(changes, c.String()+" "+p.Name)
	}})
	if err != nil {
		panic(err)
	}
	return d, &changes
}

func TestListIsBoundedLRU(t *testing.T) {
	d, changes := testDiscovery(3)
	defer d.Close()
	id := func(i int) string { return strings.Repeat("0", 31) + string(rune('a'+i)) }
	for i := range 5 {
		d.upsert(Peer{Record: Record{ID: id(i), Name: string(rune('a' + i))}, Address: "10.0.0.1:1", Via: ViaMDNS}, time.Minute)
	}
	ps := d.Peers()
	if len(ps) != 3 || ps[0].Name != "e" || ps[2].Name != "c" {
		t.Fatalf("list %+v", ps)
	}
	if d.Stats().Evicted != 2 {
		t.Fatalf("evicted %d", d.Stats().Evicted)
	}
	// A sighting refreshes; a changed entry is reported once.
	d.upsert(Peer{Record: Record{ID: id(2), Name: "c2"}, Address: "10.0.0.1:1", Via: ViaMDNS}, time.Minute)
	if d.Peers()[0].Name != "c2" {
		t.Fatal("refreshed entry not first")
	}
	want := []string{"found a", "found b", "found c", "lost a", "found d", "lost b", "found e", "updated c2"}
	if !slices.Equal(*changes, want) {
		t.Fatalf("changes %v, want %v", *changes, want)
	}
}

func TestEntriesExpire(t *testing.T) {
	d, _ := testDiscovery(8)
	defer d.Close()
	d.upsert(Peer{Record: Record{ID: testID, Name: "x"}, Address: "10.0.0.1:1", Via: ViaMDNS}, 300*time.Millisecond)
	if len(d.Peers()) != 1 {
		t.Fatal("not listed")
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(d.Peers()) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("entry did not expire")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// handlePacket keeps announcements whose address is in the arrival
// interface's subnet (and the sender's), drops the others, and a goodbye
// removes the node.
func TestHandlePacketSubnetRuleAndGoodbye(t *testing.T) {
	d, _ := testDiscovery(8)
	defer func() { d.mdns = nil; d.Close() }() // no socket behind this mdnsConn
	_, lan, _ := net.ParseCIDR("10.7.0.1/24")
	lan.IP = net.IPv4(10, 7, 0, 1).To4()
	d.mdns = &mdnsConn{ifaces: map[int]mdnsIface{3: {iface: net.Interface{Index: 3, Name: "veth0"}, nets: []*net.IPNet{lan}}},
		joined: map[int]bool{3: true}, lastAns: map[int]time.Time{}}
	from := &net.UDPAddr{IP: net.IPv4(10, 7, 0, 9), Port: 5353}
	rec := Record{ID: testID, Name: "inside", Version: 1}
	in, _ := buildResponse(rec, net.IPv4(10, 7, 0, 9), 8511, 60)
	out, _ := buildResponse(Record{ID: strings.Repeat("1", 32), Name: "outside", Version: 1}, net.IPv4(192, 168, 1, 5), 8511, 60)
	d.handlePacket(out, 3, from)
	d.handlePacket(in, 99, from)                                                // an interface we do not use
	d.handlePacket(in, 3, &net.UDPAddr{IP: net.IPv4(10, 7, 0, 9), Port: 40000}) // not from port 5353
	if len(d.Peers()) != 0 || d.Stats().Rejected != 1 {
		t.Fatalf("listed %+v, stats %+v", d.Peers(), d.Stats())
	}
	d.handlePacket(in, 3, from)
	ps := d.Peers()
	if len(ps) != 1 || ps[0].Address != "10.7.0.9:8511" || ps[0].Interface != "veth0" || ps[0].Via != ViaMDNS {
		t.Fatalf("listed %+v", ps)
	}
	bye, _ := buildResponse(rec, net.IPv4(10, 7, 0, 9), 8511, 0)
	d.handlePacket(bye, 3, from)
	if len(d.Peers()) != 0 {
		t.Fatal("goodbye did not remove the node")
	}
	d.handlePacket([]byte("\x00\x00garbage"), 3, from)
	if d.Stats().Malformed < 2 {
		t.Fatalf("malformed not counted: %+v", d.Stats())
	}
}

func TestRendezvousFindsAndForgets(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "rdv")
	svc := func(id, name string) Service {
		return Service{Record: Record{ID: id, Name: name, Version: 1, Topics: []string{"chat"}}, Listen: "0.0.0.0:8511"}
	}
	a, err := Start(Config{Self: svc(testID, "a"), Local: true, Dir: dir, ScanInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Start(Config{Self: svc(strings.Repeat("b", 32), "b"), Local: true, Dir: dir, ScanInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	waitList(t, a, func(ps []Peer) bool { return len(ps) == 1 && ps[0].Name == "b" && ps[0].Address == "127.0.0.1:8511" })
	b.Close()
	waitList(t, a, func(ps []Peer) bool { return len(ps) == 0 })

	// A stale file (dead process, not touched for a while) is removed; a
	// file of another network namespace is skipped; garbage is counted.
	write := func(name string, rf rendezvousFile, age time.Duration) string {
		body, _ := json.Marshal(rf)
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, body, 0o600); err != nil {
			t.Fatal(err)
		}
		old := time.Now().Add(-age)
		os.Chtimes(p, old, old)
		return p
	}
	deadID := strings.Repeat("d", 32)
	pidns, _ := os.Readlink("/proc/self/ns/pid")
	// A crashed node's file goes at once, however fresh it is.
	stale := write(deadID+".node", rendezvousFile{TXT: EncodeTXT(svc(deadID, "dead").Record), Address: "127.0.0.1:1", PID: 1 << 30, PIDNS: pidns}, 0)
	// A file not touched for a long time is skipped even if its pid lives.
	oldID := strings.Repeat("c", 32)
	write(oldID+".node", rendezvousFile{TXT: EncodeTXT(svc(oldID, "frozen").Record), Address: "127.0.0.1:3", PID: os.Getpid(), PIDNS: pidns}, time.Hour)
	nsID := strings.Repeat("e", 32)
	write(nsID+".node", rendezvousFile{TXT: EncodeTXT(svc(nsID, "elsewhere").Record), Address: "127.0.0.1:2", PID: os.Getpid(), NetNS: "net:[1]"}, 0)
	write(strings.Repeat("f", 32)+".node", rendezvousFile{TXT: []string{"id=nonsense"}, Address: "x", PID: 1}, 0)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(stale); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("stale file not removed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	ns, _ := os.Readlink("/proc/self/ns/net")
	for _, p := range a.Peers() {
		if p.Name == "dead" || p.Name == "frozen" || (ns != "" && p.Name == "elsewhere") {
			t.Fatalf("listed %+v", p)
		}
	}
	for a.Stats().Malformed == 0 { // the file may be written after the scan that removed the stale one
		if time.Now().After(deadline) {
			t.Fatal("garbage file not counted")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRendezvousRefusesOpenDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := Start(Config{Local: true, Dir: dir}); err == nil {
		t.Fatal("a world-writable rendezvous directory was accepted")
	}
}

func waitList(t *testing.T, d *Discovery, ok func([]Peer) bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !ok(d.Peers()) {
		if time.Now().After(deadline) {
			t.Fatalf("list is %+v", d.Peers())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
