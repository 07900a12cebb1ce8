package chaski

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/chaski-dev/chaski/chaski/store"
	"github.com/chaski-dev/chaski/chaski/wire"
)

// Persistent storage and network fetch (the original's store_data and
// fetch_storage, fixed).
//
// Events: the node reports its own changes to the store as StoreEvents
// ("put" from StorePut, "delete" from StoreDelete, "fetched" when Fetch got
// a value from the network and stored it). Changes the node does not make
// (expiry by the store's purge, Clear, writes by other code holding the
// *store.Store) are only visible to the store's Options.OnEvent, which its
// opener sets at Open time, before the node exists; a StoreEventRelay
// bridges the two: pass relay.OnEvent as Options.OnEvent, and Attach the
// node once started. While a relay is attached the node stops emitting
// put/delete itself, so nothing is reported twice.

type fetchState struct {
	seen    *idFilter     // store requests already handled
	dialSem chan struct{} // bounds dials made to answer an origin

	mu      sync.Mutex
	pending map[xferID]*fetchWait // this node's fetches in flight
	moves   map[xferID]moveOffer  // values this node offered to move, until taken or stale
	relays  map[*StoreEventRelay]struct{}
	relayed atomic.Int32 // attached relays
}

type fetchWait struct {
	key string
	ch  chan fetchAnswer
}

type fetchAnswer struct {
	r *wire.StoreResponse
	e *edge // the holder's edge: a StoreTaken goes back over it
}

// moveOffer is a value this node sent with Move set: it deletes its copy
// when the requester, over the same peer, says it has stored it, unless
// the key was written meanwhile.
type moveOffer struct {
	key     string
	peer    wire.NodeID
	updated time.Time // the entry's Updated when it was sent
	at      time.Time
}

// maxMoveOffers bounds the move offers awaiting a StoreTaken; an offer not
// taken within moveOfferTTL is forgotten (the value simply stays).
const (
	maxMoveOffers = 256
	moveOfferTTL  = 2 * time.Minute
)

func (f *fetchState) init() {
	f.seen = newIDFilter(4096, time.Minute)
	f.dialSem = make(chan struct{}, 8)
	f.pending = make(map[xferID]*fetchWait)
	f.moves = make(map[xferID]moveOffer)
	f.relays = make(map[*StoreEventRelay]struct{})
}

// attachStore is called by Start when Config.Store is set. The store's
// events are bridged by a StoreEventRelay (see above); nothing else is
// needed: the store purges expired entries itself.
func (n *Node) attachStore() {
	n.logf(slog.LevelInfo, "store attached", "path", n.cfg.Store.Path(), "entries", n.cfg.Store.Len())
}

// closeHooks runs in Close once every node goroutine has ended. Transfer
// goroutines closed their files themselves; what is left is bookkeeping.
// The store belongs to whoever opened it and stays open.
func (n *Node) closeHooks() {
	n.fetch.mu.Lock()
	relays := n.fetch.relays
	n.fetch.relays = map[*StoreEventRelay]struct{}{}
	clear(n.fetch.pending)
	n.fetch.mu.Unlock()
	for r := range relays {
		r.detach(n)
	}
	n.files.mu.Lock()
	for id, x := range n.files.in {
		x.stop(stopLost, "")
		delete(n.files.in, id)
	}
	n.files.mu.Unlock()
}

// Store returns the node's store, or nil.
func (n *Node) Store() *store.Store { return n.cfg.Store }

// StorePut stores value under key in the local store; ttl > 0 expires it,
// 0 keeps it forever and store.UseDefaultTTL uses the store's default.
func (n *Node) StorePut(key string, value []byte, ttl time.Duration) error {
	st := n.cfg.Store
	if st == nil {
		return ErrNoStore
	}
	if err := st.Set(key, value, ttl); err != nil {
		return err
	}
	if n.fetch.relayed.Load() == 0 {
		ev := &StoreEvent{EventBase: now(), Kind: "put", Key: key, Size: len(value)}
		if e, err := st.Lookup(key); err == nil {
			ev.Expires = e.Expires
		}
		n.emit(ev)
	}
	return nil
}

