package tui

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/charmbracelet/lipgloss"

	"github.com/chaski-dev/chaski/chaski"
	"github.com/chaski-dev/chaski/theme"
)

// shared is the context every pane draws from: styles, keys, the backend,
// the clock, the screen size, and the node's state as last seen (a snapshot
// patched by events). Panes keep their own view state (selection, scroll,
// filter); only the root model writes here.
type shared struct {
	st       theme.Styles
	keys     *keyMap
	b        Backend
	now      func() time.Time
	opts     Options
	bg       context.Context // background commands; cancelled on quit
	width    int
	height   int
	readOnly bool

	status     chaski.Status
	haveStatus bool
	edges      []chaski.EdgeInfo // live and reconnecting peers, sorted
	dials      []*dial           // connects this dashboard started that are not up (yet)
	transfers  map[string]*chaski.TransferInfo
	order      []string    // transfer ids, first seen first
	drops      []*drop     // files dropped here, until their transfers show (or fail)
	xhist      xferHistory // the transfer list kept in the store (xferhist.go)
	offers     []string    // incoming transfer ids waiting for an answer, oldest first
	offered    map[string]bool
	pairings   []chaski.PairingInfo
	nearby     []chaski.NearbyNode // nodes found nearby (NearbyBackend), most recent first
	store      []chaski.StoreEntry
	storeErr   error
	storeAt    time.Time
	storeStale bool

	rateAt          time.Time
	rateIn, rateOut float64
	lastIn, lastOut uint64
	seenIn, seenOut uint64 // messages counted by the dashboard (fallback rate)

	peerIdx map[string]int // peer name → colour index, in order of appearance

	notice    string
	noticeErr bool
	noticeAt  time.Time
	logf      func(at time.Time, level int, format string, args ...any)
}

// dial is a connection the user asked for (c, /connect, --connect) that is
// not an edge yet: connecting, or failed and waiting to retry.
type dial struct {
	addr    string
	attempt int
	state   string // "connecting" or "failed"
	err     string
	next    time.Time // next retry, when failed
	gen     int       // bumps when the dial is restarted or removed
}

// drop is a file the user dropped (or /send), shown from the moment it is
// offered until its transfers appear, or with the reason it failed.
type drop struct {
	id    int
	name  string
	topic string
	at    time.Time
	state string // "offering", "failed", "sent"
	err   string
	path  string // the local path, for a retry
}

// peerStyle is a peer's colour, the same in every pane: a hash of the
// name into the palette, so that a nick keeps its colour from run to run,
// unless another peer of this run already has that colour; then the next
// free one, so that peers on one screen never share a colour while there
// are fewer of them than colours.
func (s *shared) peerStyle(name string) lipgloss.Style {
	i, ok := s.peerIdx[name]
	if !ok {
		n := max(1, len(s.st.Peers))
		i = int(nameHash(name) % uint32(n))
		if len(s.peerIdx) < n {
			used := make(map[int]bool, len(s.peerIdx))
			for _, j := range s.peerIdx {
				used[j%n] = true
			}
			for used[i] {
				i = (i + 1) % n
			}
		}
		s.peerIdx[name] = i
	}
	return s.st.Peer(i)
}

func (s *shared) setNotice(isErr bool, format string, args ...any) {
	s.notice = sanitize(fmt.Sprintf(format, args...))
	s.noticeErr = isErr
	s.noticeAt = s.now()
	lvl := 0
	if isErr {
		lvl = 8
	}
	if s.logf != nil {
		s.logf(s.noticeAt, lvl, "ui: %s", s.notice)
	}
}

// liveEdges counts edges that are up: the header and the Edges pane title
// count the same list.
func (s *shared) liveEdges() (up, other int) {
	for _, e := range s.edges {
		if e.State == chaski.StateUp {
			up++
		} else {
			other++
		}
	}
	return up, other + len(s.dials)
}

