package tui

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"

	"github.com/chaski-dev/chaski/chaski"
)

func init() {
	lipgloss.SetColorProfile(termenv.Ascii)
}

type published struct {
	topic string
	data  string
}

// fakeBackend is an in-memory node for tests.
type fakeBackend struct {
	mu        sync.Mutex
	status    chaski.Status
	edges     []chaski.EdgeInfo
	transfers []chaski.TransferInfo
	store     []chaski.StoreEntry
	events    chan chaski.Event
	msgs      chan *chaski.Message

	published []published
	sent      []string
	accepted  map[string]bool
	closed    []string
	pinged    []string
	connectTo []string
	discover  int
	seq       uint64

	connectErr error
	pushErr    error
	pushFail   string // PushFile's transfer ends failed with this reason
	deleted    []string
	pairings   []chaski.PairingInfo
}

var testStart = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newFake() *fakeBackend {
	return &fakeBackend{
		status: chaski.Status{
			ID: "self-id", Name: "alpha", Address: "127.0.0.1:8511",
			Subscriptions: []string{"chat"}, Paired: map[string]bool{"chat": true},
			Started: testStart.Add(-75 * time.Minute),
		},
		events:   make(chan chaski.Event, 8192),
		msgs:     make(chan *chaski.Message, 8192),
		accepted: map[string]bool{},
	}
}

func (f *fakeBackend) Status() chaski.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.status
	s.Edges = len(f.edges)
	return s
}

func (f *fakeBackend) Edges() []chaski.EdgeInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]chaski.EdgeInfo(nil), f.edges...)
}

func (f *fakeBackend) Watch(int) (<-chan chaski.Event, func()) {
	return f.events, func() {}
}

func (f *fakeBackend) Pairings() []chaski.PairingInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pairings != nil {
		return append([]chaski.PairingInfo(nil), f.pairings...)
	}
	var out []chaski.PairingInfo
	for _, t := range f.status.Subscriptions {
		out = append(out, chaski.PairingInfo{Topic: t, Paired: f.status.Paired[t]})
	}
	return out
}

func (f *fakeBackend) Messages() <-chan *chaski.Message { return f.msgs }

func (f *fakeBackend) Publish(ctx context.Context, topic string, data []byte) error {
	f.mu.Lock()
	f.published = append(f.published, published{topic, string(data)})
	f.seq++
	f.mu.Unlock()
	return nil
}

func (f *fakeBackend) Subscribe(topics ...string) error {
	f.mu.Lock()
	f.status.Subscriptions = append(f.status.Subscriptions, topics...)
	subs := append([]string(nil), f.status.Subscriptions...)
	f.mu.Unlock()
	f.events <- &chaski.SubscriptionEvent{Subscriptions: subs}
	return nil
}

func (f *fakeBackend) Unsubscribe(topics ...string) error { return nil }

func (f *fakeBackend) Connect(ctx context.Context, addr string) (chaski.EdgeInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.connectTo = append(f.connectTo, addr)
	if f.connectErr != nil {
		return chaski.EdgeInfo{}, f.connectErr
	}
	return chaski.EdgeInfo{Name: "new", Address: addr, State: chaski.StateUp}, nil
}

func (f *fakeBackend) CloseEdge(peerID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = append(f.closed, peerID)
	return nil
}

func (f *fakeBackend) Ping(ctx context.Context, peerID string, size int) (time.Duration, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pinged = append(f.pinged, fmt.Sprintf("%s/%d", peerID, size))
	return 42 * time.Microsecond, nil
}

func (f *fakeBackend) Discover(ctx context.Context, opts chaski.DiscoverOptions) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.discover++
	return nil
}

func (f *fakeBackend) PushFile(ctx context.Context, topic string, r io.Reader, name string, size int64, meta map[string]string) ([]chaski.TransferInfo, error) {
	f.mu.Lock()
	f.sent = append(f.sent, name)
	err := f.pushErr
	f.mu.Unlock()
	_, _ = io.Copy(io.Discard, r)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	fail := f.pushFail
	f.mu.Unlock()
	t := chaski.TransferInfo{ID: fmt.Sprintf("tx-%d", len(f.sent)), Name: name, Topic: topic, Peer: "bravo", Outgoing: true,
		Size: size, Done: size, State: chaski.TransferDone, Started: time.Now()}
	if fail != "" {
		t.State, t.Err, t.Done = chaski.TransferFailed, fail, 0
	}
	return []chaski.TransferInfo{t}, nil
}