// StoreDelete removes key from the local store (store.ErrNotFound if it is
// not there).
func (n *Node) StoreDelete(key string) error {
	st := n.cfg.Store
	if st == nil {
		return ErrNoStore
	}
	if err := st.Delete(key); err != nil {
		return err
	}
	if n.fetch.relayed.Load() == 0 {
		n.emit(&StoreEvent{EventBase: now(), Kind: "delete", Key: key})
	}
	return nil
}

// StoreEntries lists the live entries of the local store, sorted by key.
func (n *Node) StoreEntries() ([]StoreEntry, error) {
	st := n.cfg.Store
	if st == nil {
		return nil, ErrNoStore
	}
	es, err := st.Entries("")
	if err != nil {
		return nil, err
	}
	out := make([]StoreEntry, len(es))
	for i, e := range es {
		out[i] = StoreEntry{Key: e.Key, Value: e.Value, Size: e.Size, Updated: e.Updated, Expires: e.Expires}
		out[i].FromID, out[i].From = splitOrigin(e.Origin)
	}
	return out, nil
}

// A fetched value's store origin is "PEERID NAME": the id identifies the
// peer, the name is what people read.
func storeOrigin(peerID, name string) string {
	o := peerID + " " + name
	if len(o) > store.MaxOriginLen || strings.ContainsFunc(name, unicode.IsControl) || !utf8.ValidString(name) {
		return peerID
	}
	return o
}

func splitOrigin(o string) (id, name string) {
	id, name, _ = strings.Cut(o, " ")
	return id, name
}

// SaveState keeps value under name in the store's state records: the
// application's own bookkeeping (the dashboard keeps its transfer list
// there). They are not store entries: never listed, never expired, and
// never sent to a peer that fetches name. A nil value deletes the record.
// Needs a store (ErrNoStore).
func (n *Node) SaveState(name string, value []byte) error {
	if n.cfg.Store == nil {
		return ErrNoStore
	}
	return n.cfg.Store.SetState(name, value)
}

// LoadState returns the state record saved under name (an error wrapping
// ErrNotFound when there is none).
func (n *Node) LoadState(name string) ([]byte, error) {
	if n.cfg.Store == nil {
		return nil, ErrNoStore
	}
	v, err := n.cfg.Store.State(name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: state %q", ErrNotFound, name)
	}
	return v, err
}

// FetchOptions are the options of FetchWith.
type FetchOptions struct {
	// Move asks the node that answers to delete its copy once this node
	// has stored the value: the original's fetch, which popped the value
	// at the holder. A holder does so only with Config.AllowFetchMove (any
	// peer could otherwise empty its store), and only if the key was not
	// written since it sent the value; otherwise the fetch is a copy, as
	// by default. A value is never lost on the way: the holder deletes
	// only after this node has stored it, and if that notice is lost both
	// keep a copy.
	Move bool
}

// FetchResult is the outcome of FetchWith.
type FetchResult struct {
	Value []byte
	// Local: the key was in the local store and the network was not asked.
	Local bool
	// Moved: the holder agreed to a move and has been told to delete its
	// copy.
	Moved bool
	// From and FromID name the peer that answered (empty when Local).
	From, FromID string
}

// Fetch returns the value of key: from the local store when it is there,
// otherwise from the network (a copy; FetchWith can move it). The request floods every edge like a
// discovery request (deduplicated by request id, bounded by TTL and a
// visited set); a node holding the key answers this node directly, over an
// existing edge or by dialing it. The value is then stored locally with
// the remaining lifetime it had at the holder. Without an answer before
// ctx's deadline (default Config.RequestTimeout) the error wraps
// ErrNotFound. Needs a store (ErrNoStore).
func (n *Node) Fetch(ctx context.Context, key string) ([]byte, error) {
	r, err := n.FetchWith(ctx, key, FetchOptions{})
	return r.Value, err
}

// FetchWith is Fetch with options.
func (n *Node) FetchWith(ctx context.Context, key string, opts FetchOptions) (FetchResult, error) {
	var r FetchResult
	var err error
	r.Value, r.Local, r.Moved, err = n.fetchKey(ctx, key, opts, &r)
	return r, err
}

