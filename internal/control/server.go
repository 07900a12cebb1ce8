package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/chaski-dev/chaski/chaski"
	"github.com/chaski-dev/chaski/chaski/store"
)

// ErrInUse is returned by Listen when another process answers on the socket.
var ErrInUse = errors.New("control: another running node answers on the control socket")

// Server serves the control socket of one node.
type Server struct {
	node *chaski.Node
	path string
	ln   *net.UnixListener
	ctx  context.Context
	stop context.CancelFunc
	sem  chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// Listen creates the socket at path (mode 0600) and serves node on it until
// Close. A socket file left by a process that is gone is replaced; one that
// a live process answers on is not (ErrInUse).
func Listen(path string, node *chaski.Node) (*Server, error) {
	if _, err := os.Lstat(path); err == nil {
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("%w: %s", ErrInUse, path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("control: cannot remove the stale socket: %w", err)
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	// The data directory is 0700 already; the socket itself is owner-only
	// too, and each connection's peer must be this user (peerIsOwner).
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control: %w", err)
	}
	ln.SetUnlinkOnClose(true)
	ctx, stop := context.WithCancel(context.Background())
	s := &Server{node: node, path: path, ln: ln, ctx: ctx, stop: stop, sem: make(chan struct{}, maxConns)}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Path is the socket's path.
func (s *Server) Path() string { return s.path }

// Close stops serving, removes the socket and returns once every
// connection has been answered or cut.
func (s *Server) Close() error {
	var err error
	s.once.Do(func() {
		s.stop()
		err = s.ln.Close()
		s.wg.Wait()
	})
	return err
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			if s.ctx.Err() != nil {
				return
			}
			// Out of file descriptors and the like: do not spin.
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		select {
		case s.sem <- struct{}{}:
		default:
			c.Close() // busy: the client sees the connection closed
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() { <-s.sem }()
			s.serve(c)
		}()
	}
}

func (s *Server) serve(c *net.UnixConn) {
	defer c.Close()
	if !peerIsOwner(c) {
		return
	}
	_ = c.SetDeadline(time.Now().Add(connTimeout))
	var req request
	line, err := bufio.NewReaderSize(io.LimitReader(c, maxRequest), 64<<10).ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &req)
	}
	var a answer
	if err != nil {
		a = answer{Error: "control: unreadable request"}
	} else {
		a = s.handle(req)
	}
	// A fetch may have used up the connection's deadline.
	_ = c.SetWriteDeadline(time.Now().Add(connTimeout))
	_ = json.NewEncoder(c).Encode(&a)
}

func (s *Server) handle(req request) answer {
	n := s.node
	fail := func(err error) answer { return answer{Error: err.Error(), Code: codeOf(err)} }
	st := n.Store()
	if st == nil && req.Op != opStatus {
		return fail(chaski.ErrNoStore)
	}
	switch req.Op {
	case opStatus:
		status := n.Status()
		return answer{Status: &status}
	case opGet:
		e, err := st.Lookup(req.Key)
		if err != nil {
			return fail(err)
		}
		return answer{Entry: &e}
	case opPut:
		if err := n.StorePut(req.Key, req.Value, req.TTL); err != nil {
			return fail(err)
		}
		return answer{}
	case opDel:
		if err := n.StoreDelete(req.Key); err != nil {
			return fail(err)
		}
		return answer{}
	case opList:
		es, err := st.Entries(req.Prefix)
		if err != nil {
			return fail(err)
		}
		for i := range es {
			es[i].Value = nil // a listing shows sizes, not values
		}
		if es == nil {
			es = []store.Entry{}
		}
		return answer{Entries: es}
	case opFetch:
		timeout := min(max(req.Timeout, time.Second), maxFetchTimeout)
		ctx, cancel := context.WithTimeout(s.ctx, timeout)
		defer cancel()
		r, err := n.FetchWith(ctx, req.Key, chaski.FetchOptions{Move: req.Move})
		if err != nil {
			if ctx.Err() != nil && s.ctx.Err() == nil {
				return fail(fmt.Errorf("%w: no answer for key %q within %v", chaski.ErrTimeout, req.Key, timeout))
			}
			return fail(err)
		}
		return answer{Value: r.Value, Moved: r.Moved}
	}
	return answer{Error: fmt.Sprintf("control: unknown operation %q", req.Op)}
}
