// Package wire is Chaski's wire format: the connection preamble, the frame
// header, the fixed binary layout of data frames and the msgpack bodies of
// control frames. It does no I/O beyond reading and writing whole frames and
// has no knowledge of nodes or edges, so that it can be fuzzed on its own and
// reimplemented from docs/PROTOCOL.md.
//
// Every length read from the network is checked against a hard cap before
// anything is allocated for it.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Version is the protocol version spoken by this implementation. It is sent
// in the preamble and again in the Hello body.
const Version = 1

// Magic opens every TCP connection (in both directions), followed by the
// version byte and three reserved zero bytes.
var Magic = [4]byte{'C', 'H', 'S', 'K'}

// PreambleLen is the length of the connection preamble.
const PreambleLen = 8

// HeaderLen is the length of the fixed frame header.
const HeaderLen = 8

// Limits. MaxTopicLen is implied by the one-byte topic length; it is named
// so that callers can validate before encoding.
const (
	MaxTopicLen = 255
	MaxNameLen  = 64
	// HardMaxBody is the largest body any Chaski peer may send; a node may be
	// configured with a lower limit but never a higher one.
	HardMaxBody = 16 << 20
	// DefaultMaxBody is the default limit on one frame body.
	DefaultMaxBody = 4 << 20
	// MaxSubscriptions bounds the subscription list of a Hello or Subs frame.
	MaxSubscriptions = 1024
	// MaxVisited bounds the visited list of a discovery request.
	MaxVisited = 256
	// MaxTTL is the largest TTL a node honours; larger values are clamped.
	MaxTTL = 64
	// MaxDepth bounds the nesting of msgpack values in control bodies.
	MaxDepth = 8
	// MaxAddrLen bounds a node address carried in a control body (a Hello's
	// listening address, the origin of a discovery or store request): an
	// IPv6 address with zone and port fits many times over.
	MaxAddrLen = 300
	// MaxHandshakeBody bounds a frame body read before the handshake has
	// completed (the preamble's Hello or Goodbye).
	MaxHandshakeBody = 64 << 10
	// MaxReasonLen is how much of a peer's goodbye reason a node keeps.
	MaxReasonLen = 200
)

// Kind is the frame type, the first header byte.
type Kind uint8

// Frame kinds. Values are part of the protocol: never renumber.
const (
	KindHello         Kind = 0x01 // msgpack Hello
	KindGoodbye       Kind = 0x02 // msgpack Goodbye: a deliberate close, do not reconnect
	KindPing          Kind = 0x03 // binary Ping
	KindPong          Kind = 0x04 // binary Ping, echoed
	KindSubs          Kind = 0x05 // msgpack Subs: the sender's subscriptions changed
	KindPublish       Kind = 0x10 // binary Publish; topic in the header
	KindSeqMark       Kind = 0x11 // binary SeqMark: from here on, the sender's own publishes come on this edge
	KindPublishSigned Kind = 0x12 // binary Publish with its origin's key and signature (sign.go)
	KindDiscover      Kind = 0x20 // msgpack Discover
	KindPaired        Kind = 0x21 // msgpack PairReport
	KindRequest       Kind = 0x30 // msgpack Request (generic named request over an edge)
	KindResponse      Kind = 0x31 // msgpack Response
	KindStoreReq      Kind = 0x38 // msgpack StoreRequest
	KindStoreResp     Kind = 0x39 // msgpack StoreResponse
	KindStoreTaken    Kind = 0x3A // msgpack StoreTaken: a moved value is stored, the holder may delete it
	KindFileOffer     Kind = 0x40 // msgpack FileOffer; topic in the header
	KindFileChunk     Kind = 0x41 // binary FileChunk
	KindFileEnd       Kind = 0x42 // msgpack FileEnd
	KindFileAck       Kind = 0x43 // msgpack FileAck (accept/resume offset, or final verdict)
	KindFileAbort     Kind = 0x44 // msgpack FileAbort (cancel from either side)
	KindFileTree      Kind = 0x45 // binary FileTree (leaves of a verified stream)
)

var kindNames = map[Kind]string{
	KindHello: "hello", KindGoodbye: "goodbye", KindPing: "ping", KindPong: "pong",
	KindSubs: "subs", KindPublish: "publish", KindSeqMark: "seq_mark", KindPublishSigned: "publish_signed", KindDiscover: "discover", KindPaired: "paired",
	KindRequest: "request", KindResponse: "response", KindStoreReq: "store_req",
	KindStoreResp: "store_resp", KindStoreTaken: "store_taken", KindFileOffer: "file_offer", KindFileChunk: "file_chunk",
	KindFileEnd: "file_end", KindFileAck: "file_ack", KindFileAbort: "file_abort",
	KindFileTree: "file_tree",
}

func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("kind(0x%02x)", uint8(k))
}

// Known reports whether k is a kind this implementation understands.
func (k Kind) Known() bool { _, ok := kindNames[k]; return ok }

