package tui

import (
	"context"
	"time"

	"github.com/chaski-dev/chaski/chaski"
)

// Backend is what the dashboard needs from a node. *chaski.Node implements
// it; tests use a fake. Methods that may block (Connect, Ping, Publish,
// Discover, Fetch, SendFile, and every other call that changes the node) are
// only ever called from a tea.Cmd, never from Update or View.
type Backend interface {
	Status() chaski.Status
	Edges() []chaski.EdgeInfo
	WatchMessages(buffer int) (<-chan chaski.Event, func())
	Messages() <-chan *chaski.Message
	Publish(ctx context.Context, topic string, data []byte) error
	Subscribe(topics ...string) error
	Unsubscribe(topics ...string) error
	Connect(ctx context.Context, addr string) (chaski.EdgeInfo, error)
	CloseEdge(peerID string) error
	Ping(ctx context.Context, peerID string, size int) (time.Duration, error)
	Discover(ctx context.Context, opts chaski.DiscoverOptions) error
	SendFile(ctx context.Context, topic, path string, meta map[string]string) (transferID string, err error)
	CancelTransfer(id string) error
	AcceptTransfer(id string, accept bool) error
	Transfers() []chaski.TransferInfo
	StorePut(key string, value []byte, ttl time.Duration) error
	StoreDelete(key string) error
	StoreEntries() ([]chaski.StoreEntry, error)
	Fetch(ctx context.Context, key string) ([]byte, error)
}
