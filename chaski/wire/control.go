package wire

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"
)

// Control bodies are msgpack maps with short string keys. Unknown keys are
// ignored so that later versions can add fields; missing keys take Go zero
// values. Every body is first checked by CheckMsgpack, which walks it without
// recursion and rejects nesting deeper than MaxDepth, container counts larger
// than the bytes that remain, and trailing garbage, so the decoder never
// recurses deeply or pre-allocates for a lie.

// Hello is exchanged by both sides right after the preamble.
type Hello struct {
	Version     int      `msgpack:"v"`
	ID          []byte   `msgpack:"id"`     // 16 bytes
	Name        string   `msgpack:"name"`   // ≤ MaxNameLen
	Listen      string   `msgpack:"listen"` // the sender's listening address, host:port
	Subs        []string `msgpack:"subs"`
	Root        bool     `msgpack:"root"`
	AcceptFiles bool     `msgpack:"files"`
	// Pairing is set when this connection is a discovery pairing: the topic
	// the dialer pairs for and the discovery request it answers.
	PairTopic   string `msgpack:"pair_topic,omitempty"`
	PairRequest []byte `msgpack:"pair_req,omitempty"`
	// Resume is the sender's stable identity for resuming file transfers
	// (16 bytes, kept across restarts; the node id changes every run).
	Resume []byte `msgpack:"resume,omitempty"`
	// Signed: the sender understands KindPublishSigned frames (whether or
	// not it signs its own). A peer without it is sent signed publishes
	// with the signature block cut out, as plain KindPublish frames.
	Signed bool `msgpack:"signed,omitempty"`
}

// Goodbye announces a deliberate close; the receiver must not reconnect.
type Goodbye struct {
	Reason string `msgpack:"reason"`
}

// Subs replaces the sender's subscription set as known to the receiver.
type Subs struct {
	Subs []string `msgpack:"subs"`
	Root bool     `msgpack:"root"`
}

// Discover asks the network for a node already paired for Topic.
type Discover struct {
	Request    []byte   `msgpack:"req"`    // 16-byte request id
	Origin     []byte   `msgpack:"origin"` // origin node id
	OriginName string   `msgpack:"origin_name"`
	OriginAddr string   `msgpack:"origin_addr"` // where a pairing node dials
	Topic      string   `msgpack:"topic"`
	TTL        int      `msgpack:"ttl"`
	Visited    [][]byte `msgpack:"visited"` // node ids, ≤ MaxVisited
	OnPair     string   `msgpack:"on_pair"` // "none" or "disconnect"
	// Any asks every subscriber of the topic to answer, paired or not (the
	// second half of a discovery that no paired node answered).
	Any bool `msgpack:"any,omitempty"`
}

// PairReport tells the origin of a discovery that the sender paired with it
// on this edge for Topic (used when the edge already existed).
type PairReport struct {
	Request []byte `msgpack:"req"`
	Topic   string `msgpack:"topic"`
}

// Request is a named request to a handler the receiving application
// registered explicitly.
type Request struct {
	ID   uint64 `msgpack:"id"`
	Name string `msgpack:"name"`
	Data []byte `msgpack:"data"`
}

// Response answers a Request with the same ID.
type Response struct {
	ID    uint64 `msgpack:"id"`
	Data  []byte `msgpack:"data"`
	Error string `msgpack:"error,omitempty"`
}

// StoreRequest asks the network for a key. It travels like a discovery
// request; a holder answers the origin directly over an edge.
type StoreRequest struct {
	Request    []byte   `msgpack:"req"`
	Origin     []byte   `msgpack:"origin"`
	OriginAddr string   `msgpack:"origin_addr"`
	Key        string   `msgpack:"key"`
	TTL        int      `msgpack:"ttl"`
	Visited    [][]byte `msgpack:"visited"`
	// Move asks a holder to give the value up once the requester has it
	// (the original's fetch popped it); a holder may refuse.
	Move bool `msgpack:"move,omitempty"`
}

