package chaski

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/chaski-dev/chaski/chaski/wire"
)

// HandlerFunc answers a named request. Handlers are registered explicitly
// with Handle: a peer can call nothing else (the original let any peer call
// any method of the node).
type HandlerFunc func(ctx context.Context, req Request) ([]byte, error)

// Request describes an incoming named request.
type Request struct {
	Name   string
	Data   []byte
	PeerID string // empty for UDP requests
	Peer   string // the peer's name, or the UDP source address
	UDP    bool
}

type reqResult struct {
	data []byte
	err  error
}

// Handle registers (or with nil, removes) the handler for a request name.
func (n *Node) Handle(name string, h HandlerFunc) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if h == nil {
		delete(n.handlers, name)
		return
	}
	n.handlers[name] = h
}

func (n *Node) handler(name string) HandlerFunc {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.handlers[name]
}

// Request sends a named request over the edge to peer and waits for the
// answer (the original's generic request, which travelled over TCP too). Without
// a deadline in ctx, Config.RequestTimeout applies.
func (n *Node) Request(ctx context.Context, peer, name string, data []byte) ([]byte, error) {
	e := n.findEdge(peer)
	if e == nil {
		return nil, fmt.Errorf("%w: %s", ErrNoEdge, peer)
	}
	ctx, cancel := withDefaultTimeout(ctx, n.cfg.RequestTimeout)
	defer cancel()
	id := n.nextReq.Add(1)
	ch := make(chan reqResult, 1)
	n.reqMu.Lock()
	n.reqs[id] = ch
	n.reqMu.Unlock()
	defer func() {
		n.reqMu.Lock()
		delete(n.reqs, id)
		n.reqMu.Unlock()
	}()
	f, err := wire.AppendControlFrame(nil, wire.KindRequest, "", &wire.Request{ID: id, Name: name, Data: data})
	if err != nil {
		return nil, err
	}
	if len(f) > n.cfg.MaxFrameBody {
		return nil, ErrTooLarge
	}
	if err := e.sendData(ctx, f); err != nil {
		return nil, err
	}
	select {
	case r := <-ch:
		return r.data, r.err
	case <-e.done:
		return nil, fmt.Errorf("%w: %s", ErrEdgeLost, peer)
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: request %q to %s: %v", ErrTimeout, name, peer, ctx.Err())
	}
}

func init() {
	routeFrames(func(n *Node, e *edge, f wire.Frame) error { return n.handleRequest(e, f.Body) }, wire.KindRequest)
	routeFrames(func(n *Node, _ *edge, f wire.Frame) error { return n.handleResponse(f.Body) }, wire.KindResponse)
}

func (n *Node) handleRequest(e *edge, body []byte) error {
	var r wire.Request
	if err := wire.Unmarshal(body, &r); err != nil {
		return err
	}
	answer := func(data []byte, err error) {
		resp := &wire.Response{ID: r.ID, Data: data}
		if err != nil {
			resp.Error = err.Error()
			resp.Data = nil
		}
		f, ferr := wire.AppendControlFrame(nil, wire.KindResponse, "", resp)
		if ferr != nil || len(f) > n.cfg.MaxFrameBody {
			f, _ = wire.AppendControlFrame(nil, wire.KindResponse, "", &wire.Response{ID: r.ID, Error: "response too large"})
		}
		_ = e.sendData(n.ctx, f)
	}
	n.runHandler(Request{Name: r.Name, Data: r.Data, PeerID: e.peerStr, Peer: e.name()}, answer)
	return nil
}

// runHandler runs a handler off the reader goroutine, at most
// MaxConcurrentRequests at a time; beyond that the request is refused as
// busy rather than queued without bound.
func (n *Node) runHandler(req Request, answer func([]byte, error)) {
	h := n.handler(req.Name)
	if h == nil {
		answer(nil, fmt.Errorf("%w: %q", ErrNoHandler, req.Name))
		return
	}
	select {
	case n.reqSem <- struct{}{}:
	default:
		answer(nil, ErrBusy)
		return
	}
	n.goSafe(func() {
		defer func() { <-n.reqSem }()
		ctx, cancel := context.WithTimeout(n.ctx, n.cfg.RequestTimeout)
		defer cancel()
		data, err := safeCall(ctx, h, req)
		if n.ctx.Err() != nil {
			return
		}
		answer(data, err)
	})
}

func safeCall(ctx context.Context, h HandlerFunc, req Request) (data []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler %q panicked: %v", req.Name, r)
		}
	}()
	return h(ctx, req)
}

func (n *Node) handleResponse(body []byte) error {
	var r wire.Response
	if err := wire.Unmarshal(body, &r); err != nil {
		return err
	}
	n.deliverResponse(r)
	return nil
}

