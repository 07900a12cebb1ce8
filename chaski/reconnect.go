package chaski

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"time"
)

// ghost is a peer lost unexpectedly that the node is trying to reach again.
type ghost struct {
	peerID, name, address string
	subs                  []string
	root                  bool
	lost                  time.Time
	cancel                context.CancelFunc
	mu                    sync.Mutex
	attempt               int
	next                  time.Time
	lastErr               string
}

func (g *ghost) stop() { g.cancel() }

func (g *ghost) info() EdgeInfo {
	g.mu.Lock()
	defer g.mu.Unlock()
	return EdgeInfo{PeerID: g.peerID, Name: g.name, Address: g.address, Subscriptions: g.subs,
		Root: g.root, State: StateReconnecting, Since: g.lost, Attempt: g.attempt, NextAttempt: g.next, LastError: g.lastErr}
}

// startReconnect tries to reach a lost peer again with exponential back-off
// and jitter, for a bounded number of attempts. Deliberate closes never get
// here; a peer that comes back by dialing us ends the attempts too.
func (n *Node) startReconnect(info EdgeInfo) {
	ctx, cancel := context.WithCancel(n.ctx)
	g := &ghost{peerID: info.PeerID, name: info.Name, address: info.Address, subs: info.Subscriptions,
		root: info.Root, lost: time.Now(), cancel: cancel}
	n.mu.Lock()
	if n.closing.Load() {
		n.mu.Unlock()
		cancel()
		return
	}
	if old, ok := n.ghosts[info.Address]; ok {
		old.stop()
	} else if why := n.ghostRoomLocked(info.Address); why != "" {
		n.mu.Unlock()
		cancel()
		n.logf(slog.LevelWarn, "not reconnecting", "peer", info.Name, "address", info.Address, "reason", why)
		return
	}
	n.ghosts[info.Address] = g
	n.mu.Unlock()
	n.goSafe(func() {
		defer cancel()
		defer func() {
			n.mu.Lock()
			if n.ghosts[info.Address] == g {
				delete(n.ghosts, info.Address)
			}
			n.mu.Unlock()
		}()
		delay := n.cfg.ReconnectBase
		var lastErr error
		for attempt := 1; attempt <= n.cfg.ReconnectAttempts; attempt++ {
			wait := time.Duration(float64(delay) * (0.5 + rand.Float64()))
			next := time.Now().Add(wait)
			g.mu.Lock()
			g.attempt, g.next = attempt, next
			prevErr := g.lastErr
			g.mu.Unlock()
			n.emit(&EdgeStateEvent{EventBase: now(), PeerID: g.peerID, Name: g.name, Address: g.address, State: StateReconnecting,
				Attempt: attempt, Next: next, Err: prevErr})
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return
			}
			if n.edgeByAddr(g.address) != nil {
				return
			}
			if !n.guard.dials.wait(ctx) {
				return
			}
			actx, acancel := context.WithTimeout(ctx, n.cfg.DialTimeout+n.cfg.HandshakeTimeout)
			_, err := n.connect(actx, g.address, nil)
			acancel()
			if err == nil {
				n.logf(slog.LevelInfo, "reconnected", "peer", g.name, "address", g.address, "attempt", attempt)
				return
			}
			if ctx.Err() != nil {
				return
			}
			lastErr = err
			g.mu.Lock()
			g.lastErr = err.Error()
			g.mu.Unlock()
			n.logf(slog.LevelDebug, "reconnect attempt failed", "peer", g.name, "address", g.address, "attempt", attempt, "err", err.Error())
			delay *= 2
			if delay > n.cfg.ReconnectMax {
				delay = n.cfg.ReconnectMax
			}
		}
		msg := ""
		if lastErr != nil {
			msg = lastErr.Error()
		}
		n.logf(slog.LevelWarn, "gave up reconnecting", "peer", g.name, "address", g.address, "attempts", n.cfg.ReconnectAttempts)
		n.emit(&EdgeStateEvent{EventBase: now(), PeerID: g.peerID, Name: g.name, Address: g.address, State: StateClosed, Attempt: n.cfg.ReconnectAttempts, Err: msg})
	})
}

// Reconnection dials an address a peer told us, so it is bounded: only
// peers whose address is known to be theirs are redialled (see mayRedial),
// at most maxGhosts at once and maxGhostsPerHost per host, and every
// reconnection dial of the node takes a token from one bucket.
const (
	maxGhosts        = 64
	maxGhostsPerHost = 8
)

// mayRedial reports whether the node may try to reach a lost peer again at
// its listening address, or why not. An address we dialled ourselves is
// ours to redial. An inbound peer's claimed address is trusted only as far
// as its host is the one the connection came from: then the worst a liar
// gets is us dialling its own machine. (It dialled us, so it can also
// come back by itself.)
func (e *edge) mayRedial() (bool, string) {
	if e.dialed {
		return true, ""
	}
	addr := e.listenAddr()
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, "listening address unusable"
	}
	rhost, _, err := net.SplitHostPort(e.remote)
	if err != nil {
		return false, "no remote address"
	}
	hip, rip := net.ParseIP(host), net.ParseIP(rhost)
	if hip == nil || rip == nil || !hip.Equal(rip) {
		return false, "inbound peer's listening address not on the host it connected from"
	}
	return true, ""
}

// ghostRoomLocked tells whether one more lost peer may be tracked for
// reconnection, or why not (n.mu held).
func (n *Node) ghostRoomLocked(addr string) string {
	if len(n.ghosts) >= maxGhosts {
		return "reconnection table full"
	}
	host, _, _ := net.SplitHostPort(addr)
	same := 0
	for a := range n.ghosts {
		if h, _, _ := net.SplitHostPort(a); h == host {
			same++
		}
	}
	if same >= maxGhostsPerHost {
		return "too many lost peers on that host"
	}
	return ""
}

// ParseAddr normalises a peer address: "ip:port", "[ipv6]:port",
// "host:port", or the original's "Name@ip:port" and "*Name@ip:port" forms.
func ParseAddr(s string) (string, error) {
	s = strings.TrimSpace(s)
	if i := strings.LastIndex(s, "@"); i >= 0 {
		s = s[i+1:]
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", &AddrError{Addr: s, Err: err}
	}
	if host == "" {
		host = "127.0.0.1"
	}
	if ip := net.ParseIP(host); ip != nil {
		host = ip.String() // canonical form: [0:0:0:0:0:0:0:1] → ::1
	}
	return net.JoinHostPort(host, port), nil
}

// AddrError reports an address that cannot be parsed.
type AddrError struct {
	Addr string
	Err  error
}

func (e *AddrError) Error() string {
	return "chaski: bad address " + e.Addr + " (want ip:port, [ipv6]:port or host:port): " + e.Err.Error()
}
func (e *AddrError) Unwrap() error { return e.Err }

// fillRandom fills ping padding; it needs no cryptographic quality.
func fillRandom(b []byte) {
	for i := 0; i+8 <= len(b); i += 8 {
		v := rand.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := len(b) &^ 7; i < len(b); i++ {
		b[i] = byte(rand.Uint32())
	}
}
