package tui

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/chaski-dev/chaski/chaski"
)

// The Transfers list survives a restart: the last maxXferHistory finished
// transfers are kept in the node's store as a state record (SaveState),
// not as a store entry. A store entry would be listed in Storage, expire,
// and — worse — be handed to any peer that fetches its key; a state record
// is none of these. The dashboard owns the record's content (what it
// shows, the local path a retry needs, what the user cleared); the library
// only keeps the bytes.

const (
	xferStateName  = "chaski.tui.transfers"
	maxXferHistory = 100
	xferRecVersion = 1
)

// stateBackend is a Backend that can keep the dashboard's state records
// (*chaski.Node can). Without one the list lives as long as the dashboard.
type stateBackend interface {
	SaveState(name string, value []byte) error
	LoadState(name string) ([]byte, error)
}

// xferRecord is one persisted row.
type xferRecord struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Topic     string    `json:"topic,omitempty"`
	Peer      string    `json:"peer,omitempty"`
	PeerID    string    `json:"peer_id,omitempty"`
	Outgoing  bool      `json:"outgoing"`
	Size      int64     `json:"size"`
	Done      int64     `json:"done"`
	State     string    `json:"state"`
	Hash      string    `json:"hash,omitempty"` // "sha256:HEX"
	Path      string    `json:"path,omitempty"` // where the file was saved (incoming)
	Source    string    `json:"source,omitempty"`
	Err       string    `json:"error,omitempty"`
	Started   time.Time `json:"started"`
	FirstByte time.Time `json:"first_byte,omitzero"`
	Ended     time.Time `json:"ended,omitzero"`
}

type xferFile struct {
	Version   int          `json:"version"`
	Transfers []xferRecord `json:"transfers"`
}

// xferHistory is the Transfers pane's memory: the rows loaded from the
// store, the local source of each outgoing transfer (for a retry), the
// rows the user cleared, and whether the record needs writing.
type xferHistory struct {
	loaded  map[string]bool   // rows that came from the store (earlier runs)
	sources map[string]string // transfer id → local path it was read from
	dirs    []string          // folders dropped here (their files' transfers are named by relative path)
	cleared map[string]bool
	saved   map[string]chaski.TransferState
	dirty   bool
	seq     int
	saver   *xferSaver
}

// xferSaver writes the record off the UI goroutine, newest wins.
type xferSaver struct {
	mu   sync.Mutex
	last int
}

func (h *xferHistory) init() {
	h.loaded, h.sources, h.cleared = map[string]bool{}, map[string]string{}, map[string]bool{}
	h.saved = map[string]chaski.TransferState{}
	h.saver = &xferSaver{}
}

// seen marks the record dirty when a transfer reaches a final state it was
// not saved in.
func (h *xferHistory) seen(t *chaski.TransferInfo) {
	if t.State.Finished() && h.saved[t.ID] != t.State {
		h.dirty = true
	}
}

func stateOf(name string) chaski.TransferState {
	for _, s := range []chaski.TransferState{chaski.TransferDone, chaski.TransferFailed, chaski.TransferCancelled} {
		if s.String() == name {
			return s
		}
	}
	return chaski.TransferFailed
}

// loadTransfers puts the saved rows into the list (synchronously, at
// start: one small read).
func (s *shared) loadTransfers() {
	sb, ok := s.b.(stateBackend)
	if !ok {
		return
	}
	raw, err := sb.LoadState(xferStateName)
	if err != nil {
		if !errors.Is(err, chaski.ErrNotFound) && !errors.Is(err, chaski.ErrNoStore) && s.logf != nil {
			s.logf(s.now(), 4, "ui: cannot read the saved transfer list: %v", err)
		}
		return
	}
	var f xferFile
	if err := json.Unmarshal(raw, &f); err != nil || f.Version != xferRecVersion {
		if s.logf != nil {
			s.logf(s.now(), 4, "ui: the saved transfer list is unreadable (%v); starting a new one", err)
		}
		return
	}
	// Oldest first, so the order of first sight matches the run order.
	sort.SliceStable(f.Transfers, func(i, j int) bool { return f.Transfers[i].Started.Before(f.Transfers[j].Started) })
	for _, r := range f.Transfers {
		if r.ID == "" || s.transfers[r.ID] != nil {
			continue
		}
		t := &chaski.TransferInfo{ID: r.ID, Name: r.Name, Topic: r.Topic, Peer: r.Peer, PeerID: r.PeerID, Outgoing: r.Outgoing,
			Size: r.Size, Done: r.Done, State: stateOf(r.State), Path: r.Path, Err: r.Err,
			Started: r.Started, FirstByte: r.FirstByte, Ended: r.Ended}
		setXferHash(t, r.Hash)
		s.transfers[r.ID] = t
		s.order = append(s.order, r.ID)
		s.xhist.loaded[r.ID] = true
		s.xhist.saved[r.ID] = t.State
		if r.Source != "" {
			s.xhist.sources[r.ID] = r.Source
		}
	}
}