// StoreResponse carries the value of a key to the requester.
type StoreResponse struct {
	Request []byte `msgpack:"req"`
	Key     string `msgpack:"key"`
	Found   bool   `msgpack:"found"`
	Value   []byte `msgpack:"value"`
	Expires int64  `msgpack:"expires"` // unix nanoseconds, 0 = never
	// Move: the holder agreed to a move and deletes its copy when the
	// requester answers with StoreTaken.
	Move bool `msgpack:"move,omitempty"`
}

// StoreTaken tells the holder of a moved value that the requester has
// stored it, so the holder may delete its copy.
type StoreTaken struct {
	Request []byte `msgpack:"req"`
	Key     string `msgpack:"key"`
}

// FileOffer opens a transfer; the topic is in the frame header.
type FileOffer struct {
	Transfer []byte            `msgpack:"id"`
	Name     string            `msgpack:"name"`
	Size     int64             `msgpack:"size"` // -1 when unknown
	Meta     map[string]string `msgpack:"meta"`
	// Hash is the algorithm that verifies the transfer: "blake3" or
	// "sha256" (empty: "sha256", the protocol before verified streaming).
	Hash string `msgpack:"hash,omitempty"`
	// Root is the BLAKE3 hash of the whole file when the sender knows it up
	// front (verified streaming: a FileTree follows the accept, and every
	// chunk is checked on arrival); Group is then the size of a chunk group
	// in bytes (a power of two, 1 KiB to 16 MiB).
	Root  []byte `msgpack:"root,omitempty"`
	Group int64  `msgpack:"group,omitempty"`
}

// FileAck is the receiver's answer: first to an offer (accept, with the
// offset to resume from), finally to the end frame (verified or not).
type FileAck struct {
	Transfer []byte `msgpack:"id"`
	Accept   bool   `msgpack:"accept"`
	Offset   int64  `msgpack:"offset"`
	Final    bool   `msgpack:"final"`
	OK       bool   `msgpack:"ok"`
	SHA256   []byte `msgpack:"sha256"`
	Reason   string `msgpack:"reason,omitempty"`
	Path     string `msgpack:"path,omitempty"`
	Hash     []byte `msgpack:"hash,omitempty"` // final: the BLAKE3 hash held, with hash "blake3"
}

// FileEnd closes the data of a transfer with its total size and hash.
type FileEnd struct {
	Transfer []byte `msgpack:"id"`
	Size     int64  `msgpack:"size"`
	SHA256   []byte `msgpack:"sha256"`         // with hash "sha256"
	Hash     []byte `msgpack:"hash,omitempty"` // with hash "blake3": the BLAKE3 hash of the file
}

// FileAbort cancels a transfer from either side.
type FileAbort struct {
	Transfer []byte `msgpack:"id"`
	Reason   string `msgpack:"reason"`
}

// Marshal encodes a control body.
func Marshal(v any) ([]byte, error) { return msgpack.Marshal(v) }

// AppendControlFrame appends a whole control frame with a msgpack body.
func AppendControlFrame(b []byte, kind Kind, topic string, v any) ([]byte, error) {
	body, err := msgpack.Marshal(v)
	if err != nil {
		return b, err
	}
	return AppendFrame(b, kind, topic, body)
}

// Unmarshal checks and decodes a control body into v.
func Unmarshal(body []byte, v any) error {
	if err := CheckMsgpack(body, MaxDepth); err != nil {
		return err
	}
	if err := msgpack.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return nil
}

// ValidID reports whether b is a 16-byte id.
func ValidID(b []byte) bool { return len(b) == 16 }