func (n *Node) fetchKey(ctx context.Context, key string, opts FetchOptions, res *FetchResult) (value []byte, local, moved bool, err error) {
	st := n.cfg.Store
	if st == nil {
		return nil, false, false, ErrNoStore
	}
	v, err := st.Get(key)
	if err == nil {
		return v, true, false, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return nil, false, false, err
	}
	if n.closing.Load() {
		return nil, false, false, ErrClosed
	}
	ctx, cancel := withDefaultTimeout(ctx, n.cfg.RequestTimeout)
	defer cancel()
	id := newXferID()
	n.fetch.seen.firstSight(wire.MessageID{Origin: wire.NodeID(id)})
	w := &fetchWait{key: key, ch: make(chan fetchAnswer, 1)}
	n.fetch.mu.Lock()
	n.fetch.pending[id] = w
	n.fetch.mu.Unlock()
	defer func() {
		n.fetch.mu.Lock()
		delete(n.fetch.pending, id)
		n.fetch.mu.Unlock()
	}()
	req := &wire.StoreRequest{Request: id[:], Origin: n.id[:], OriginAddr: n.addr, Key: key,
		TTL: n.cfg.TTL, Visited: [][]byte{n.id[:]}, Move: opts.Move}
	fr, err := wire.AppendControlFrame(nil, wire.KindStoreReq, "", req)
	if err != nil {
		return nil, false, false, err
	}
	sent := 0
	for _, e := range n.liveEdges() {
		if e.sendCtrl(fr) {
			sent++
		}
	}
	if sent == 0 {
		n.fetchCount.failed.Add(1)
		return nil, false, false, fmt.Errorf("%w: %q not found on the network (no connected peer)", ErrNotFound, key)
	}
	select {
	case a := <-w.ch:
		r := a.r
		var ttl time.Duration
		var expires time.Time
		if r.Expires != 0 {
			expires = time.Unix(0, r.Expires)
			if ttl = time.Until(expires); ttl <= 0 {
				return nil, false, false, fmt.Errorf("%w: %q expired on its way from the network", ErrNotFound, key)
			}
		}
		res.FromID, res.From = a.e.peerStr, a.e.name()
		if err := st.SetFrom(key, r.Value, ttl, storeOrigin(res.FromID, res.From)); err != nil {
			return nil, false, false, fmt.Errorf("chaski: fetched %q but cannot store it: %w", key, err)
		}
		// Stored: only now may a holder that agreed to a move delete its
		// copy.
		moved = opts.Move && r.Move && n.sendStoreTaken(a.e, r)
		n.logf(slog.LevelInfo, "fetched from the network", "key", key, "size", len(r.Value), "moved", moved, "from", res.From)
		n.fetchCount.ok.Add(1)
		n.emit(&StoreEvent{EventBase: now(), Kind: "fetched", Key: key, Size: len(r.Value), Expires: expires, From: res.From})
		if r.Value == nil {
			r.Value = []byte{}
		}
		return r.Value, false, moved, nil
	case <-ctx.Done():
		n.fetchCount.failed.Add(1)
		return nil, false, false, fmt.Errorf("%w: %q not found on the network: %w", ErrNotFound, key, ctx.Err())
	case <-n.ctx.Done():
		return nil, false, false, ErrClosed
	}
}

// sendStoreTaken tells the holder of a moved value that it is stored here.
func (n *Node) sendStoreTaken(e *edge, r *wire.StoreResponse) bool {
	fr, err := wire.AppendControlFrame(nil, wire.KindStoreTaken, "", &wire.StoreTaken{Request: r.Request, Key: r.Key})
	return err == nil && e.sendCtrl(fr)
}

func init() {
	routeFrames(func(n *Node, e *edge, f wire.Frame) error { return n.handleStoreRequest(e, f.Body) }, wire.KindStoreReq)
	routeFrames(func(n *Node, e *edge, f wire.Frame) error { return n.handleStoreResponse(e, f.Body) }, wire.KindStoreResp)
	routeFrames(func(n *Node, e *edge, f wire.Frame) error { return n.handleStoreTaken(e, f.Body) }, wire.KindStoreTaken)
}

