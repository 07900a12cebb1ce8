package chaski

import (
	"log/slog"
	"sync"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/chaski-dev/chaski/chaski/store"
)

// Chat history: with Config.ChatHistory > 0 and a Store, the node keeps
// the last ChatHistory messages of each subscribed topic (received, and
// its own that were published) in the store's logs, so a dashboard, or
// any program on a headless node, finds the scrollback after a restart.
// It lives in the library rather than in the dashboard so that a node
// running without a UI keeps it too, and is opt-in because it writes
// every message to disk.
//
// Messages are written in batches by one goroutine: the delivery path
// only appends to a bounded buffer (a flood beyond it drops the oldest
// unwritten lines of the history, never a message owed to a subscriber).
const (
	historyFlushEvery = 250 * time.Millisecond
	historyPending    = 8192 // lines waiting to be written, at most
	historyLogPrefix  = "chat/"
)

// HistoryLine is one line of a topic's stored scrollback.
type HistoryLine struct {
	Topic  string    `msgpack:"t"`
	From   string    `msgpack:"f"`
	FromID string    `msgpack:"i"`
	Time   time.Time `msgpack:"at"`
	Data   []byte    `msgpack:"d"`
	Own    bool      `msgpack:"o"` // published by this node
}

type chatHistory struct {
	mu      sync.Mutex
	pending []store.LogRecord
	dropped uint64
	wake    chan struct{}
}

func (n *Node) startHistory() {
	if n.cfg.ChatHistory <= 0 || n.cfg.Store == nil {
		return
	}
	n.hist = &chatHistory{wake: make(chan struct{}, 1)}
	n.goSafe(n.historyLoop)
}

// remember queues a line for the history (cheap: the caller is the
// delivery path).
func (n *Node) remember(topic, from, fromID string, at time.Time, data []byte, own bool) {
	h := n.hist
	if h == nil {
		return
	}
	raw, err := msgpack.Marshal(&HistoryLine{Topic: topic, From: from, FromID: fromID, Time: at, Data: data, Own: own})
	if err != nil {
		return
	}
	h.mu.Lock()
	if len(h.pending) >= historyPending {
		h.pending = h.pending[1:]
		h.dropped++
	}
	h.pending = append(h.pending, store.LogRecord{Log: historyLogPrefix + topic, Data: raw})
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

func (n *Node) historyLoop() {
	h := n.hist
	for {
		select {
		case <-h.wake:
		case <-n.ctx.Done():
			n.flushHistory()
			return
		}
		// Gather what arrives for a moment: one transaction per batch.
		t := time.NewTimer(historyFlushEvery)
		select {
		case <-t.C:
		case <-n.ctx.Done():
			t.Stop()
		}
		n.flushHistory()
	}
}

func (n *Node) flushHistory() {
	h := n.hist
	h.mu.Lock()
	recs := h.pending
	h.pending = nil
	h.mu.Unlock()
	if len(recs) == 0 {
		return
	}
	if err := n.cfg.Store.AppendLogs(recs, n.cfg.ChatHistory); err != nil {
		n.logf(slog.LevelWarn, "chat history not written", "lines", len(recs), "err", err)
	}
}

// ChatHistory returns the newest limit stored lines of topic, oldest
// first (limit ≤ 0: all kept). Lines still waiting to be written are
// included. It returns nil without a Store or with Config.ChatHistory 0.
func (n *Node) ChatHistory(topic string, limit int) ([]HistoryLine, error) {
	if n.hist == nil {
		return nil, nil
	}
	raws, err := n.cfg.Store.ReadLog(historyLogPrefix+topic, limit)
	if err != nil {
		return nil, err
	}
	n.hist.mu.Lock()
	for _, r := range n.hist.pending {
		if r.Log == historyLogPrefix+topic {
			raws = append(raws, r.Data)
		}
	}
	n.hist.mu.Unlock()
	if limit > 0 && len(raws) > limit {
		raws = raws[len(raws)-limit:]
	}
	out := make([]HistoryLine, 0, len(raws))
	for _, raw := range raws {
		var l HistoryLine
		if msgpack.Unmarshal(raw, &l) == nil {
			out = append(out, l)
		}
	}
	return out, nil
}