// ValidName reports whether s is an acceptable node name or topic: non-empty,
// valid UTF-8, no control characters, at most max bytes.
func ValidName(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	// Every relayed and delivered publish checks its topic here, and topics
	// are nearly always ASCII: one pass over the bytes settles those, and
	// only a name with a byte >= 0x80 pays for UTF-8 decoding.
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f {
			return false
		}
		if c >= utf8.RuneSelf {
			return validNameUTF8(s[i:])
		}
	}
	return true
}

// validNameUTF8 is ValidName's rule for the rest of a name from its first
// non-ASCII byte on: valid UTF-8 and no control character.
func validNameUTF8(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// CheckMsgpack validates that b holds exactly one msgpack value whose
// nesting is at most maxDepth and whose every declared length fits in the
// bytes that remain. It never recurses and never allocates.
func CheckMsgpack(b []byte, maxDepth int) error {
	// pending[i] counts the values still expected at depth i.
	var pending [MaxDepth + 2]int
	if maxDepth > MaxDepth {
		maxDepth = MaxDepth
	}
	depth := 0
	pending[0] = 1
	i := 0
	bad := func(what string) error { return fmt.Errorf("%w: msgpack %s at byte %d", ErrMalformed, what, i) }
	need := func(n uint64) error {
		if n > uint64(len(b)-i) {
			return bad("length beyond end")
		}
		return nil
	}
	for {
		for depth > 0 && pending[depth] == 0 {
			depth--
		}
		if pending[depth] == 0 {
			break
		}
		pending[depth]--
		if i >= len(b) {
			return bad("truncated value")
		}
		c := b[i]
		i++
		var skip uint64 // bytes of payload to skip
		var children uint64
		switch {
		case c <= 0x7f, c >= 0xe0, c == 0xc0, c == 0xc2, c == 0xc3:
		case c >= 0x80 && c <= 0x8f:
			children = uint64(c&0x0f) * 2
		case c >= 0x90 && c <= 0x9f:
			children = uint64(c & 0x0f)
		case c >= 0xa0 && c <= 0xbf:
			skip = uint64(c & 0x1f)
		default:
			var n uint64
			var lenBytes int
			switch c {
			case 0xcc, 0xd0:
				skip = 1
			case 0xcd, 0xd1:
				skip = 2
			case 0xca, 0xce, 0xd2:
				skip = 4
			case 0xcb, 0xcf, 0xd3:
				skip = 8
			case 0xd4:
				skip = 2
			case 0xd5:
				skip = 3
			case 0xd6:
				skip = 5
			case 0xd7:
				skip = 9
			case 0xd8:
				skip = 17
			case 0xc4, 0xd9, 0xc7:
				lenBytes = 1
			case 0xc5, 0xda, 0xc8, 0xdc, 0xde:
				lenBytes = 2
			case 0xc6, 0xdb, 0xc9, 0xdd, 0xdf:
				lenBytes = 4
			default:
				return bad(fmt.Sprintf("invalid type byte 0x%02x", c))
			}
			if lenBytes > 0 {
				if err := need(uint64(lenBytes)); err != nil {
					return err
				}
				switch lenBytes {
				case 1:
					n = uint64(b[i])
				case 2:
					n = uint64(binary.BigEndian.Uint16(b[i:]))
				case 4:
					n = uint64(binary.BigEndian.Uint32(b[i:]))
				}
				i += lenBytes
				switch c {
				case 0xdc, 0xdd:
					children = n
				case 0xde, 0xdf:
					children = n * 2
				case 0xc7, 0xc8, 0xc9:
					skip = n + 1 // ext type byte + data
				default:
					skip = n
				}
			}
		}
		if skip > 0 {
			if err := need(skip); err != nil {
				return err
			}
			i += int(skip)
		}
		if children > 0 {
			// Every child takes at least one byte.
			if err := need(children); err != nil {
				return err
			}
			if depth+1 > maxDepth {
				return bad("nesting too deep")
			}
			depth++
			pending[depth] = int(children)
		}
	}
	if i != len(b) {
		return bad("trailing bytes")
	}
	return nil
}
