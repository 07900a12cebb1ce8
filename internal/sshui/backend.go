package sshui

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/chaski-dev/chaski/chaski"
	"github.com/chaski-dev/chaski/tui"
)

// ErrReadOnly is returned to a read-only viewer for every action that
// would change the node.
var ErrReadOnly = errors.New("read-only viewer: this key may watch the node, not change it")

// ErrNoFilesOverSSH refuses sending files from an SSH session: the path
// would name a file on the server, which a viewer must not reach.
var ErrNoFilesOverSSH = errors.New("files cannot be sent from an SSH session (the path would be on the server)")

// viewer is the dashboard's backend for one SSH session. It is the node
// itself, except that
//   - it does not hand out the node's subscriber queue, which belongs to
//     the node's own consumer (`chaski node` prints it): Messages is the
//     viewer's own copy from the fanout, where a slow viewer loses lines
//     but never holds a message back;
//   - a read-only viewer is refused every change, here on the server side,
//     whatever the dashboard offers;
//   - no viewer may send a file (paths would be the server's).
type viewer struct {
	*chaski.Node
	readOnly bool
	msgs     <-chan *chaski.Message
}

var _ tui.Backend = viewer{}

func (v viewer) Messages() <-chan *chaski.Message { return v.msgs }

func (v viewer) guard() error {
	if v.readOnly {
		return ErrReadOnly
	}
	return nil
}

func (v viewer) Publish(ctx context.Context, topic string, data []byte) error {
	if err := v.guard(); err != nil {
		return err
	}
	return v.Node.Publish(ctx, topic, data)
}

func (v viewer) Subscribe(topics ...string) error {
	if err := v.guard(); err != nil {
		return err
	}
	return v.Node.Subscribe(topics...)
}

func (v viewer) Unsubscribe(topics ...string) error {
	if err := v.guard(); err != nil {
		return err
	}
	return v.Node.Unsubscribe(topics...)
}

func (v viewer) Connect(ctx context.Context, addr string) (chaski.EdgeInfo, error) {
	if err := v.guard(); err != nil {
		return chaski.EdgeInfo{}, err
	}
	return v.Node.Connect(ctx, addr)
}

func (v viewer) CloseEdge(peer string) error {
	if err := v.guard(); err != nil {
		return err
	}
	return v.Node.CloseEdge(peer)
}

func (v viewer) Discover(ctx context.Context, opts chaski.DiscoverOptions) error {
	if err := v.guard(); err != nil {
		return err
	}
	return v.Node.Discover(ctx, opts)
}

func (v viewer) PushFile(context.Context, string, io.Reader, string, int64, map[string]string) ([]chaski.TransferInfo, error) {
	return nil, ErrNoFilesOverSSH
}

func (v viewer) CancelTransfer(id string) error {
	if err := v.guard(); err != nil {
		return err
	}
	return v.Node.CancelTransfer(id)
}

func (v viewer) AcceptTransfer(id string, accept bool) error {
	if err := v.guard(); err != nil {
		return err
	}
	return v.Node.AcceptTransfer(id, accept)
}

func (v viewer) StorePut(key string, value []byte, ttl time.Duration) error {
	if err := v.guard(); err != nil {
		return err
	}
	return v.Node.StorePut(key, value, ttl)
}

func (v viewer) StoreDelete(key string) error {
	if err := v.guard(); err != nil {
		return err
	}
	return v.Node.StoreDelete(key)
}

// Fetch writes what it finds into the node's store: a change.
func (v viewer) Fetch(ctx context.Context, key string) ([]byte, error) {
	if err := v.guard(); err != nil {
		return nil, err
	}
	return v.Node.Fetch(ctx, key)
}

// FetchWith is Fetch telling which peer answered (the dashboard uses it
// when the backend has it): guarded the same way.
func (v viewer) FetchWith(ctx context.Context, key string, opts chaski.FetchOptions) (chaski.FetchResult, error) {
	if err := v.guard(); err != nil {
		return chaski.FetchResult{}, err
	}
	return v.Node.FetchWith(ctx, key, opts)
}

// SaveState writes the dashboard's own records (its transfer list) into
// the node's store: a change.
func (v viewer) SaveState(name string, value []byte) error {
	if err := v.guard(); err != nil {
		return err
	}
	return v.Node.SaveState(name, value)
}

// SendFile (which the dashboard uses for a dropped folder) is refused like
// PushFile: the path would be the server's.
func (v viewer) SendFile(context.Context, string, string, map[string]string) (string, error) {
	return "", ErrNoFilesOverSSH
}
