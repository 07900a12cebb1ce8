package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/chaski-dev/chaski/chaski"
	"github.com/chaski-dev/chaski/chaski/store"
)

// ErrNoNode is returned when no node answers on the socket.
var ErrNoNode = errors.New("control: no running node answers on the control socket")

// Client asks the node serving a control socket. Its store methods have the
// signatures of *store.Store's, so a command can work on either.
type Client struct {
	path    string
	timeout time.Duration // per exchange, on top of a fetch's own
}

// Dial returns a client of the socket at path once a node answers there.
func Dial(ctx context.Context, path string) (*Client, error) {
	c := &Client{path: path, timeout: connTimeout}
	if _, err := c.Status(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Client) do(ctx context.Context, req request, extra time.Duration) (*answer, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.path)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", ErrNoNode, c.path)
	}
	defer conn.Close()
	deadline := time.Now().Add(c.timeout + extra)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	if err := json.NewEncoder(conn).Encode(&req); err != nil {
		return nil, fmt.Errorf("control: cannot send the request: %w", err)
	}
	line, err := bufio.NewReaderSize(io.LimitReader(conn, maxAnswer), 64<<10).ReadBytes('\n')
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if len(line) == 0 && errors.Is(err, io.EOF) {
			return nil, errors.New("control: the node closed the connection without an answer (busy, or not ours)")
		}
		return nil, fmt.Errorf("control: no answer from the node: %w", err)
	}
	var a answer
	if err := json.Unmarshal(line, &a); err != nil {
		return nil, errors.New("control: unreadable answer")
	}
	return &a, a.err()
}

// Status is the node's status, as 'chaski status' gets it over UDP.
func (c *Client) Status(ctx context.Context) (chaski.Status, error) {
	a, err := c.do(ctx, request{Op: opStatus}, 0)
	if err != nil {
		return chaski.Status{}, err
	}
	if a.Status == nil {
		return chaski.Status{}, errors.New("control: the answer has no status")
	}
	return *a.Status, nil
}

// Lookup returns the live entry of key (store.ErrNotFound when absent).
func (c *Client) Lookup(key string) (store.Entry, error) {
	a, err := c.do(context.Background(), request{Op: opGet, Key: key}, 0)
	if err != nil {
		return store.Entry{}, err
	}
	if a.Entry == nil {
		return store.Entry{}, errors.New("control: the answer has no entry")
	}
	return *a.Entry, nil
}

// Set stores value under key in the node's store (ttl as store.Set's).
func (c *Client) Set(key string, value []byte, ttl time.Duration) error {
	_, err := c.do(context.Background(), request{Op: opPut, Key: key, Value: value, TTL: ttl}, 0)
	return err
}

// Delete removes key (store.ErrNotFound when absent).
func (c *Client) Delete(key string) error {
	_, err := c.do(context.Background(), request{Op: opDel, Key: key}, 0)
	return err
}

// Entries lists the live entries under prefix, without their values.
func (c *Client) Entries(prefix string) ([]store.Entry, error) {
	a, err := c.do(context.Background(), request{Op: opList, Prefix: prefix}, 0)
	if err != nil {
		return nil, err
	}
	return a.Entries, nil
}

// Fetch asks the node for key: from its store, else from its network
// (Node.Fetch), waiting at most timeout for the network's answer.
func (c *Client) Fetch(ctx context.Context, key string, timeout time.Duration) ([]byte, error) {
	v, _, err := c.FetchWith(ctx, key, timeout, false)
	return v, err
}

// FetchWith is Fetch that can ask for a move (chaski.FetchOptions.Move);
// moved tells whether the holder agreed to give its copy up.
func (c *Client) FetchWith(ctx context.Context, key string, timeout time.Duration, move bool) (value []byte, moved bool, err error) {
	a, err := c.do(ctx, request{Op: opFetch, Key: key, Timeout: timeout, Move: move}, timeout)
	if err != nil {
		return nil, false, err
	}
	return a.Value, a.Moved, nil
}