func (f *fakeBackend) CancelTransfer(id string) error { return nil }

func (f *fakeBackend) AcceptTransfer(id string, accept bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.accepted[id] = accept
	return nil
}

func (f *fakeBackend) Transfers() []chaski.TransferInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]chaski.TransferInfo(nil), f.transfers...)
}

func (f *fakeBackend) StorePut(key string, value []byte, ttl time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	e := chaski.StoreEntry{Key: key, Value: value, Size: len(value), Updated: testStart}
	if ttl > 0 {
		e.Expires = testStart.Add(ttl)
	}
	f.store = append(f.store, e)
	return nil
}

func (f *fakeBackend) StoreDelete(key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deleted = append(f.deleted, key)
	return nil
}

func (f *fakeBackend) StoreEntries() ([]chaski.StoreEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]chaski.StoreEntry(nil), f.store...), nil
}

func (f *fakeBackend) Fetch(ctx context.Context, key string) ([]byte, error) {
	if key == "missing" {
		return nil, chaski.ErrNotFound
	}
	return []byte("value of " + key), nil
}

func (f *fakeBackend) snapshot() (pubs []published, sent []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]published(nil), f.published...), append([]string(nil), f.sent...)
}

// populate fills the fake with a bit of everything.
func (f *fakeBackend) populate() {
	hist := make([]chaski.LatencySample, 0, 120)
	for i := 0; i < 120; i++ {
		s := chaski.LatencySample{At: testStart.Add(time.Duration(i-120) * time.Second), RTT: time.Duration(30+i%17) * time.Microsecond}
		if i%13 == 5 {
			s = chaski.LatencySample{At: s.At, Lost: true}
		}
		hist = append(hist, s)
	}
	f.edges = []chaski.EdgeInfo{
		{PeerID: "p-bravo", Name: "bravo", Address: "127.0.0.1:8512", Subscriptions: []string{"chat", "news"}, State: chaski.StateUp,
			BytesIn: 123456, BytesOut: 7890123,
			Latency: chaski.LatencyStats{Samples: 120, Last: 42 * time.Microsecond, Mean: 38 * time.Microsecond, Min: 30 * time.Microsecond,
				Max: 46 * time.Microsecond, Jitter: 3 * time.Microsecond, Loss: 0.05, History: hist}},
		{PeerID: "p-charlie", Name: "charlie-with-a-very-long-node-name", Address: "[2001:db8::1234:5678]:8513", Root: true, State: chaski.StateReconnecting, Attempt: 3,
			Latency: chaski.LatencyStats{Samples: 10, Last: 1300 * time.Microsecond, Mean: 1250 * time.Microsecond, Loss: 0.6}},
	}
	f.transfers = []chaski.TransferInfo{
		{ID: "t-act", Name: "movie.mkv", Peer: "bravo", Outgoing: true, Size: 100 << 20, Done: 42 << 20, Rate: 8 << 20, ETA: 7 * time.Second, State: chaski.TransferActive},
		{ID: "t-done", Name: "notes.txt", Peer: "bravo", Size: 2048, Done: 2048, State: chaski.TransferDone, SHA256: "0123456789abcdef0123456789abcdef"},
		{ID: "t-fail", Name: "broken.iso", Peer: "charlie", Size: 4096, Done: 100, State: chaski.TransferFailed, Err: "sha256 mismatch"},
		{ID: "t-cancel", Name: "old.zip", Peer: "bravo", Outgoing: true, Size: 10, State: chaski.TransferCancelled},
	}
	f.store = []chaski.StoreEntry{
		{Key: "greeting", Value: []byte("hello world"), Size: 11, Updated: testStart.Add(-time.Minute), Expires: testStart.Add(59 * time.Minute)},
		{Key: "blob", Value: []byte{0xff, 0x00, 0xfe, 0x01}, Size: 4, Updated: testStart.Add(-2 * time.Hour)},
	}
}