func (n *Node) deliverResponse(r wire.Response) {
	n.reqMu.Lock()
	ch, ok := n.reqs[r.ID]
	delete(n.reqs, r.ID)
	n.reqMu.Unlock()
	if !ok {
		return // late or unknown: ignored
	}
	var err error
	if r.Error != "" {
		err = fmt.Errorf("%w: %s", ErrRemote, r.Error)
		if containsErr(r.Error, ErrNoHandler) {
			err = fmt.Errorf("%w: %s", ErrNoHandler, r.Error)
		}
	}
	ch <- reqResult{data: r.Data, err: err}
}

func containsErr(s string, target error) bool {
	return len(s) >= len(target.Error()) && s[:len(target.Error())] == target.Error()
}

// ---- UDP ----

func (n *Node) udpLoop() {
	buf := make([]byte, wire.MaxDatagram+1)
	for {
		sz, from, err := n.udp.ReadFromUDP(buf)
		if err != nil {
			if n.closing.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if sz > wire.MaxDatagram {
			continue
		}
		n.handleDatagram(buf[:sz], from)
	}
}

func (n *Node) handleDatagram(d []byte, from *net.UDPAddr) {
	kind, body, err := wire.ParseDatagram(d)
	if err != nil {
		return
	}
	src := from.AddrPort()
	if (kind == wire.UDPStatusRequest || kind == wire.UDPRequest) && !n.guard.udp.allow(src.Addr().Unmap()) {
		return
	}
	switch kind {
	case wire.UDPStatusRequest:
		var req wire.StatusRequest
		if wire.Unmarshal(body, &req) != nil {
			return
		}
		s := n.Status()
		st := &wire.Status{ID: req.ID, Name: s.Name, Address: s.Address, Paired: s.Paired, Serving: s.Serving,
			Reconnecting: s.Reconnecting, Edges: s.Edges, Root: s.Root, TLS: s.TLS, Version: wire.Version,
			AcceptFiles: s.AcceptsFiles, Extra: s.Extra}
		out, err := wire.AppendDatagram(nil, wire.UDPStatusResponse, st)
		if err != nil && st.Extra != nil {
			// Too large to fit: the application's fields go first...
			st.Extra = nil
			out, err = wire.AppendDatagram(nil, wire.UDPStatusResponse, st)
		}
		if err != nil {
			// ...then the pairing map (too many subscriptions), saying so:
			// an empty map would read as "all paired".
			st.Paired, st.PairedOmitted = nil, true
			if out, err = wire.AppendDatagram(nil, wire.UDPStatusResponse, st); err != nil {
				return
			}
		}
		if limit := wire.StatusAmplification * len(d); len(out) > limit && !n.guard.udp.validCookie(req.Cookie, src) {
			// Not more than a few times what the source sent until it
			// shows that it receives what we send to it.
			out, err = wire.AppendDatagram(nil, wire.UDPStatusResponse, &wire.Status{ID: req.ID, Version: wire.Version,
				Retry: true, Cookie: n.guard.udp.newCookie(src)})
			if err != nil || len(out) > limit {
				return
			}
		}
		_, _ = n.udp.WriteToUDP(out, from)
	case wire.UDPRequest:
		// Under TLS no datagram may change state: UDP requests are refused,
		// since nothing authenticates their sender.
		var req wire.Request
		if wire.Unmarshal(body, &req) != nil {
			return
		}
		answer := func(data []byte, err error) {
			resp := &wire.Response{ID: req.ID, Data: data}
			if err != nil {
				resp.Error, resp.Data = err.Error(), nil
			}
			out, aerr := wire.AppendDatagram(nil, wire.UDPResponse, resp)
			if aerr != nil {
				out, _ = wire.AppendDatagram(nil, wire.UDPResponse, &wire.Response{ID: req.ID, Error: "response too large for a datagram"})
			}
			_, _ = n.udp.WriteToUDP(out, from)
		}
		if n.TLS() {
			answer(nil, errors.New("UDP requests are disabled on a TLS node"))
			return
		}
		n.runHandler(Request{Name: req.Name, Data: req.Data, Peer: from.String(), UDP: true}, answer)
	default:
		// Responses to our own UDP queries come to their own sockets, not
		// here; anything else is ignored.
	}
}

// QueryStatus asks the node at addr for its status over UDP (what
// `chaski status` prints). It retries a lost datagram within ctx's deadline
// (default 2s).
func QueryStatus(ctx context.Context, addr string) (Status, error) {
	var st wire.Status
	id := randUint64()
	// The first request is padded, so that a small answer comes at once;
	// a larger one needs the cookie round trip (see wire.StatusRequest).
	req := &wire.StatusRequest{ID: id, Pad: make([]byte, wire.StatusRequestPad)}
	for round := 0; ; round++ {
		out, err := wire.AppendDatagram(nil, wire.UDPStatusRequest, req)
		if err != nil {
			return Status{}, err
		}
		if _, err := udpExchange(ctx, addr, out, wire.UDPStatusResponse, func(body []byte) bool {
			st = wire.Status{}
			return wire.Unmarshal(body, &st) == nil && st.ID == id
		}); err != nil {
			return Status{}, err
		}
		if !st.Retry {
			break
		}
		if round > 0 || len(st.Cookie) == 0 {
			return Status{}, fmt.Errorf("%w: %s keeps asking for a cookie", ErrRemote, addr)
		}
		req = &wire.StatusRequest{ID: id, Cookie: st.Cookie}
	}
	if st.Paired == nil {
		st.Paired = map[string]bool{}
	}
	return Status{Name: st.Name, Address: st.Address, Paired: st.Paired, PairedOmitted: st.PairedOmitted, Serving: st.Serving,
		Reconnecting: st.Reconnecting, Edges: st.Edges, Root: st.Root, TLS: st.TLS,
		AcceptsFiles: st.AcceptFiles, Extra: checkedStatusFields(st.Extra)}, nil
}

// RequestUDP sends a named request to the node at addr over UDP.
func RequestUDP(ctx context.Context, addr, name string, data []byte) ([]byte, error) {
	id := randUint64()
	out, err := wire.AppendDatagram(nil, wire.UDPRequest, &wire.Request{ID: id, Name: name, Data: data})
	if err != nil {
		return nil, err
	}
	var resp wire.Response
	if _, err := udpExchange(ctx, addr, out, wire.UDPResponse, func(body []byte) bool {
		return wire.Unmarshal(body, &resp) == nil && resp.ID == id
	}); err != nil {
		return nil, err
	}
	if resp.Error != "" {
		if containsErr(resp.Error, ErrNoHandler) {
			return nil, fmt.Errorf("%w: %s", ErrNoHandler, resp.Error)
		}
		return nil, fmt.Errorf("%w: %s", ErrRemote, resp.Error)
	}
	return resp.Data, nil
}

func udpExchange(ctx context.Context, addr string, out []byte, want wire.UDPKind, match func([]byte) bool) ([]byte, error) {
	addr, err := ParseAddr(addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := withDefaultTimeout(ctx, 2*time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", addr)
	if err != nil {
		return nil, fmt.Errorf("chaski: %s: %w", addr, unwrapOp(err))
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	buf := make([]byte, wire.MaxDatagram+1)
	resend := 300 * time.Millisecond
	for attempt := 0; ; attempt++ {
		if _, err := conn.Write(out); err != nil {
			if ctx.Err() == nil {
				// ICMP "port unreachable" from a previous write: keep
				// trying until the deadline, the node may be starting.
				select {
				case <-time.After(resend):
					continue
				case <-ctx.Done():
				}
			}
			return nil, fmt.Errorf("%w: no answer from %s", ErrTimeout, addr)
		}
		_ = conn.SetReadDeadline(time.Now().Add(resend))
		for {
			sz, err := conn.Read(buf)
			if err != nil {
				if ctx.Err() != nil {
					return nil, fmt.Errorf("%w: no answer from %s", ErrTimeout, addr)
				}
				break // resend
			}
			if sz > wire.MaxDatagram {
				continue
			}
			kind, body, err := wire.ParseDatagram(buf[:sz])
			if err != nil || kind != want || !match(body) {
				continue
			}
			return body, nil
		}
		if resend < time.Second {
			resend *= 2
		}
	}
}

// withDefaultTimeout bounds ctx by d unless it already has a deadline: every
// wait on the network ends, even when the caller set none.
func withDefaultTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}

// statusFields returns the application's status fields (Config.StatusFields)
// within the limits of wire.Status.
func (n *Node) statusFields() map[string]string {
	if n.cfg.StatusFields == nil {
		return nil
	}
	return checkedStatusFields(n.cfg.StatusFields())
}

// checkedStatusFields keeps at most wire.MaxStatusFields valid fields (in
// name order, so the choice is stable), values cut to
// wire.MaxStatusValueLen bytes, control characters replaced: on the serving side for the application's
// fields, on the querying side for a peer's.
func checkedStatusFields(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	names := make([]string, 0, len(m))
	for k := range m {
		if wire.ValidName(k, wire.MaxNameLen) {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	if len(names) > wire.MaxStatusFields {
		names = names[:wire.MaxStatusFields]
	}
	out := make(map[string]string, len(names))
	for _, k := range names {
		v := m[k]
		if len(v) > wire.MaxStatusValueLen {
			v = v[:wire.MaxStatusValueLen]
		}
		// Valid UTF-8 without control characters: a peer's values end up
		// on someone's terminal.
		out[k] = strings.Map(func(r rune) rune {
			if r < 0x20 || r == 0x7f {
				return '?'
			}
			return r
		}, strings.ToValidUTF8(v, ""))
	}
	return out
}
