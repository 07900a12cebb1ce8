package wire

import "fmt"

// UDP datagrams share the node's port. Each is self-contained:
//
//	0  4  magic "CHSU"
//	4  1  version
//	5  1  datagram kind
//	6     msgpack body
//
// A datagram never exceeds MaxDatagram bytes; larger ones are dropped unread.

// MaxDatagram caps every UDP datagram Chaski sends or accepts.
const MaxDatagram = 8 << 10

// UDPMagic opens every datagram.
var UDPMagic = [4]byte{'C', 'H', 'S', 'U'}

// UDPKind is the datagram type.
type UDPKind uint8

// Datagram kinds.
const (
	UDPStatusRequest  UDPKind = 1 // body: StatusRequest
	UDPStatusResponse UDPKind = 2 // body: Status
	UDPRequest        UDPKind = 3 // body: Request
	UDPResponse       UDPKind = 4 // body: Response
)

// StatusRequest asks a node for its public status.
//
// A status answer is never more than StatusAmplification times the size of
// the request unless the request carries the cookie the node handed out to
// its source address: clients pad their first request (Pad) and, when the
// answer does not fit, get a short answer with Retry and Cookie set, and ask
// again with the cookie. A spoofed source never sees the cookie, so it cannot
// make the node send more than a few times what it sent.
type StatusRequest struct {
	ID     uint64 `msgpack:"id"`
	Cookie []byte `msgpack:"cookie,omitempty"`
	Pad    []byte `msgpack:"pad,omitempty"`
}

// StatusAmplification bounds an unproven status answer relative to its
// request; StatusRequestPad is how far clients pad a first request.
const (
	StatusAmplification = 3
	StatusRequestPad    = 400
)

// Status is a node's answer to a StatusRequest.
type Status struct {
	ID           uint64          `msgpack:"id"`
	Name         string          `msgpack:"name"`
	Address      string          `msgpack:"address"`
	Paired       map[string]bool `msgpack:"paired"`
	Serving      bool            `msgpack:"serving"`
	Reconnecting bool            `msgpack:"reconnecting"`
	Edges        int             `msgpack:"edges"`
	Root         bool            `msgpack:"root"`
	TLS          bool            `msgpack:"tls"`
	Version      int             `msgpack:"version"`
	AcceptFiles  bool            `msgpack:"accept_files"`
	// Extra carries the application's status fields: at most
	// MaxStatusFields, names of 1–MaxNameLen bytes, values of at most
	// MaxStatusValueLen bytes.
	Extra map[string]string `msgpack:"extra,omitempty"`
	// PairedOmitted: the pairing map did not fit in a datagram and was
	// left out (an empty Paired then says nothing about pairing).
	PairedOmitted bool `msgpack:"paired_omitted,omitempty"`
	// Retry: the full answer needs a proven source; ask again with Cookie.
	Retry  bool   `msgpack:"retry,omitempty"`
	Cookie []byte `msgpack:"cookie,omitempty"`
}

// Limits of a status's application fields.
const (
	MaxStatusFields   = 32
	MaxStatusValueLen = 256
)

// AppendDatagram appends a datagram header and msgpack body.
func AppendDatagram(b []byte, kind UDPKind, v any) ([]byte, error) {
	body, err := Marshal(v)
	if err != nil {
		return b, err
	}
	b = append(b, UDPMagic[0], UDPMagic[1], UDPMagic[2], UDPMagic[3], Version, byte(kind))
	b = append(b, body...)
	if len(b) > MaxDatagram {
		return b, fmt.Errorf("%w: datagram of %d bytes", ErrTooLarge, len(b))
	}
	return b, nil
}

// ParseDatagram checks a datagram's header and returns its kind and body.
func ParseDatagram(d []byte) (UDPKind, []byte, error) {
	if len(d) < 6 || [4]byte(d[:4]) != UDPMagic {
		return 0, nil, ErrBadMagic
	}
	if d[4] != Version {
		return 0, nil, fmt.Errorf("%w: datagram version %d", ErrVersion, d[4])
	}
	if len(d) > MaxDatagram {
		return 0, nil, ErrTooLarge
	}
	return UDPKind(d[5]), d[6:], nil
}
