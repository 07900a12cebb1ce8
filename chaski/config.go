package chaski

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/chaski-dev/chaski/chaski/store"
	"github.com/chaski-dev/chaski/chaski/wire"
)

// Config configures a node. The zero value of every field means "the
// default", so a Config{} is a valid loopback node on a free port.
type Config struct {
	// Name is shown to peers; default "<hostname>-<4 hex digits>".
	Name string
	// Listen is the TCP and UDP address ("127.0.0.1:0", "[::1]:0",
	// "0.0.0.0:8511"). Port 0 picks a free port (trying PreferredPorts
	// first); default "127.0.0.1:0".
	Listen string
	// PreferredPorts are tried in order when Listen has port 0 (the original's
	// favourite ports are FavoritePorts).
	PreferredPorts []int
	// Subscriptions are the topics this node receives.
	Subscriptions []string
	// Root makes the node receive and relay every topic. A root node is
	// paired for everything and never pairs in discovery.
	Root bool
	// DeliverAll delivers every message the node sees to Messages, not only
	// those of its subscriptions (for a root's "all topics" view). Off by
	// default, so a headless root never grows a queue nobody drains.
	DeliverAll bool
	// Paired marks the node as paired for all its subscriptions at start
	// (the original's paired=True).
	Paired bool

	// TTL is the hop limit of messages and discovery requests (default 64).
	TTL int
	// PingInterval is the keep-alive and latency period per edge (default
	// 7s); each period is spread by a random factor in [1, 1+PingSpread).
	PingInterval time.Duration
	PingSpread   float64 // default 0.5
	// MaxMissedPongs consecutive unanswered pings, with nothing else heard
	// from the peer meanwhile, drop the edge (default 3).
	MaxMissedPongs int

	HandshakeTimeout time.Duration // default 5s
	DialTimeout      time.Duration // default 5s
	// WriteTimeout drops an edge whose peer accepts no bytes for this long
	// and sends none either (a peer that stopped reading). Default 30s.
	WriteTimeout time.Duration
	// MaxWriteStall drops an edge whose peer accepts no bytes for this long
	// although it still sends: a slow consumer's progress shows only in
	// steps of up to a sixteenth of its receive buffer (megabytes), so it
	// gets this much longer. Default 10 × WriteTimeout.
	MaxWriteStall time.Duration
	// ReconnectAttempts bounds reconnection after an unexpected loss
	// (default 8; negative disables reconnection).
	ReconnectAttempts int
	ReconnectBase     time.Duration // first back-off, default 500ms
	ReconnectMax      time.Duration // back-off ceiling, default 30s

	MaxFrameBody   int // default wire.DefaultMaxBody, at most wire.HardMaxBody
	SendQueueBytes int // per-edge data queue bound, default 8 MiB
	MessageBuffer  int // subscriber queue length, default 4096
	// DedupOrigins bounds the origins the duplicate filter tracks (default
	// 1024; each remembers its last 262,144 sequence numbers in 32 KiB,
	// enough for a copy delayed behind full queues on another path) and DedupAge
	// forgets an origin silent for that long (default 2m).
	DedupOrigins int
	DedupAge     time.Duration
	// MaxEdges limits live edges plus handshakes in progress (default 256).
	MaxEdges int
	// MaxEdgesPerSource limits the edges plus handshakes in progress from
	// one source address (an IPv6 /64 counts as one), so that one host
	// cannot take every slot (default 64, at most MaxEdges).
	MaxEdgesPerSource int
	// EvictQuiet: when the node is at MaxEdges, a newcomer that completes
	// its handshake takes the slot of an accepted edge that carried nothing
	// but keep-alive, either way, for this long (default 60s; negative:
	// never evict, refuse the newcomer).
	EvictQuiet time.Duration
	// ResumeID (16 bytes) names this node's outgoing files across restarts,
	// so that a receiver resumes a transfer a crash interrupted; keep it in
	// the data directory (chaski's commands do). Nil: the node id, which
	// changes every run, and receivers keep such partials for an hour only.
	ResumeID []byte
	// MaxConnections is the original's per-subscription limit used by
	// discovery (default 5).
	MaxConnections int
	// DiscoverTimeout is how long discovery waits per topic (default 10s).
	DiscoverTimeout time.Duration
	// RequestTimeout bounds named requests without a deadline (default 10s).
	RequestTimeout        time.Duration
	MaxConcurrentRequests int // handler goroutines in flight, default 64

	// SignPublishes signs every message this node publishes (Ed25519, a new
	// key every run; the node id is then derived from the key, see
	// docs/SECURITY.md "Who published a message"), so that receivers can
	// tell that a message naming this node as its origin really is from
	// it. It costs the publisher about 35 µs per message and each receiver
	// about 90 µs (one core each): opt-in, for meshes that carry a few
	// thousand messages a second or fewer.
	SignPublishes bool
	// RequireSignatures drops every publish that is not signed by its
	// origin (counted in Status().Unsigned), so that no message reaches a
	// subscriber, or is relayed, as coming from a node that did not send
	// it. It implies SignPublishes. Messages from nodes that do not sign,
	// and those a bridge brings in from outside the mesh unsigned, are lost
	// to such a node.
	RequireSignatures bool

	// ServerTLS and ClientTLS enable TLS on every edge; both must be set.
	ServerTLS *tls.Config
	ClientTLS *tls.Config

	// Store is the node's key-value store (optional); the node answers
	// network fetches from it and stores fetched values in it.
	Store *store.Store
	// AllowFetchMove lets a peer's FetchWith(Move) delete a key from this
	// node's store once the peer has stored the value (the original's
	// fetch always popped it). Off by default: any peer could otherwise
	// take every key away.
	AllowFetchMove bool
	// ChatHistory keeps the last ChatHistory messages of each topic (those
	// received on a subscription and those this node published) in
	// Store's logs, for Node.ChatHistory after a restart. 0 (the default)
	// keeps none; it needs a Store.
	ChatHistory int

	// StatusFields, when set, adds the application's own fields to the
	// status the node reports (Status().Extra) and serves over UDP to
	// `chaski status` and QueryStatus: the original's _get_status(**kwargs).
	// It is called once per status request, without any lock of the node
	// held, and must be fast. At most MaxStatusFields fields are served;
	// names are 1–64 bytes, values are cut to 256 bytes, and fields that do
	// not fit a datagram are left out.
	StatusFields func() map[string]string

	// Files.
	AcceptFiles bool // accept incoming files (default off)
	// DownloadDir is where accepted files go; default "." (the working
	// directory at the time of each offer), as the original's
	// destination_folder. The command line always sets it (its
	// --download-dir, default <data-dir>/downloads).
	DownloadDir   string
	MaxFileSize   int64 // default 4 GiB
	FileChunkSize int   // default 256 KiB
	// MaxPartialBytesPerSender and MaxPartialBytes bound the bytes held in
	// partial files (kept ones by their bytes on disk, transfers in
	// progress by their declared size), per sender and in total: a new
	// file past either is refused ("partial-file budget exceeded"); a
	// resume of a sender's own partial never is. Defaults: per sender
	// 4 GiB (at least MaxFileSize), in total 16 GiB (at least the per
	// sender budget).
	MaxPartialBytesPerSender int64
	MaxPartialBytes          int64
	// FileHash is the hash that verifies the files this node sends:
	// HashBLAKE3 (default: every chunk is checked as it arrives, see
	// docs/PROTOCOL.md §9) or HashSHA256 (checked once, at the end).
	FileHash string
	// FileTreeCache is a directory where a sender keeps the BLAKE3 tree of
	// each file it sends, so that sending the same file again, unchanged
	// (same device, inode, size, mtime and ctime), skips hashing it before
	// the offer. Receivers check every chunk either way. "" (default): no
	// cache. The command line uses <data-dir>/trees. Linux only.
	FileTreeCache string
	// PromptFiles makes offers wait for AcceptTransfer instead of being
	// refused when AcceptFiles is off (the dashboard asks the user).
	PromptFiles bool
	// FileHandler is called once per verified incoming file.
	FileHandler func(FileReceived)

	// LAN announces the node and finds nodes nearby (mDNS and the
	// one-machine rendezvous directory); nil: off. See LANConfig.
	LAN *LANConfig

	Logger *slog.Logger
}

