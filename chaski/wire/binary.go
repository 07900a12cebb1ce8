package wire

import (
	"encoding/binary"
	"fmt"
)

// NodeID is a node's 16-byte random identity (a UUIDv4 in binary form).
type NodeID [16]byte

// MessageID names a published message uniquely: its origin and the origin's
// sequence number. Duplicate suppression and per-sender ordering both key on it.
type MessageID struct {
	Origin NodeID
	Seq    uint64
}

// Publish is the fixed binary body of a KindPublish frame. Data frames do not
// use msgpack: a relay must read the id and rewrite TTL and hop count at fixed
// offsets without decoding, and the payload is opaque bytes anyway.
//
//	0   16  origin node id
//	16   8  sequence number, u64 big endian
//	24   8  publication time, unix nanoseconds, i64 big endian
//	32   1  ttl (remaining hops)
//	33   1  hops travelled
//	34   1  origin name length N (≤ MaxNameLen)
//	35   N  origin name, UTF-8
//	35+N    payload (the rest of the body)
type Publish struct {
	ID      MessageID
	Time    int64
	TTL     uint8
	Hops    uint8
	Name    string
	Payload []byte
}

// PublishFixedLen is the length of the fixed part of a Publish body.
const PublishFixedLen = 35

// Offsets of the fields a relay rewrites in place.
const (
	PublishTTLOffset  = 32
	PublishHopsOffset = 33
)

// PublishBridged is the top bit of the hops byte: the message entered the
// mesh through a bridge to another system (chaski/natsbridge), which other
// bridges must not send back out. Relays keep the bit; hop counts (at most
// MaxTTL) use the low seven bits.
const PublishBridged = 0x80

// AppendPublishFrame appends a complete KindPublish frame (header, topic,
// body) in one allocation-free pass over b.
func AppendPublishFrame(b []byte, topic string, p *Publish) ([]byte, error) {
	if len(topic) > MaxTopicLen {
		return b, ErrTopicLength
	}
	if len(p.Name) > MaxNameLen {
		return b, fmt.Errorf("%w: name longer than %d bytes", ErrMalformed, MaxNameLen)
	}
	bodyLen := PublishFixedLen + len(p.Name) + len(p.Payload)
	if bodyLen > HardMaxBody {
		return b, ErrTooLarge
	}
	start := len(b)
	b = append(b, make([]byte, HeaderLen)...)
	PutHeader(b[start:], KindPublish, len(topic), bodyLen)
	b = append(b, topic...)
	b = append(b, p.ID.Origin[:]...)
	b = binary.BigEndian.AppendUint64(b, p.ID.Seq)
	b = binary.BigEndian.AppendUint64(b, uint64(p.Time))
	b = append(b, p.TTL, p.Hops, byte(len(p.Name)))
	b = append(b, p.Name...)
	return append(b, p.Payload...), nil
}

// ParsePublish decodes a Publish body. Payload aliases body.
func ParsePublish(body []byte) (Publish, error) { return ParsePublishReuse(body, "") }

// ParsePublishReuse is ParsePublish that returns name itself as the origin
// name when the body's name equals it, so that a receiver that passes the
// previous message's name allocates no string for a steady stream from one
// publisher.
func ParsePublishReuse(body []byte, name string) (Publish, error) {
	var p Publish
	if len(body) < PublishFixedLen {
		return p, fmt.Errorf("%w: publish body of %d bytes", ErrMalformed, len(body))
	}
	copy(p.ID.Origin[:], body[0:16])
	p.ID.Seq = binary.BigEndian.Uint64(body[16:24])
	p.Time = int64(binary.BigEndian.Uint64(body[24:32]))
	p.TTL = body[32]
	p.Hops = body[33]
	n := int(body[34])
	if n > MaxNameLen || len(body) < PublishFixedLen+n {
		return p, fmt.Errorf("%w: publish name length %d", ErrMalformed, n)
	}
	if nb := body[PublishFixedLen : PublishFixedLen+n]; string(nb) == name {
		p.Name = name
	} else {
		p.Name = string(nb)
	}
	p.Payload = body[PublishFixedLen+n:]
	return p, nil
}

// Ping is the binary body of KindPing and KindPong frames:
//
//	0  8  ping id, u64 big endian (chosen by the pinger)
//	8  1  flags: bit 0 = echo the padding in the pong
//	9     padding (any bytes; the original's ping "size")
//
// A pong carries the same id; its padding is the ping's padding when the echo
// flag was set, otherwise empty.
type Ping struct {
	ID      uint64
	Echo    bool
	Padding []byte
}

// PingFixedLen is the length of the fixed part of a Ping body.
const PingFixedLen = 9

// AppendPingFrame appends a whole ping or pong frame.
func AppendPingFrame(b []byte, kind Kind, p *Ping) []byte {
	bodyLen := PingFixedLen + len(p.Padding)
	start := len(b)
	b = append(b, make([]byte, HeaderLen)...)
	PutHeader(b[start:], kind, 0, bodyLen)
	b = binary.BigEndian.AppendUint64(b, p.ID)
	var flags byte
	if p.Echo {
		flags = 1
	}
	b = append(b, flags)
	return append(b, p.Padding...)
}