func (s *shared) setEdges(edges []chaski.EdgeInfo) {
	s.edges = append(s.edges[:0], edges...)
	sort.SliceStable(s.edges, func(i, j int) bool {
		if s.edges[i].Name != s.edges[j].Name {
			return s.edges[i].Name < s.edges[j].Name
		}
		return s.edges[i].PeerID < s.edges[j].PeerID
	})
	for _, e := range s.edges {
		if e.State == chaski.StateUp {
			s.dialDone(e.Address)
		}
	}
}

func (s *shared) edgeIndex(peerID string) int {
	for i := range s.edges {
		if s.edges[i].PeerID == peerID {
			return i
		}
	}
	return -1
}

func (s *shared) upsertEdge(e chaski.EdgeInfo) {
	if i := s.edgeIndex(e.PeerID); i >= 0 {
		s.edges[i] = e
		return
	}
	s.setEdges(append(s.edges, e))
}

func (s *shared) removeEdge(peerID string) {
	if i := s.edgeIndex(peerID); i >= 0 {
		s.edges = append(s.edges[:i], s.edges[i+1:]...)
	}
}

func (s *shared) dialFor(addr string) *dial {
	for _, d := range s.dials {
		if d.addr == addr {
			return d
		}
	}
	return nil
}

// dialDone drops the dial row of an address that is now an edge.
func (s *shared) dialDone(addr string) {
	for i, d := range s.dials {
		if d.addr == addr {
			d.gen++
			s.dials = append(s.dials[:i], s.dials[i+1:]...)
			return
		}
	}
}

func (s *shared) upsertTransfer(t chaski.TransferInfo) {
	if s.xhist.cleared[t.ID] {
		return // the user cleared it from the list
	}
	defer s.xhist.seen(&t)
	old, ok := s.transfers[t.ID]
	if !ok {
		s.order = append(s.order, t.ID)
		cp := t
		s.transfers[t.ID] = &cp
		s.transferSeen(&cp)
		return
	}
	// Snapshots may be older than the last event: never go back.
	if old.State.Finished() && !t.State.Finished() {
		return
	}
	if t.State == old.State && t.Done < old.Done {
		return
	}
	*old = t
	s.transferSeen(old)
}

// transferSeen keeps the offer queue and the drop rows in step with a
// transfer's state.
func (s *shared) transferSeen(t *chaski.TransferInfo) {
	if !t.Outgoing && t.State == chaski.TransferPending && s.opts.AcceptFilesPrompt && !s.offered[t.ID] {
		s.offered[t.ID] = true
		s.offers = append(s.offers, t.ID)
	}
	if t.State != chaski.TransferPending {
		s.dropOffer(t.ID)
	}
	if t.Outgoing {
		// The transfer has its own row now: the drop row goes.
		for i, d := range s.drops {
			if d.state == "offering" && d.name == t.Name && d.topic == t.Topic && !t.Started.Before(d.at.Add(-time.Second)) {
				d.state = "sent"
				if s.xhist.sources[t.ID] == "" && d.path != "" {
					s.xhist.sources[t.ID] = d.path
				}
				s.drops = append(s.drops[:i], s.drops[i+1:]...)
				break
			}
		}
	}
}

func (s *shared) dropOffer(id string) {
	for i, o := range s.offers {
		if o == id {
			s.offers = append(s.offers[:i], s.offers[i+1:]...)
			return
		}
	}
}

// offer returns the oldest transfer waiting for an answer.
func (s *shared) offer() (*chaski.TransferInfo, bool) {
	for len(s.offers) > 0 {
		if t := s.transfers[s.offers[0]]; t != nil && t.State == chaski.TransferPending {
			return t, true
		}
		s.offers = s.offers[1:]
	}
	return nil, false
}