// FavoritePorts are the original's preferred listening ports.
var FavoritePorts = []int{8511, 8512, 8513, 8514, 8515, 8516}

func (c *Config) setDefaults() error {
	if c.Name == "" {
		h, _ := os.Hostname()
		if h == "" {
			h = "chaski"
		}
		if len(h) > 40 {
			h = h[:40]
		}
		c.Name = fmt.Sprintf("%s-%04x", h, randUint64()&0xffff)
	}
	if !wire.ValidName(c.Name, wire.MaxNameLen) {
		return fmt.Errorf("chaski: invalid node name %q (1–%d printable bytes)", c.Name, wire.MaxNameLen)
	}
	if c.Listen == "" {
		c.Listen = "127.0.0.1:0"
	}
	if c.RequireSignatures {
		c.SignPublishes = true
	}
	for _, s := range c.Subscriptions {
		if !wire.ValidName(s, wire.MaxTopicLen) {
			return fmt.Errorf("%w: %q", ErrInvalidTopic, s)
		}
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	defi := func(d *int, v int) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.TTL <= 0 || c.TTL > wire.MaxTTL {
		c.TTL = wire.MaxTTL
	}
	def(&c.PingInterval, 7*time.Second)
	if c.PingSpread <= 0 {
		c.PingSpread = 0.5
	}
	defi(&c.MaxMissedPongs, 3)
	def(&c.HandshakeTimeout, 5*time.Second)
	def(&c.DialTimeout, 5*time.Second)
	def(&c.WriteTimeout, 30*time.Second)
	def(&c.MaxWriteStall, 10*c.WriteTimeout)
	c.MaxWriteStall = max(c.MaxWriteStall, c.WriteTimeout)
	if c.ReconnectAttempts == 0 {
		c.ReconnectAttempts = 8
	}
	def(&c.ReconnectBase, 500*time.Millisecond)
	def(&c.ReconnectMax, 30*time.Second)
	defi(&c.MaxFrameBody, wire.DefaultMaxBody)
	if c.MaxFrameBody > wire.HardMaxBody {
		c.MaxFrameBody = wire.HardMaxBody
	}
	defi(&c.SendQueueBytes, 8<<20)
	defi(&c.MessageBuffer, 4096)
	defi(&c.DedupOrigins, defaultDedupOrigins)
	def(&c.DedupAge, 2*time.Minute)
	defi(&c.MaxEdges, 256)
	defi(&c.MaxEdgesPerSource, 64)
	c.MaxEdgesPerSource = min(c.MaxEdgesPerSource, c.MaxEdges)
	if c.EvictQuiet == 0 {
		c.EvictQuiet = 60 * time.Second
	}
	defi(&c.MaxConnections, 5)
	def(&c.DiscoverTimeout, 10*time.Second)
	def(&c.RequestTimeout, 10*time.Second)
	defi(&c.MaxConcurrentRequests, 64)
	if (c.ServerTLS == nil) != (c.ClientTLS == nil) {
		return fmt.Errorf("chaski: ServerTLS and ClientTLS must be set together")
	}
	if c.MaxFileSize <= 0 {
		c.MaxFileSize = 4 << 30
	}
	if c.MaxPartialBytesPerSender <= 0 {
		c.MaxPartialBytesPerSender = max(4<<30, c.MaxFileSize)
	}
	if c.MaxPartialBytes <= 0 {
		c.MaxPartialBytes = max(16<<30, c.MaxPartialBytesPerSender)
	}
	switch c.FileHash {
	case "":
		c.FileHash = HashBLAKE3
	case HashBLAKE3, HashSHA256:
	default:
		return fmt.Errorf("%w: Config.FileHash %q (want blake3 or sha256)", ErrUnknownHash, c.FileHash)
	}
	defi(&c.FileChunkSize, 256<<10)
	if c.DownloadDir == "" {
		c.DownloadDir = "."
	}
	if c.FileChunkSize > c.MaxFrameBody-wire.FileChunkFixedLen {
		c.FileChunkSize = c.MaxFrameBody - wire.FileChunkFixedLen
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}