func (n *Node) handleStoreRequest(e *edge, body []byte) error {
	var r wire.StoreRequest
	if err := wire.Unmarshal(body, &r); err != nil {
		return err
	}
	if !wire.ValidID(r.Request) || !wire.ValidID(r.Origin) || r.Key == "" || len(r.Key) > store.MaxKeyLen ||
		len(r.Visited) > wire.MaxVisited || len(r.OriginAddr) > wire.MaxAddrLen {
		return fmt.Errorf("malformed store request")
	}
	if !n.fetch.seen.firstSight(wire.MessageID{Origin: wire.NodeID(r.Request)}) {
		return nil
	}
	origin := wire.NodeID(r.Origin)
	if origin == n.id {
		return nil
	}
	if st := n.cfg.Store; st != nil {
		if ent, err := st.Lookup(r.Key); err == nil {
			n.answerFetch(&r, origin, ent)
			return nil
		}
	}
	n.forwardFlood(CommandFetch, e, origin, wire.KindStoreReq, &r.TTL, &r.Visited, &r)
	return nil
}

// answerFetch sends a held key to the origin of a request, over the edge to
// it or over a new edge, off the reader goroutine.
func (n *Node) answerFetch(r *wire.StoreRequest, origin wire.NodeID, ent store.Entry) {
	resp := &wire.StoreResponse{Request: r.Request, Key: r.Key, Found: true, Value: ent.Value}
	if !ent.Expires.IsZero() {
		resp.Expires = ent.Expires.UnixNano()
	}
	if r.Move && n.cfg.AllowFetchMove {
		resp.Move = n.offerMove(r.Request, r.Key, origin, ent.Updated)
	}
	fr, err := wire.AppendControlFrame(nil, wire.KindStoreResp, "", resp)
	if err != nil || len(fr)-wire.HeaderLen > n.cfg.MaxFrameBody {
		n.logf(slog.LevelWarn, "store value too large to send", "key", r.Key, "size", len(ent.Value))
		return
	}
	n.mu.RLock()
	e := n.edges[origin]
	n.mu.RUnlock()
	if e == nil {
		select {
		case n.fetch.dialSem <- struct{}{}:
		default:
			return // enough answering dials in flight
		}
		if ok, _ := n.guard.dials.take(); !ok {
			<-n.fetch.dialSem
			return // dialling addresses from the network at its rate limit
		}
	}
	addr := r.OriginAddr
	n.goSafe(func() {
		ctx, cancel := context.WithTimeout(n.ctx, n.cfg.DialTimeout+n.cfg.HandshakeTimeout+n.cfg.RequestTimeout)
		defer cancel()
		if e == nil {
			var err error
			e, err = n.connect(ctx, addr, nil)
			<-n.fetch.dialSem
			if err != nil {
				n.logf(slog.LevelDebug, "cannot reach fetch origin", "address", addr, "err", err.Error())
				return
			}
			if e.peer != origin {
				n.logf(slog.LevelWarn, "fetch origin address belongs to another node; not answering", "address", addr)
				return
			}
		}
		if err := e.sendData(ctx, fr); err != nil {
			n.logf(slog.LevelDebug, "cannot answer fetch", "key", r.Key, "err", err.Error())
			return
		}
		n.fetchCount.served.Add(1)
		n.logf(slog.LevelInfo, "answered fetch", "key", r.Key, "origin", e.name())
	})
}

// handleStoreResponse delivers a value to a Fetch in flight with the same
// request id and key; anything else is ignored, so no peer can write into
// this node's store unasked.
func (n *Node) handleStoreResponse(e *edge, body []byte) error {
	var r wire.StoreResponse
	if err := wire.Unmarshal(body, &r); err != nil {
		return err
	}
	id, ok := toXferID(r.Request)
	if !ok || !r.Found {
		return nil
	}
	n.fetch.mu.Lock()
	w := n.fetch.pending[id]
	if w == nil || w.key != r.Key {
		n.fetch.mu.Unlock()
		return nil
	}
	delete(n.fetch.pending, id)
	n.fetch.mu.Unlock()
	select {
	case w.ch <- fetchAnswer{r: &r, e: e}:
	default:
	}
	return nil
}

