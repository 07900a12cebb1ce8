package tui

import (
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/chaski-dev/chaski/chaski"
)

// nearbyFake is the fake node with nodes nearby.
type nearbyFake struct {
	*fakeBackend
	nmu   sync.Mutex
	nodes []chaski.NearbyNode
}

func (f *nearbyFake) Nearby() []chaski.NearbyNode {
	f.nmu.Lock()
	defer f.nmu.Unlock()
	return append([]chaski.NearbyNode(nil), f.nodes...)
}

func newNearbyModel(t *testing.T, w, h int) (Model, *nearbyFake) {
	t.Helper()
	f := &nearbyFake{fakeBackend: newFake()}
	f.pairings = []chaski.PairingInfo{{Topic: "chat", Paired: true, Peer: "bravo"}}
	f.nodes = []chaski.NearbyNode{
		{ID: "id-carol", Name: "carol", Address: "192.168.1.7:8511", Topics: []string{"chat", "news"}, Via: "mdns",
			FirstSeen: testStart.Add(-2 * time.Minute), LastSeen: testStart.Add(-3 * time.Second), Status: "no shared topic"},
		{ID: "id-dave", Name: "dave", Address: "192.168.1.9:8511", Topics: []string{"chat"}, TLS: true, Via: "mdns",
			FirstSeen: testStart.Add(-time.Minute), LastSeen: testStart, Status: "TLS mismatch: the nearby node uses TLS, this node is plaintext"},
		{ID: "id-erin", Name: "erin", Address: "127.0.0.1:8513", Topics: []string{"chat"}, Via: "local", Connected: true,
			FirstSeen: testStart.Add(-time.Minute), LastSeen: testStart},
	}
	m := New(f, Options{Now: func() time.Time { return testStart }})
	t.Cleanup(m.Close)
	send(m, tea.WindowSizeMsg{Width: w, Height: h})
	send(m, m.m.snapshot(false))
	send(m, frameMsg{})
	return m, f
}

// The Discovery pane lists the nodes nearby with name, address, topics,
// TLS, first/last seen and why each is or is not connected; Enter on one
// connects to it through the dashboard's own dial; a TLS mismatch is
// refused with the reason.
func TestDiscoveryListsNearbyAndEnterConnects(t *testing.T) {
	m, f := newNearbyModel(t, 160, 50)
	keys(m, "esc", "3", "z")
	v := frame(m)
	wantIn(t, v, "NEARBY", "carol", "192.168.1.7:8511", "chat, news", "no shared topic", "2m00s/3s ago",
		"dave", "TLS mismatch", "erin (this machine)", "connected", "3 nearby")

	// Rows: the pairing (chat), then carol, dave, erin.
	runAll(m, keys(m, "down", "enter"))
	if got := f.snapshotConnects(); len(got) != 1 || got[0] != "192.168.1.7:8511" {
		t.Fatalf("enter on carol dialed %v", got)
	}
	runAll(m, keys(m, "down", "enter"))
	if got := f.snapshotConnects(); len(got) != 1 {
		t.Fatalf("enter on a TLS node from a plaintext one dialed %v", got)
	}
	wantIn(t, frame(m), "dave uses TLS and this node does not")
	runAll(m, keys(m, "down", "enter"))
	wantIn(t, frame(m), "already connected to erin")
}

func (f *fakeBackend) snapshotConnects() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.connectTo...)
}

// The nearby section fits every size and does not hide the pairings.
func TestNearbySectionFits(t *testing.T) {
	for _, sz := range sizes {
		m, _ := newNearbyModel(t, sz[0], sz[1])
		checkFits(t, m.View(), sz[0], sz[1])
		keys(m, "esc", "3", "z")
		v := m.View()
		checkFits(t, v, sz[0], sz[1])
		if s := frame(m); !strings.Contains(s, "#chat") || !strings.Contains(s, "carol") {
			t.Fatalf("%v: zoomed Discovery lacks the pairing or the nearby rows:\n%s", sz, s)
		}
	}
}
