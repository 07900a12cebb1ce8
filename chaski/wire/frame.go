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
	"bufio"
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
)

// Kind is the frame type, the first header byte.
type Kind uint8

// Frame kinds. Values are part of the protocol: never renumber.
const (
	KindHello     Kind = 0x01 // msgpack Hello
	KindGoodbye   Kind = 0x02 // msgpack Goodbye: a deliberate close, do not reconnect
	KindPing      Kind = 0x03 // binary Ping
	KindPong      Kind = 0x04 // binary Ping, echoed
	KindSubs      Kind = 0x05 // msgpack Subs: the sender's subscriptions changed
	KindPublish   Kind = 0x10 // binary Publish; topic in the header
	KindDiscover  Kind = 0x20 // msgpack Discover
	KindPaired    Kind = 0x21 // msgpack PairReport
	KindRequest   Kind = 0x30 // msgpack Request (generic named request over an edge)
	KindResponse  Kind = 0x31 // msgpack Response
	KindStoreReq  Kind = 0x38 // msgpack StoreRequest
	KindStoreResp Kind = 0x39 // msgpack StoreResponse
	KindFileOffer Kind = 0x40 // msgpack FileOffer; topic in the header
	KindFileChunk Kind = 0x41 // binary FileChunk
	KindFileEnd   Kind = 0x42 // msgpack FileEnd
	KindFileAck   Kind = 0x43 // msgpack FileAck (accept/resume offset, or final verdict)
	KindFileAbort Kind = 0x44 // msgpack FileAbort (cancel from either side)
)

var kindNames = map[Kind]string{
	KindHello: "hello", KindGoodbye: "goodbye", KindPing: "ping", KindPong: "pong",
	KindSubs: "subs", KindPublish: "publish", KindDiscover: "discover", KindPaired: "paired",
	KindRequest: "request", KindResponse: "response", KindStoreReq: "store_req",
	KindStoreResp: "store_resp", KindFileOffer: "file_offer", KindFileChunk: "file_chunk",
	KindFileEnd: "file_end", KindFileAck: "file_ack", KindFileAbort: "file_abort",
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

// Reader reads frames from a buffered stream with a body limit.
type Reader struct {
	br      *bufio.Reader
	maxBody int
	hdr     [HeaderLen]byte
	topic   [MaxTopicLen]byte
	last    string // the previous frame's topic, reused while it repeats
	slab    []byte // the unused rest of the current block for small bodies
}

// Small bodies are carved from shared blocks instead of one allocation
// each: a stream of 100-byte messages then costs one allocation per ~600
// frames. Each body is capped at its own length, so appending to one never
// writes into the next; a block is freed when no body cut from it is
// referenced any more.
const (
	slabSize    = 64 << 10
	slabMaxBody = 4 << 10
)

func (r *Reader) body(n int) []byte {
	if n > slabMaxBody {
		return make([]byte, n)
	}
	if len(r.slab) < n {
		r.slab = make([]byte, slabSize)
	}
	b := r.slab[:n:n]
	r.slab = r.slab[n:]
	return b
}

// NewReader wraps r; maxBody <= 0 means DefaultMaxBody.
func NewReader(r *bufio.Reader, maxBody int) *Reader {
	if maxBody <= 0 {
		maxBody = DefaultMaxBody
	}
	if maxBody > HardMaxBody {
		maxBody = HardMaxBody
	}
	return &Reader{br: r, maxBody: maxBody}
}

// ReadFrame reads the next frame; its body is memory of its own that no
// later frame overwrites (the caller may keep references to Topic and Body). A topic equal to the
// previous frame's is returned as the same string, so a stream of messages
// on one topic allocates only their bodies. io.EOF is returned only when
// the stream ends cleanly between frames.
func (r *Reader) ReadFrame() (Frame, error) {
	if _, err := io.ReadFull(r.br, r.hdr[:]); err != nil {
		return Frame{}, err
	}
	h, err := ParseHeader(r.hdr[:], r.maxBody)
	if err != nil {
		return Frame{}, err
	}
	topic := ""
	if h.TopicLen > 0 {
		tb := r.topic[:h.TopicLen]
		if _, err := io.ReadFull(r.br, tb); err != nil {
			return Frame{}, unexpected(err)
		}
		if string(tb) != r.last {
			r.last = string(tb)
		}
		topic = r.last
	}
	buf := r.body(h.BodyLen)
	if _, err := io.ReadFull(r.br, buf); err != nil {
		return Frame{}, unexpected(err)
	}
	return Frame{Kind: h.Kind, Topic: topic, Body: buf}, nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
