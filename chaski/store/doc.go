// Package store is the persistent key-value store of a Chaski node: small
// byte values under text keys, each with an optional deadline, kept in one
// bbolt file and shared safely by the goroutines of one process.
//
// # On-disk format
//
// The file is a bbolt database with four top-level buckets:
//
//	entries  key -> record
//	expiry   deadline (8 bytes) ++ key -> empty
//	meta     "format" -> 1 byte, "count" -> uint64 (number of records)
//	state    name -> the application's own record (SetState; no header)
//
// A record is a 25-byte header followed by the value bytes:
//
//	byte 0       record version (1, or 2 when an origin follows)
//	bytes 1-8    created, unix nanoseconds, big-endian int64
//	bytes 9-16   updated, same encoding
//	bytes 17-24  expires, same encoding; 0 means never
//	version 2:   byte 25 origin length N (<= 255), then N bytes of origin
//
// Only values stored with an origin (SetFrom: a node's fetch records the
// peer that answered) use version 2, so a file holding local values only
// stays readable by builds that know version 1 alone.
//
// The header lives inside the value rather than in parallel buckets so that
// a record is one bbolt write and can never be half-updated, and so that a
// read answers "is it still alive?" without a second lookup. The version byte
// lets a future header change be recognised rather than misread.
//
// The expiry bucket exists for the purge: its keys sort by deadline (the sign
// bit is flipped so bbolt's unsigned byte order matches signed time order),
// so a sweep reads only the entries that are actually due and stops at the
// first live one. With 100k long-lived keys, a sweep that finds nothing to do
// touches one index page instead of decoding every record. Only expiring
// entries are indexed. The stored count makes Len cost the number of
// expired-but-unswept entries rather than a scan of the whole file. Index and
// count are changed in the same transaction as the records, so a crash can
// never leave them disagreeing; the purge still tolerates a stale index entry
// (it drops it) so that one corrupt record cannot stall it.
//
// # Guarantees
//
// Durability: every write is its own bbolt transaction, fsynced before the
// call returns. Once Set, Delete, Pop, Clear or Purge has returned nil, the
// change survives the process being killed, and a crash mid-write leaves the
// previous state intact; bbolt's copy-on-write pages and double meta page
// provide this, which is why there is no write-ahead log here. The price is
// roughly one fsync per write; see the benchmarks.
//
// Expiry: an expired entry is never returned, whether or not a sweep has
// removed it yet, because every read checks the deadline itself. The
// background sweep only reclaims space and reports EventExpire. Deadlines are
// absolute instants, so an entry that expired while the process was down is
// already invisible when the file is reopened.
//
// Exclusivity: bbolt holds an exclusive flock on the file while it is open.
// flock locks belong to an open file description, so a second Open of the
// same path is refused even from the same process; Open gives up after
// Options.LockTimeout with ErrLocked rather than hang, since waiting forever
// for a lock held by a stuck peer is worse than reporting it. The lock dies
// with the process, so a crash never leaves a stale lock behind.
//
// Events: OnEvent sees changes after they are committed, one at a time, in
// commit order, and every entry that leaves the store is reported exactly
// once (delete, expire or clear), so a listener can maintain a mirror of the
// key set without rescanning.
//
// Keys are non-empty valid UTF-8 of at most MaxKeyLen bytes with no control
// characters, because they are shown in logs and in an inspector UI where
// control bytes could forge output. Values are opaque and copied in and out:
// bbolt memory is only valid inside its transaction, so no returned slice
// ever aliases the file.
package store