// ParsePing decodes a ping or pong body. Padding aliases body.
func ParsePing(body []byte) (Ping, error) {
	if len(body) < PingFixedLen {
		return Ping{}, fmt.Errorf("%w: ping body of %d bytes", ErrMalformed, len(body))
	}
	return Ping{
		ID:      binary.BigEndian.Uint64(body[:8]),
		Echo:    body[8]&1 != 0,
		Padding: body[PingFixedLen:],
	}, nil
}

// FileChunk is the binary body of KindFileChunk:
//
//	0  16  transfer id
//	16  8  offset of this chunk in the file, u64 big endian
//	24     data
type FileChunk struct {
	Transfer [16]byte
	Offset   uint64
	Data     []byte
}

// FileChunkFixedLen is the length of the fixed part of a FileChunk body.
const FileChunkFixedLen = 24

// AppendFileChunkFrame appends a whole file chunk frame.
func AppendFileChunkFrame(b []byte, c *FileChunk) ([]byte, error) {
	bodyLen := FileChunkFixedLen + len(c.Data)
	if bodyLen > HardMaxBody {
		return b, ErrTooLarge
	}
	start := len(b)
	b = append(b, make([]byte, HeaderLen)...)
	PutHeader(b[start:], KindFileChunk, 0, bodyLen)
	b = append(b, c.Transfer[:]...)
	b = binary.BigEndian.AppendUint64(b, c.Offset)
	return append(b, c.Data...), nil
}

// ParseFileChunk decodes a file chunk body. Data aliases body.
func ParseFileChunk(body []byte) (FileChunk, error) {
	var c FileChunk
	if len(body) < FileChunkFixedLen {
		return c, fmt.Errorf("%w: file chunk body of %d bytes", ErrMalformed, len(body))
	}
	copy(c.Transfer[:], body[:16])
	c.Offset = binary.BigEndian.Uint64(body[16:24])
	c.Data = body[FileChunkFixedLen:]
	return c, nil
}

// FileTree is the binary body of KindFileTree, the leaves of a verified
// stream (docs/PROTOCOL.md §9):
//
//	0  16  transfer id
//	16  8  index of the first leaf in this frame, u64 big endian
//	24     leaves: 32 bytes each (BLAKE3 chaining values of chunk groups)
type FileTree struct {
	Transfer [16]byte
	First    uint64
	Leaves   []byte
}

// FileTreeLeafLen is the size of one leaf.
const FileTreeLeafLen = 32

// AppendFileTreeFrame appends a whole file tree frame.
func AppendFileTreeFrame(b []byte, t *FileTree) ([]byte, error) {
	if len(t.Leaves)%FileTreeLeafLen != 0 {
		return b, fmt.Errorf("%w: %d leaf bytes", ErrMalformed, len(t.Leaves))
	}
	bodyLen := FileChunkFixedLen + len(t.Leaves)
	if bodyLen > HardMaxBody {
		return b, ErrTooLarge
	}
	start := len(b)
	b = append(b, make([]byte, HeaderLen)...)
	PutHeader(b[start:], KindFileTree, 0, bodyLen)
	b = append(b, t.Transfer[:]...)
	b = binary.BigEndian.AppendUint64(b, t.First)
	return append(b, t.Leaves...), nil
}

// ParseFileTree decodes a file tree body. Leaves aliases body.
func ParseFileTree(body []byte) (FileTree, error) {
	var t FileTree
	if len(body) < FileChunkFixedLen || (len(body)-FileChunkFixedLen)%FileTreeLeafLen != 0 {
		return t, fmt.Errorf("%w: file tree body of %d bytes", ErrMalformed, len(body))
	}
	copy(t.Transfer[:], body[:16])
	t.First = binary.BigEndian.Uint64(body[16:24])
	t.Leaves = body[FileChunkFixedLen:]
	return t, nil
}

// SeqMarkLen is the length of a SeqMark body: the sequence number (u64) of
// the first of the sender's own publishes that comes on this edge; every
// later one it publishes on a topic the receiver subscribes comes here too.
const SeqMarkLen = 8

// AppendSeqMarkFrame appends a complete SeqMark frame.
func AppendSeqMarkFrame(b []byte, next uint64) []byte {
	var h [HeaderLen]byte
	PutHeader(h[:], KindSeqMark, 0, SeqMarkLen)
	b = append(b, h[:]...)
	return binary.BigEndian.AppendUint64(b, next)
}

// ParseSeqMark decodes a SeqMark body.
func ParseSeqMark(body []byte) (uint64, error) {
	if len(body) != SeqMarkLen {
		return 0, fmt.Errorf("%w: seq mark of %d bytes", ErrMalformed, len(body))
	}
	return binary.BigEndian.Uint64(body), nil
}