// historyRecords is the list as it would be saved: the newest
// maxXferHistory finished transfers.
func (s *shared) historyRecords() []xferRecord {
	var fin []*chaski.TransferInfo
	for _, id := range s.order {
		if t := s.transfers[id]; t != nil && t.State.Finished() {
			fin = append(fin, t)
		}
	}
	sort.SliceStable(fin, func(i, j int) bool { return fin[i].Started.After(fin[j].Started) })
	if len(fin) > maxXferHistory {
		fin = fin[:maxXferHistory]
	}
	out := make([]xferRecord, len(fin))
	for i, t := range fin {
		algo, sum := xferHash(t)
		hash := ""
		if sum != "" {
			hash = algo + ":" + sum
		}
		out[i] = xferRecord{ID: t.ID, Name: t.Name, Topic: t.Topic, Peer: t.Peer, PeerID: t.PeerID, Outgoing: t.Outgoing,
			Size: t.Size, Done: t.Done, State: t.State.String(), Hash: hash, Path: t.Path, Source: s.sourceOf(t),
			Err: t.Err, Started: t.Started, FirstByte: t.FirstByte, Ended: t.Ended}
	}
	return out
}

// saveTransfersCmd writes the list when it changed; nil otherwise. It runs
// on the frame tick, so a burst of finished transfers costs one write.
func (s *shared) saveTransfersCmd() tea.Cmd {
	h := &s.xhist
	if !h.dirty || s.readOnly {
		return nil
	}
	sb, ok := s.b.(stateBackend)
	if !ok {
		h.dirty = false
		return nil
	}
	h.dirty = false
	recs := s.historyRecords()
	for _, r := range recs {
		h.saved[r.ID] = stateOf(r.State)
	}
	h.seq++
	seq, saver := h.seq, h.saver
	raw, err := json.Marshal(xferFile{Version: xferRecVersion, Transfers: recs})
	if err != nil {
		return nil
	}
	return func() tea.Msg {
		saver.mu.Lock()
		defer saver.mu.Unlock()
		if seq < saver.last {
			return nil // a newer list was written already
		}
		saver.last = seq
		if err := sb.SaveState(xferStateName, raw); err != nil && !errors.Is(err, chaski.ErrNoStore) {
			return resultMsg{notice: "save the transfer list", err: err}
		}
		return nil
	}
}

// sourceOf is the local path an outgoing transfer read its file from,
// when this dashboard sent it ("" otherwise). A file of a dropped folder
// is named by its path under the folder's parent ("photos/a.jpg").
func (s *shared) sourceOf(t *chaski.TransferInfo) string {
	if src := s.xhist.sources[t.ID]; src != "" || !t.Outgoing {
		return src
	}
	top, _, ok := strings.Cut(t.Name, "/")
	if !ok {
		return ""
	}
	for i := len(s.xhist.dirs) - 1; i >= 0; i-- {
		if d := s.xhist.dirs[i]; filepath.Base(d) == top {
			return filepath.Join(filepath.Dir(d), filepath.FromSlash(t.Name))
		}
	}
	return ""
}

// clearTransfer removes a finished row from the list (and from the saved
// record at the next save).
func (s *shared) clearTransfer(id string) {
	if t := s.transfers[id]; t == nil || !t.State.Finished() {
		return
	}
	delete(s.transfers, id)
	for i, o := range s.order {
		if o == id {
			s.order = append(s.order[:i], s.order[i+1:]...)
			break
		}
	}
	s.xhist.cleared[id] = true
	delete(s.xhist.sources, id)
	s.xhist.dirty = true
}

// xferHash is the algorithm and hex digest that verified a transfer
// (BLAKE3 or SHA-256), once known.
func xferHash(t *chaski.TransferInfo) (algo, sum string) {
	algo, sum, _ = strings.Cut(fullHash(t), ":")
	if sum == "" {
		return "", ""
	}
	return algo, sum
}

// setXferHash is xferHash's inverse, for rows read back from the store.
func setXferHash(t *chaski.TransferInfo, h string) {
	algo, sum, ok := strings.Cut(h, ":")
	if !ok || sum == "" {
		return
	}
	t.Hash, t.HashAlgo = h, algo
	if algo == chaski.HashSHA256 {
		t.SHA256 = sum
	}
}
