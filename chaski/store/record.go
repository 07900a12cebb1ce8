package store

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// Bucket and meta key names. They are part of the on-disk format: renaming
// any of them orphans existing data.
var (
	bucketEntries = []byte("entries")
	bucketExpiry  = []byte("expiry")
	bucketMeta    = []byte("meta")
	// bucketState holds the application's own records (SetState): not
	// entries, so never listed, fetched by peers or expired.
	bucketState = []byte("state")

	metaFormat = []byte("format")
	metaCount  = []byte("count")
)

const (
	// formatVersion guards the layout as a whole (buckets, index encoding,
	// meta keys); recordVersion guards the per-value header. They are kept
	// apart so a future header change can be migrated record by record.
	formatVersion byte = 1
	recordVersion byte = 1
	// recordVersionOrigin is recordVersion's header followed by the
	// entry's origin: one length byte and that many bytes. Only entries
	// with an origin (fetched from a peer) are written this way, so a
	// store whose values are all local stays readable by older builds.
	recordVersionOrigin byte = 2

	headerLen = 1 + 8 + 8 + 8 // version, created, updated, expires

	// MaxOriginLen bounds the origin recorded with an entry (SetFrom).
	MaxOriginLen = 255

	// noExpiry is the stored "expires" for entries that never expire.
	noExpiry int64 = 0
)

// header is the decoded fixed-size prefix of a stored record.
type header struct {
	created, updated, expires int64  // unix nanoseconds; expires == noExpiry means never
	origin                    string // where the value came from; "" = written here
}

// expiredAt reports whether the entry is dead at now. An entry whose deadline
// equals now is already dead, so a zero-length remaining lifetime is never
// observable.
func (h header) expiredAt(now int64) bool {
	return h.expires != noExpiry && h.expires <= now
}

func encodeRecord(h header, value []byte) []byte {
	n := headerLen
	if h.origin != "" {
		n += 1 + len(h.origin)
	}
	buf := make([]byte, n+len(value))
	buf[0] = recordVersion
	binary.BigEndian.PutUint64(buf[1:9], uint64(h.created))
	binary.BigEndian.PutUint64(buf[9:17], uint64(h.updated))
	binary.BigEndian.PutUint64(buf[17:25], uint64(h.expires))
	if h.origin != "" {
		buf[0] = recordVersionOrigin
		buf[headerLen] = byte(len(h.origin)) // SetFrom checked it fits
		copy(buf[headerLen+1:], h.origin)
	}
	copy(buf[n:], value)
	return buf
}

// decodeRecord splits a stored record. The returned value aliases raw, so the
// caller must copy it before the transaction ends.
func decodeRecord(key, raw []byte) (header, []byte, error) {
	if len(raw) < headerLen {
		return header{}, nil, fmt.Errorf("%w: key %q: record of %d bytes is shorter than its header", ErrCorrupt, key, len(raw))
	}
	if raw[0] != recordVersion && raw[0] != recordVersionOrigin {
		return header{}, nil, fmt.Errorf("%w: key %q: unknown record version %d", ErrCorrupt, key, raw[0])
	}
	h := header{
		created: int64(binary.BigEndian.Uint64(raw[1:9])),
		updated: int64(binary.BigEndian.Uint64(raw[9:17])),
		expires: int64(binary.BigEndian.Uint64(raw[17:25])),
	}
	rest := raw[headerLen:]
	if raw[0] == recordVersionOrigin {
		if len(rest) < 1 || len(rest) < 1+int(rest[0]) {
			return header{}, nil, fmt.Errorf("%w: key %q: record of %d bytes is shorter than its origin", ErrCorrupt, key, len(raw))
		}
		h.origin = string(rest[1 : 1+int(rest[0])])
		rest = rest[1+int(rest[0]):]
	}
	return h, rest, nil
}

// Expiry index keys are an 8-byte deadline followed by the entry key, so a
// cursor walks them in deadline order and the purge can stop at the first
// live one. The sign bit is flipped so that the unsigned big-endian byte
// order bbolt uses agrees with signed order even for pre-1970 clocks (a test
// hook can produce them).
func indexKey(expires int64, key []byte) []byte {
	buf := make([]byte, 8+len(key))
	binary.BigEndian.PutUint64(buf, uint64(expires)^(1<<63))
	copy(buf[8:], key)
	return buf
}

func decodeIndexKey(ik []byte) (expires int64, key []byte, ok bool) {
	if len(ik) < 8 {
		return 0, nil, false
	}
	return int64(binary.BigEndian.Uint64(ik[:8]) ^ (1 << 63)), ik[8:], true
}

// deadline turns now+ttl into a stored expiry. It saturates instead of
// wrapping, and steps off the noExpiry sentinel, because either mistake would
// silently make a short-lived entry immortal.
func deadline(now int64, ttl time.Duration) int64 {
	if ttl <= 0 {
		return noExpiry
	}
	var exp int64
	if now > 0 && int64(ttl) > math.MaxInt64-now {
		exp = math.MaxInt64
	} else {
		exp = now + int64(ttl)
	}
	if exp == noExpiry {
		exp = 1
	}
	return exp
}

func nanosToTime(n int64) time.Time {
	return time.Unix(0, n)
}

func encodeUint64(n uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], n)
	return b[:]
}
