package natsbridge

import (
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chaski-dev/chaski/chaski"
	"github.com/chaski-dev/chaski/chaski/wire"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
)

// HeaderBatch marks an announcement that carries several claimed messages
// (docs/PROTOCOL.md §13): "<origin>/<count>", the claiming bridge's origin
// as UUID text and how many messages the body holds. Such an announcement
// has no Chaski-Id, so a bridge that does not know batches ignores it
// rather than injecting the body as one message.
const HeaderBatch = "Chaski-Batch"

// Bounds of one batched announcement. A burst of claims is announced in
// one NATS message instead of one per claim: in the benchmark that cut the
// server's and the bridge's CPU per NATS→mesh message by a third
// (docs/PERFORMANCE.md).
const (
	maxBatchMsgs  = 256
	maxBatchBytes = 32 << 10
)

// announcer is a topic's announcements of claimed messages. The claim
// subscription's goroutine adds to it and sends what it holds when that
// subscription has nothing more pending (the end of a burst), when the
// batch is full, or at Close; the mutex is for Close.
type announcer struct {
	b       *Bridge
	sub     atomic.Pointer[nats.Subscription] // the claim subscription, set once it exists
	mu      sync.Mutex
	msg     nats.Msg // reused: nats.go copies it before PublishMsg returns
	h       headerScratch
	batchH  nats.Header // the header map of batches
	batchV  []string
	body    []byte
	pending []claimed
	size    int
}

type claimed struct {
	seq  uint64
	at   int64
	data []byte // nats.go's copy of the payload, not reused by it
}

func newAnnouncer(b *Bridge, subj string) *announcer {
	a := &announcer{b: b, msg: nats.Msg{Subject: AnnounceSubject(subj)}}
	a.h.init(false)
	a.h.idPrefix = b.plainIDText
	a.batchV = []string{""}
	a.batchH = nats.Header{HeaderBatch: a.batchV}
	return a
}

// add holds a claimed message for announcement; more reports whether the
// claim subscription has messages waiting (then the batch is sent later).
func (a *announcer) add(m *chaski.Message, more bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.pending) > 0 && a.size+len(m.Data) > maxBatchBytes {
		a.flushLocked()
	}
	a.pending = append(a.pending, claimed{m.ID.Seq, m.Time.UnixNano(), m.Data})
	a.size += len(m.Data)
	if !more || len(a.pending) >= maxBatchMsgs || a.size >= maxBatchBytes {
		a.flushLocked()
	}
}

// flush sends what is held (the end of a burst without a claim, Close).
func (a *announcer) flush() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.pending) > 0 {
		a.flushLocked()
	}
}

func (a *announcer) flushLocked() {
	if len(a.pending) == 1 {
		// One message: the plain announcement, as bridges always sent.
		c := a.pending[0]
		a.h.set("", c.seq, c.at, "")
		a.msg.Header, a.msg.Data = a.h.h, c.data
	} else {
		a.body = appendBatch(a.body[:0], a.pending)
		a.batchV[0] = a.b.plainIDText + strconv.Itoa(len(a.pending))
		a.msg.Header, a.msg.Data = a.batchH, a.body
	}
	err := a.b.nc.PublishMsg(&a.msg)
	for i := range a.pending {
		a.pending[i].data = nil
	}
	a.pending, a.size = a.pending[:0], 0
	if err != nil {
		a.b.mu.Lock()
		a.b.lastErr = "cannot announce claimed messages to other bridges: " + err.Error()
		a.b.mu.Unlock()
	}
}

// appendBatch encodes claimed messages: per message the sequence number's
// difference from the previous one's (from 0 for the first), the time's
// (signed, in nanoseconds, from 0 for the first), the payload's length,
// the payload; all varints.
func appendBatch(dst []byte, msgs []claimed) []byte {
	var seq uint64
	var at int64
	for _, c := range msgs {
		dst = binary.AppendUvarint(dst, c.seq-seq)
		dst = binary.AppendVarint(dst, c.at-at)
		dst = binary.AppendUvarint(dst, uint64(len(c.data)))
		dst = append(dst, c.data...)
		seq, at = c.seq, c.at
	}
	return dst
}

var errBadBatch = errors.New("natsbridge: malformed batch of announced messages")

// parseBatch decodes a batched announcement's header value and body,
// calling fn for every message (data aliases body). It stops at the first
// malformed entry; what came before it was already handed to fn.
func parseBatch(header string, body []byte, fn func(id wire.MessageID, at int64, data []byte)) error {
	i := strings.IndexByte(header, '/')
	if i < 0 {
		return errBadBatch
	}
	origin, err := uuid.Parse(header[:i])
	if err != nil {
		return errBadBatch
	}
	n, err := strconv.Atoi(header[i+1:])
	if err != nil || n < 1 {
		return errBadBatch
	}
	var seq uint64
	var at int64
	for k := 0; k < n; k++ {
		d, w := binary.Uvarint(body)
		if w <= 0 {
			return errBadBatch
		}
		body = body[w:]
		dt, w := binary.Varint(body)
		if w <= 0 {
			return errBadBatch
		}
		body = body[w:]
		size, w := binary.Uvarint(body)
		if w <= 0 || size > uint64(len(body)-w) {
			return errBadBatch
		}
		body = body[w:]
		seq += d
		at += dt
		if seq == 0 {
			return errBadBatch
		}
		fn(wire.MessageID{Origin: wire.NodeID(origin), Seq: seq}, at, body[:size:size])
		body = body[size:]
	}
	if len(body) != 0 {
		return errBadBatch
	}
	return nil
}

// fromBatch injects every message of a batched announcement.
func (b *Bridge) fromBatch(topic string, nm *nats.Msg) {
	err := parseBatch(nm.Header.Get(HeaderBatch), nm.Data, func(id wire.MessageID, at int64, data []byte) {
		b.inject(&chaski.Message{Topic: topic, Data: data, Via: "nats", From: "nats", Time: time.Unix(0, at), ID: id})
	})
	if err != nil {
		b.mu.Lock()
		b.lastErr = err.Error() + " on " + nm.Subject
		b.mu.Unlock()
	}
}