// Errors returned by the decoders. A malformed frame closes only the
// connection that sent it.
var (
	ErrBadMagic    = errors.New("wire: not a chaski peer (bad preamble)")
	ErrVersion     = errors.New("wire: protocol version mismatch")
	ErrTooLarge    = errors.New("wire: frame body exceeds limit")
	ErrMalformed   = errors.New("wire: malformed frame")
	ErrTopicLength = errors.New("wire: topic too long")
)

// Header is the fixed 8-byte frame header:
//
//	0  kind      u8
//	1  flags     u8   (reserved, 0)
//	2  topicLen  u8
//	3  reserved  u8   (0)
//	4  bodyLen   u32  big endian
//
// followed by topicLen bytes of UTF-8 topic and bodyLen bytes of body.
type Header struct {
	Kind     Kind
	Flags    uint8
	TopicLen int
	BodyLen  int
}

// AppendPreamble appends the connection preamble.
func AppendPreamble(b []byte) []byte {
	return append(b, Magic[0], Magic[1], Magic[2], Magic[3], Version, 0, 0, 0)
}

// ParsePreamble checks a peer's preamble and returns its version. A version
// different from ours is reported with ErrVersion so that the caller can log
// both numbers.
func ParsePreamble(p []byte) (int, error) {
	if len(p) < PreambleLen || [4]byte(p[:4]) != Magic {
		return 0, ErrBadMagic
	}
	v := int(p[4])
	if v != Version {
		return v, fmt.Errorf("%w: peer speaks %d, we speak %d", ErrVersion, v, Version)
	}
	return v, nil
}

// PutHeader writes a header into b[:HeaderLen].
func PutHeader(b []byte, kind Kind, topicLen, bodyLen int) {
	b[0] = byte(kind)
	b[1] = 0
	b[2] = byte(topicLen)
	b[3] = 0
	binary.BigEndian.PutUint32(b[4:8], uint32(bodyLen))
}

// ParseHeader decodes a header and enforces maxBody (which must not exceed
// HardMaxBody) before any allocation happens.
func ParseHeader(b []byte, maxBody int) (Header, error) {
	if len(b) < HeaderLen {
		return Header{}, ErrMalformed
	}
	if maxBody <= 0 || maxBody > HardMaxBody {
		maxBody = HardMaxBody
	}
	h := Header{Kind: Kind(b[0]), Flags: b[1], TopicLen: int(b[2])}
	n := binary.BigEndian.Uint32(b[4:8])
	if uint64(n) > uint64(maxBody) {
		return h, fmt.Errorf("%w: %d bytes announced, limit %d", ErrTooLarge, n, maxBody)
	}
	h.BodyLen = int(n)
	return h, nil
}

// AppendFrame appends a whole frame with the given topic and body.
func AppendFrame(b []byte, kind Kind, topic string, body []byte) ([]byte, error) {
	if len(topic) > MaxTopicLen {
		return b, ErrTopicLength
	}
	if len(body) > HardMaxBody {
		return b, ErrTooLarge
	}
	var h [HeaderLen]byte
	PutHeader(h[:], kind, len(topic), len(body))
	b = append(b, h[:]...)
	b = append(b, topic...)
	return append(b, body...), nil
}

// Frame is one decoded frame. Body aliases the buffer it was read into;
// Topic is an ordinary string (see Reader.ReadFrame).
type Frame struct {
	Kind  Kind
	Topic string
	Body  []byte
}

// Reader reads frames from a stream with a body limit. It reads the
// stream straight into 64 KiB blocks and hands out bodies as slices of
// them: no copy between the socket and the caller for frames that fit in a
// block. A block is never written again where a body was cut from it (the
// unread tail of a frame moves to a fresh block), so the caller may keep
// Body for as long as it likes; a block is freed when nothing cut from it
// is referenced any more.
type Reader struct {
	src     io.Reader
	maxBody int
	buf     []byte // the current block; buf[r:w] is read and not consumed
	r, w    int
	last    string // the previous frame's topic, reused while it repeats
	alloc   func(kind Kind, n int) []byte
	// lean: the last frame had a body larger than a block. Its successor is
	// likely one too (a file's chunks), and whatever of that body a read
	// puts in the block must then be copied out, and uses the block up: so
	// the next read into an empty block takes at most leanRead bytes.
	lean bool
	// busy: the last read filled all the room it was given, so more was
	// waiting in the socket. The next fresh block is then bigBlockSize:
	// a stream of small frames costs a read system call and a block
	// allocation per block, and both shrink with a bigger one. An edge
	// that only trickles keeps 64 KiB blocks.
	busy bool
}

// SetLargeBodyAlloc makes the reader take bodies larger than a block from
// alloc (which must return n bytes), so that a caller can recycle them.
func (r *Reader) SetLargeBodyAlloc(alloc func(kind Kind, n int) []byte) { r.alloc = alloc }

