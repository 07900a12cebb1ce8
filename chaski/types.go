package chaski

import (
	"errors"
	"time"

	"github.com/chaski-dev/chaski/chaski/wire"
	"github.com/google/uuid"
)

// Sentinel errors. Callers test them with errors.Is; the wrapped text names
// the peer or address involved.
var (
	ErrClosed          = errors.New("chaski: node closed")
	ErrNoEdge          = errors.New("chaski: no such edge")
	ErrSelfConnect     = errors.New("chaski: cannot connect to self")
	ErrHandshake       = errors.New("chaski: handshake failed")
	ErrVersionMismatch = errors.New("chaski: protocol version mismatch")
	ErrTimeout         = errors.New("chaski: timeout")
	ErrNoSubscribers   = errors.New("chaski: no connected peer subscribes to the topic")
	ErrInvalidTopic    = errors.New("chaski: invalid topic")
	ErrTooLarge        = errors.New("chaski: payload too large")
	ErrNoHandler       = errors.New("chaski: no handler registered for request")
	ErrRemote          = errors.New("chaski: remote handler failed")
	ErrNotFound        = errors.New("chaski: not found")
	ErrRefused         = errors.New("chaski: refused by peer")
	ErrBusy            = errors.New("chaski: too many requests in progress")
	ErrNoStore         = errors.New("chaski: node has no store")
	ErrEdgeLost        = errors.New("chaski: edge lost")
	ErrUnknownCommand  = errors.New("chaski: unknown command")
	// ErrUnsigned: Inject refused a message that carries no valid
	// signature of its origin, on a node with Config.RequireSignatures.
	ErrUnsigned = errors.New("chaski: message not signed by its origin")
	// ErrStreamTerminated is returned by Next (and ends Stream) after
	// TerminateStream.
	ErrStreamTerminated = errors.New("chaski: stream terminated")
)

// EdgeState is the life-cycle state of a peer as shown to users.
type EdgeState uint8

// Edge states.
const (
	StateConnecting EdgeState = iota
	StateUp
	StateReconnecting
	StateClosed
)

func (s EdgeState) String() string {
	switch s {
	case StateConnecting:
		return "connecting"
	case StateUp:
		return "up"
	case StateReconnecting:
		return "reconnecting"
	default:
		return "closed"
	}
}

// EdgeInfo is a snapshot of one edge (a connection to a peer) or of a lost
// peer that the node is trying to reconnect to.
type EdgeInfo struct {
	PeerID        string    // the peer's node id (UUID text)
	Name          string    // the peer's name
	Address       string    // the peer's listening address, host:port
	Remote        string    // the socket's remote address
	Subscriptions []string  // the peer's subscriptions
	Root          bool      // the peer relays every topic
	AcceptsFiles  bool      // the peer accepts incoming files
	State         EdgeState // up or reconnecting
	Since         time.Time // when the edge came up (or was lost, when reconnecting)
	Dialed        bool      // this node opened the connection
	TLS           bool
	Attempt       int       // reconnection attempt, when reconnecting
	NextAttempt   time.Time // when the next reconnection attempt starts, when reconnecting
	LastError     string    // why the previous reconnection attempt failed, when reconnecting

	BytesIn, BytesOut uint64
	MsgsIn, MsgsOut   uint64
	// FramesIn and FramesOut count every frame read and queued or written
	// (messages, pings, control); QueueDrops counts frames dropped because
	// the edge's send queue was full (a flooded control lane, or a relay
	// past the data lane's hard limit, which also drops the edge).
	FramesIn, FramesOut uint64
	QueueDrops          uint64
	Latency             LatencyStats
}

// Subscribes reports whether the peer subscribes to topic (root peers
// receive every topic).
func (e EdgeInfo) Subscribes(topic string) bool {
	if e.Root {
		return true
	}
	for _, s := range e.Subscriptions {
		if s == topic {
			return true
		}
	}
	return false
}

// Message is a message received on a subscribed topic.
type Message struct {
	Topic  string
	Data   []byte
	From   string    // the publisher's name
	FromID string    // the publisher's node id
	Seq    uint64    // the publisher's sequence number
	Time   time.Time // publication time (publisher's clock)
	Hops   int       // edges travelled
	Via    string    // name of the neighbour that delivered it
	ID     wire.MessageID
	// Bridged: the message entered the mesh through a bridge to another
	// system (see Node.Inject).
	Bridged bool
	// Signed: the publish carried its origin's signature and it verified,
	// so From, FromID, Seq, Time, Topic and Data are as the node with id
	// FromID published them (Config.SignPublishes; docs/SECURITY.md). From
	// is still only the name that node chose for itself.
	Signed bool
	// Signature is the origin's public key and signature (96 bytes,
	// wire.SigBlockLen) of a signed message, so that a bridge can carry
	// the proof beyond the mesh (natsbridge's Chaski-Sig header), and
	// Node.Inject checks and forwards it. Nil for unsigned messages.
	Signature []byte
}