// offerMove records that the value of key goes to origin with Move set;
// false when too many offers are waiting (the answer is then a copy).
func (n *Node) offerMove(request []byte, key string, origin wire.NodeID, updated time.Time) bool {
	id, ok := toXferID(request)
	if !ok {
		return false
	}
	now := time.Now()
	f := &n.fetch
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.moves) >= maxMoveOffers {
		for k, m := range f.moves {
			if now.Sub(m.at) > moveOfferTTL {
				delete(f.moves, k)
			}
		}
		if len(f.moves) >= maxMoveOffers {
			return false
		}
	}
	f.moves[id] = moveOffer{key: key, peer: origin, updated: updated, at: now}
	return true
}

// handleStoreTaken deletes a value this node offered to move, once the
// requester it was offered to has stored it, unless it was written since.
// A notice for anything else is ignored.
func (n *Node) handleStoreTaken(e *edge, body []byte) error {
	var t wire.StoreTaken
	if err := wire.Unmarshal(body, &t); err != nil {
		return err
	}
	id, ok := toXferID(t.Request)
	if !ok {
		return nil
	}
	f := &n.fetch
	f.mu.Lock()
	m, ok := f.moves[id]
	if ok && m.peer == e.peer && m.key == t.Key {
		delete(f.moves, id)
	} else {
		ok = false
	}
	f.mu.Unlock()
	st := n.cfg.Store
	if !ok || st == nil || time.Since(m.at) > moveOfferTTL {
		return nil
	}
	// One store transaction on the reader: the peer can cause at most one
	// per value this node offered it, and a later frame of the peer then
	// sees the key gone.
	deleted, err := st.DeleteUnchanged(m.key, m.updated)
	switch {
	case err != nil:
		n.logf(slog.LevelWarn, "cannot delete a moved value", "key", m.key, "err", err.Error())
	case deleted:
		n.logf(slog.LevelInfo, "value moved to the requester", "key", m.key, "peer", e.name())
		if f.relayed.Load() == 0 {
			n.emit(&StoreEvent{EventBase: now(), Kind: "delete", Key: m.key})
		}
	default:
		n.logf(slog.LevelInfo, "moved value kept: written since it was sent", "key", m.key)
	}
	return nil
}

// StoreEventRelay forwards the change events of a store to the event
// streams of nodes. The store's OnEvent is fixed when it is opened, before
// any node exists, so:
//
//	relay := chaski.NewStoreEventRelay()
//	st, err := store.Open(path, store.Options{OnEvent: relay.OnEvent})
//	n, err := chaski.Start(chaski.Config{Store: st, ...})
//	detach := relay.Attach(n)
//
// Every committed change (put, delete, expire, clear) then reaches the
// node's watchers as a StoreEvent. A relay detaches itself from a node that
// closes.
type StoreEventRelay struct {
	mu    sync.RWMutex
	nodes map[*Node]struct{}
}

// NewStoreEventRelay returns a relay attached to no node.
func NewStoreEventRelay() *StoreEventRelay {
	return &StoreEventRelay{nodes: make(map[*Node]struct{})}
}

// OnEvent is the store.Options.OnEvent to open the store with. It never
// blocks.
func (r *StoreEventRelay) OnEvent(ev store.Event) {
	se := &StoreEvent{EventBase: now(), Kind: ev.Kind.String(), Key: ev.Key, Size: ev.Size, Expires: ev.Expires}
	r.mu.RLock()
	defer r.mu.RUnlock()
	for n := range r.nodes {
		n.emit(se)
	}
}

// Attach makes the relay forward to n; the returned function detaches it.
func (r *StoreEventRelay) Attach(n *Node) (detach func()) {
	n.fetch.mu.Lock()
	if n.closing.Load() {
		n.fetch.mu.Unlock()
		return func() {}
	}
	if _, dup := n.fetch.relays[r]; !dup {
		n.fetch.relays[r] = struct{}{}
		n.fetch.relayed.Add(1)
	}
	n.fetch.mu.Unlock()
	r.mu.Lock()
	r.nodes[n] = struct{}{}
	r.mu.Unlock()
	return func() {
		n.fetch.mu.Lock()
		if _, ok := n.fetch.relays[r]; ok {
			delete(n.fetch.relays, r)
			n.fetch.relayed.Add(-1)
		}
		n.fetch.mu.Unlock()
		r.detach(n)
	}
}

func (r *StoreEventRelay) detach(n *Node) {
	r.mu.Lock()
	delete(r.nodes, n)
	r.mu.Unlock()
}