const (
	blockSize = 64 << 10
	// bigBlockSize is the block a busy stream reads into (see Reader.busy).
	// Frames are still cut from blocks only up to blockSize.
	bigBlockSize = 256 << 10
	// minRead: when less than this is free at the end of a block, the
	// next read goes into a fresh block, so reads stay large.
	minRead = 4 << 10
	// leanRead holds a header, a topic and the start of a body.
	leanRead = 1 << 10
)

// NewReader reads frames from src; maxBody <= 0 means DefaultMaxBody.
func NewReader(src io.Reader, maxBody int) *Reader {
	if maxBody <= 0 {
		maxBody = DefaultMaxBody
	}
	if maxBody > HardMaxBody {
		maxBody = HardMaxBody
	}
	return &Reader{src: src, maxBody: maxBody}
}

// SetMaxBody changes the body limit (after a handshake read with a small one).
func (r *Reader) SetMaxBody(maxBody int) {
	if maxBody <= 0 {
		maxBody = DefaultMaxBody
	}
	r.maxBody = min(maxBody, HardMaxBody)
}

// SetSource makes later reads come from src: what is already buffered stays.
// Edges use it to read the socket in a cheaper way once the handshake is done.
func (r *Reader) SetSource(src io.Reader) { r.src = src }

// Buffered is the number of bytes read from the stream and not consumed.
func (r *Reader) Buffered() int { return r.w - r.r }

// fill reads until at least need (<= blockSize) bytes are buffered.
func (r *Reader) fill(need int) error {
	empty := 0
	for r.w-r.r < need {
		// A fresh block when the frame cannot fit in this one, or when
		// little room is left and little is pending (cheap to move).
		if len(r.buf)-r.r < need || (len(r.buf)-r.w < minRead && r.w-r.r < minRead) {
			size := blockSize
			if r.busy {
				size = bigBlockSize
			}
			nb := make([]byte, size)
			n := copy(nb, r.buf[r.r:r.w])
			r.buf, r.r, r.w = nb, 0, n
		}
		dst := r.buf[r.w:]
		if r.lean && r.w == r.r {
			dst = dst[:min(len(dst), leanRead)]
		}
		n, err := r.src.Read(dst)
		r.w += n
		r.busy = n == len(dst) && n >= minRead
		if r.w-r.r >= need {
			return nil
		}
		if err != nil {
			return err
		}
		if n == 0 {
			if empty++; empty >= 100 {
				return io.ErrNoProgress
			}
		}
	}
	return nil
}

// ReadRaw returns the next n (<= blockSize) bytes of the stream as they
// are (the preamble before the first frame).
func (r *Reader) ReadRaw(n int) ([]byte, error) {
	if n > blockSize {
		return nil, ErrTooLarge
	}
	if err := r.fill(n); err != nil {
		if r.w > r.r {
			err = unexpected(err)
		}
		return nil, err
	}
	b := r.buf[r.r : r.r+n : r.r+n]
	r.r += n
	return b, nil
}

// ReadFrame reads the next frame; its body is memory of its own that no
// later frame overwrites (the caller may keep references to Topic and
// Body). A topic equal to the previous frame's is returned as the same
// string, so a stream of messages on one topic allocates nothing per
// frame. io.EOF is returned only when the stream ends cleanly between
// frames.
func (r *Reader) ReadFrame() (Frame, error) {
	if err := r.fill(HeaderLen); err != nil {
		if r.w > r.r {
			err = unexpected(err)
		}
		return Frame{}, err
	}
	h, err := ParseHeader(r.buf[r.r:r.r+HeaderLen], r.maxBody)
	if err != nil {
		return Frame{}, err
	}
	head := HeaderLen + h.TopicLen
	if total := head + h.BodyLen; total <= blockSize {
		if err := r.fill(total); err != nil {
			return Frame{}, unexpected(err)
		}
		p := r.buf[r.r : r.r+total : r.r+total]
		r.r += total
		r.lean = false
		return Frame{Kind: h.Kind, Topic: r.topicString(p[HeaderLen:head]), Body: p[head:]}, nil
	}
	// A body larger than a block gets its own buffer, read into directly.
	if err := r.fill(head); err != nil {
		return Frame{}, unexpected(err)
	}
	topic := r.topicString(r.buf[r.r+HeaderLen : r.r+head])
	r.r += head
	var body []byte
	if r.alloc != nil {
		body = r.alloc(h.Kind, h.BodyLen)[:h.BodyLen]
	} else {
		body = make([]byte, h.BodyLen)
	}
	k := copy(body, r.buf[r.r:r.w])
	r.r += k
	if _, err := io.ReadFull(r.src, body[k:]); err != nil {
		return Frame{}, unexpected(err)
	}
	r.lean = true
	return Frame{Kind: h.Kind, Topic: topic, Body: body}, nil
}

// topicString returns tb as a string, the previous frame's when equal.
func (r *Reader) topicString(tb []byte) string {
	if len(tb) == 0 {
		return ""
	}
	if string(tb) != r.last {
		r.last = string(tb)
	}
	return r.last
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