// Status is the node's state as reported by Status() and over UDP.
type Status struct {
	ID            string          `json:"id"`
	Name          string          `json:"name"`
	Address       string          `json:"address"`
	Root          bool            `json:"root"`
	Subscriptions []string        `json:"subscriptions"`
	Paired        map[string]bool `json:"paired"`
	// PairedOmitted: a status read over UDP from a node with more
	// subscriptions than a datagram holds comes without its pairing map.
	PairedOmitted bool      `json:"paired_omitted,omitempty"`
	Serving       bool      `json:"serving"`
	Reconnecting  bool      `json:"reconnecting"`
	Edges         int       `json:"edges"`
	TLS           bool      `json:"tls"`
	Started       time.Time `json:"started"`
	MsgsIn        uint64    `json:"msgs_in"`
	MsgsOut       uint64    `json:"msgs_out"`
	BytesIn       uint64    `json:"bytes_in"`
	BytesOut      uint64    `json:"bytes_out"`
	Dropped       uint64    `json:"dropped_events"`
	Unknown       uint64    `json:"unknown_frames"`
	// LateDropped counts messages dropped for arriving more than the
	// duplicate filter's window (262,144 of their origin's messages) behind
	// a copy on another path: mostly late duplicates, but a first copy that
	// late is lost. Non-zero only under heavy, sustained overload.
	LateDropped uint64 `json:"late_dropped"`
	// Signing: the node signs its publishes (Config.SignPublishes);
	// RequireSignatures: it drops unsigned ones, counted in Unsigned.
	// BadSignatures counts signed publishes that did not verify.
	Signing           bool   `json:"signing,omitempty"`
	RequireSignatures bool   `json:"require_signatures,omitempty"`
	Unsigned          uint64 `json:"unsigned_dropped,omitempty"`
	BadSignatures     uint64 `json:"bad_signatures,omitempty"`
	// AcceptsFiles tells whether file offers may be accepted (the
	// original's allow_incoming_files in its status).
	AcceptsFiles bool `json:"accepts_files"`
	// Extra holds the application's fields (Config.StatusFields; the
	// original's _get_status(**kwargs)).
	Extra map[string]string `json:"extra,omitempty"`
}

// AllPaired reports whether the node is paired for every subscription (the
// original shows this as a '*' before the node's address).
func (s Status) AllPaired() bool {
	if s.PairedOmitted {
		return false // not known: never claimed
	}
	for _, p := range s.Paired {
		if !p {
			return false
		}
	}
	return true
}

func idString(id wire.NodeID) string { return uuid.UUID(id).String() }

// TransferState is the state of a file transfer.
type TransferState uint8

// Transfer states.
const (
	TransferOffered   TransferState = iota // waiting for the receiver's answer
	TransferActive                         // bytes are moving
	TransferVerifying                      // all bytes moved; hash being checked
	TransferDone                           // receiver confirmed size and SHA-256
	TransferFailed                         // see Err
	TransferCancelled                      // cancelled by either side
	TransferPending                        // incoming, waiting for the user to accept
)

func (s TransferState) String() string {
	return [...]string{"offered", "active", "verifying", "done", "failed", "cancelled", "pending"}[s]
}

// Finished reports whether the transfer has ended, successfully or not.
func (s TransferState) Finished() bool {
	return s == TransferDone || s == TransferFailed || s == TransferCancelled
}

// TransferInfo is a snapshot of one file transfer, in either direction.
type TransferInfo struct {
	ID       string
	Name     string // the file's base name
	Topic    string
	Peer     string // the other side's name
	PeerID   string
	Outgoing bool
	Size     int64 // total bytes; -1 when unknown
	Done     int64 // bytes transferred (including a resumed prefix)
	Resumed  int64 // bytes the receiver already held when the transfer started
	Rate     float64
	ETA      time.Duration
	State    TransferState
	SHA256   string // hex, once known, when the transfer is verified with SHA-256
	HashAlgo string // HashBLAKE3 or HashSHA256: what verifies the transfer
	Hash     string // "blake3:HEX" or "sha256:HEX", once known
	Path     string // where the file was written (incoming)
	Err      string
	Meta     map[string]string
	Started  time.Time // when the offer was made
	// FirstByte is when data started to move (the offer was accepted): rate
	// and ETA count from here, not from the offer, which may wait for a
	// person to answer.
	FirstByte time.Time
	Ended     time.Time
}

// OnPair is what discovery does once a topic is paired.
type OnPair string

// OnPair values (the original's on_pair argument).
const (
	OnPairNone       OnPair = "none"
	OnPairDisconnect OnPair = "disconnect" // drop the entry edge unless it shares a subscription
)

// DiscoverOptions tunes Discover.
type DiscoverOptions struct {
	Topics  []string      // default: every unpaired subscription
	OnPair  OnPair        // default OnPairNone
	Timeout time.Duration // per topic; default Config.DiscoverTimeout
	// Via starts the discovery through one edge only (a peer id, name or
	// address: the original's discovery(node=…)) instead of every edge;
	// nodes further on relay it as usual.
	Via string
}

// FileReceived describes a verified incoming file (the original's
// file_handling_callback arguments, plus sender and path).
type FileReceived struct {
	TransferID string
	Topic      string
	Name       string // the base name the sender gave
	Path       string // absolute path of the written file
	Size       int64
	SHA256     string // hex, when the transfer was verified with SHA-256
	HashAlgo   string // HashBLAKE3 or HashSHA256
	Hash       string // "blake3:HEX" or "sha256:HEX"
	From       string // sender's name
	FromID     string
	Meta       map[string]string
}

// StoreEntry is one key of the local store, for inspectors.
type StoreEntry struct {
	Key     string
	Value   []byte
	Size    int
	Updated time.Time
	Expires time.Time // zero: never
	// From and FromID name the peer a fetch got the value from; both are
	// empty for a value written on this node.
	From, FromID string
}