// applySnapshot takes a fresh reading of the node.
func (s *shared) applySnapshot(sn snapshotMsg) {
	now := s.now()
	if s.haveStatus && !s.rateAt.IsZero() {
		if dt := now.Sub(s.rateAt).Seconds(); dt >= 0.9 {
			in, out := sn.status.MsgsIn, sn.status.MsgsOut
			if in == 0 && out == 0 {
				// The node does not count: use what the dashboard saw.
				in, out = s.seenIn, s.seenOut
			}
			if in < s.lastIn || out < s.lastOut {
				s.lastIn, s.lastOut = in, out
			}
			s.rateIn = float64(in-s.lastIn) / dt
			s.rateOut = float64(out-s.lastOut) / dt
			s.lastIn, s.lastOut, s.rateAt = in, out, now
		}
	} else {
		s.lastIn, s.lastOut, s.rateAt = sn.status.MsgsIn, sn.status.MsgsOut, now
		if s.lastIn == 0 && s.lastOut == 0 {
			s.lastIn, s.lastOut = s.seenIn, s.seenOut
		}
	}
	s.status = sn.status
	s.haveStatus = true
	s.setEdges(sn.edges)
	s.pairings = sn.pairings
	s.nearby = sn.nearby
	for _, t := range sn.transfers {
		s.upsertTransfer(t)
	}
	if sn.withStore {
		s.store, s.storeErr, s.storeAt = sn.store, sn.storeErr, now
		sort.Slice(s.store, func(i, j int) bool { return s.store[i].Key < s.store[j].Key })
	}
}

// applyEvent patches the state between snapshots.
func (s *shared) applyEvent(ev chaski.Event) {
	switch e := ev.(type) {
	case *chaski.LatencyEvent:
		if i := s.edgeIndex(e.PeerID); i >= 0 {
			l := &s.edges[i].Latency
			if !e.Lost {
				l.Last = e.RTT
			}
			h := l.History
			if len(h) >= 120 {
				// Copy rather than reslice: the snapshot's slice is shared.
				h = append(h[:0:0], h[len(h)-119:]...)
			} else {
				h = h[:len(h):len(h)]
			}
			l.History = append(h, chaski.LatencySample{At: e.When(), RTT: e.RTT, Lost: e.Lost})
		}
	case *chaski.EdgeUpEvent:
		s.upsertEdge(e.Edge)
		s.dialDone(e.Edge.Address)
	case *chaski.EdgeDownEvent:
		if e.Reconnect {
			ed := e.Edge
			ed.State = chaski.StateReconnecting
			ed.LastError = e.Reason
			s.upsertEdge(ed)
		} else {
			s.removeEdge(e.Edge.PeerID)
		}
	case *chaski.EdgeStateEvent:
		if e.State == chaski.StateClosed {
			s.removeEdge(e.PeerID)
		} else if i := s.edgeIndex(e.PeerID); i >= 0 {
			s.edges[i].State, s.edges[i].Attempt, s.edges[i].NextAttempt = e.State, e.Attempt, e.Next
			if e.Err != "" {
				s.edges[i].LastError = e.Err
			}
		} else {
			s.upsertEdge(chaski.EdgeInfo{PeerID: e.PeerID, Name: e.Name, Address: e.Address, State: e.State,
				Attempt: e.Attempt, NextAttempt: e.Next, LastError: e.Err, Since: e.When()})
		}
	case *chaski.SubscriptionEvent:
		s.status.Subscriptions = append([]string(nil), e.Subscriptions...)
	case *chaski.PeerSubscriptionEvent:
		if i := s.edgeIndex(e.PeerID); i >= 0 {
			s.edges[i].Subscriptions = e.Subscriptions
			s.edges[i].Root = e.Root
		}
	case *chaski.PairedEvent:
		cp := make(map[string]bool, len(s.status.Paired)+1)
		for k, v := range s.status.Paired {
			cp[k] = v
		}
		cp[e.Topic] = true
		s.status.Paired = cp // copy on write: the map came from a snapshot
	case *chaski.TransferEvent:
		s.upsertTransfer(e.Transfer)
	case *chaski.StoreEvent:
		s.storeStale = true
	}
}
