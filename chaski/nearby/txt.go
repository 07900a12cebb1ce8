package nearby

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/chaski-dev/chaski/chaski/wire"
)

// TXT record keys (DNS-SD "key=value" strings, RFC 6763 §6). The same
// keys are used in the one-machine rendezvous files.
const (
	keyTXTVers = "txtvers" // format of this record: "1"
	keyID      = "id"      // node id, 32 lower-case hex digits
	keyName    = "name"    // node name
	keyVersion = "v"       // wire protocol version
	keyTLS     = "tls"     // "yes" or "no"
	keyTopics  = "topics"  // advertised topics, comma-separated
)

// Limits on what an announcement may carry. A TXT string holds at most 255
// bytes, so the topics list is cut to fit; receivers reject anything larger.
const (
	MaxTopics    = 16  // advertised topics per node
	MaxTopicLen  = 64  // bytes per advertised topic
	MaxNameLen   = 64  // bytes of a node name (wire.MaxNameLen)
	maxTXTString = 255 // one TXT character-string
	maxTXTParts  = 16  // strings per TXT record that are looked at
)

// ErrMalformed reports an announcement that does not parse; it is ignored.
var ErrMalformed = errors.New("nearby: malformed announcement")

// Record is what one announcement says about a node, without its address.
type Record struct {
	ID      string // 32 hex digits
	Name    string
	Version int
	TLS     bool
	Topics  []string
}

// validTopic is wire.ValidName plus "no comma" (the list separator).
func validTopic(s string) bool {
	return wire.ValidName(s, MaxTopicLen) && !strings.ContainsRune(s, ',')
}

// AdvertisableTopics returns the topics of ts that can be announced, in
// order, without duplicates, at most MaxTopics and at most what fits in one
// TXT string.
func AdvertisableTopics(ts []string) []string {
	var out []string
	size := len(keyTopics) + 1
	seen := map[string]bool{}
	for _, t := range ts {
		if !validTopic(t) || seen[t] || len(out) == MaxTopics {
			continue
		}
		add := len(t)
		if len(out) > 0 {
			add++
		}
		if size+add > maxTXTString {
			break
		}
		size += add
		seen[t] = true
		out = append(out, t)
	}
	return out
}

// EncodeTXT returns the TXT strings announcing r. Topics that cannot be
// announced are left out (see AdvertisableTopics).
func EncodeTXT(r Record) []string {
	tls := "no"
	if r.TLS {
		tls = "yes"
	}
	name := r.Name
	if len(name) > MaxNameLen {
		name = name[:MaxNameLen]
	}
	return []string{
		keyTXTVers + "=1",
		keyID + "=" + r.ID,
		keyName + "=" + name,
		keyVersion + "=" + strconv.Itoa(r.Version),
		keyTLS + "=" + tls,
		keyTopics + "=" + strings.Join(AdvertisableTopics(r.Topics), ","),
	}
}

// ParseTXT parses the TXT strings of an announcement. Unknown keys are
// ignored (later versions may add some); for a repeated key the first wins
// (RFC 6763 §6.4). A missing or invalid id, name, version or tls value, an
// invalid topic, too many topics or a string over 255 bytes makes the whole
// record malformed: a node that announces garbage is not listed at all.
func ParseTXT(parts []string) (Record, error) {
	var r Record
	seen := map[string]bool{}
	if len(parts) > maxTXTParts {
		parts = parts[:maxTXTParts]
	}
	for _, p := range parts {
		if len(p) > maxTXTString {
			return Record{}, fmt.Errorf("%w: TXT string of %d bytes", ErrMalformed, len(p))
		}
		k, v, _ := strings.Cut(p, "=")
		k = strings.ToLower(k)
		if seen[k] {
			continue
		}
		seen[k] = true
		switch k {
		case keyID:
			if len(v) != 32 || strings.ToLower(v) != v {
				return Record{}, fmt.Errorf("%w: id %q", ErrMalformed, v)
			}
			if _, err := hex.DecodeString(v); err != nil {
				return Record{}, fmt.Errorf("%w: id %q", ErrMalformed, v)
			}
			r.ID = v
		case keyName:
			if !wire.ValidName(v, MaxNameLen) {
				return Record{}, fmt.Errorf("%w: name %q", ErrMalformed, v)
			}
			r.Name = v
		case keyVersion:
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 65535 {
				return Record{}, fmt.Errorf("%w: version %q", ErrMalformed, v)
			}
			r.Version = n
		case keyTLS:
			switch v {
			case "yes":
				r.TLS = true
			case "no":
			default:
				return Record{}, fmt.Errorf("%w: tls %q", ErrMalformed, v)
			}
		case keyTopics:
			if v == "" {
				continue
			}
			ts := strings.Split(v, ",")
			if len(ts) > MaxTopics {
				return Record{}, fmt.Errorf("%w: %d topics", ErrMalformed, len(ts))
			}
			for _, t := range ts {
				if !validTopic(t) {
					return Record{}, fmt.Errorf("%w: topic %q", ErrMalformed, t)
				}
			}
			r.Topics = ts
		}
	}
	for _, k := range []string{keyID, keyName, keyVersion, keyTLS} {
		if !seen[k] {
			return Record{}, fmt.Errorf("%w: no %s", ErrMalformed, k)
		}
	}
	return r, nil
}
