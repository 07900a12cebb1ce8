package tui

import (
	"context"
	"io"
	"time"

	"github.com/chaski-dev/chaski/chaski"
)

// Backend is what the dashboard needs from a node. *chaski.Node implements
// it; tests use a fake, and a server that shows one node to several viewers
// can wrap it. Methods that may block (Connect, Ping, Publish, Discover,
// PushFile, and every other call that changes the node) are only ever
// called from a tea.Cmd, never from Update or View.
//
// Messages reach the dashboard by one path: those received on a
// subscription come from Messages, the dashboard's own lines are shown when
// they are published. Events come from Watch, which carries no message
// events, so a flood of messages can never push an edge or transfer event
// out of its buffer.
type Backend interface {
	Status() chaski.Status
	Edges() []chaski.EdgeInfo
	Pairings() []chaski.PairingInfo
	Watch(buffer int) (<-chan chaski.Event, func())
	Messages() <-chan *chaski.Message
	Publish(ctx context.Context, topic string, data []byte) error
	Subscribe(topics ...string) error
	Unsubscribe(topics ...string) error
	Connect(ctx context.Context, addr string) (chaski.EdgeInfo, error)
	CloseEdge(peerID string) error
	Ping(ctx context.Context, peerID string, size int) (time.Duration, error)
	Discover(ctx context.Context, opts chaski.DiscoverOptions) error
	PushFile(ctx context.Context, topic string, r io.Reader, name string, size int64, meta map[string]string) ([]chaski.TransferInfo, error)
	CancelTransfer(id string) error
	AcceptTransfer(id string, accept bool) error
	Transfers() []chaski.TransferInfo
	StorePut(key string, value []byte, ttl time.Duration) error
	StoreDelete(key string) error
	StoreEntries() ([]chaski.StoreEntry, error)
	Fetch(ctx context.Context, key string) ([]byte, error)
}

var _ Backend = (*chaski.Node)(nil)
