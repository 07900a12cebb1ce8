package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Sentinel errors. Functions may wrap them with detail; test with errors.Is.
var (
	ErrNotFound      = errors.New("store: key not found")
	ErrLocked        = errors.New("store: database is in use by another process")
	ErrClosed        = errors.New("store: closed")
	ErrInvalidKey    = errors.New("store: invalid key")
	ErrValueTooLarge = errors.New("store: value too large")
	// ErrInvalidTTL is returned by Set for a negative ttl other than
	// UseDefaultTTL: a deadline in the past is almost always a caller bug,
	// and silently storing an already-dead entry would hide it.
	ErrInvalidTTL = errors.New("store: invalid ttl")
	// ErrCorrupt is returned when a stored record or the file's metadata
	// cannot be decoded.
	ErrCorrupt = errors.New("store: corrupt data")
)

const (
	// DefaultTTL is the lifetime given to entries set with UseDefaultTTL
	// when Options.DefaultTTL is zero. It matches the original store.
	DefaultTTL = 3600 * time.Second
	// UseDefaultTTL, passed as Set's ttl, selects Options.DefaultTTL.
	UseDefaultTTL time.Duration = -1

	MaxKeyLen   = 1024     // bytes of UTF-8
	MaxValueLen = 16 << 20 // bytes

	defaultPurgeInterval = 30 * time.Second
	defaultLockTimeout   = time.Second

	// purgeBatch bounds the work done in one write transaction while
	// purging, so a mass expiry does not hold the single writer slot (and
	// delay every Set) for the whole sweep.
	purgeBatch = 1000
)

// Options configure Open. The zero value is usable.
type Options struct {
	// DefaultTTL is the lifetime used when Set is called with UseDefaultTTL.
	// 0 selects the package DefaultTTL; a negative value means such entries
	// never expire.
	DefaultTTL time.Duration
	// PurgeInterval is the period of the background sweep that deletes
	// expired entries. 0 selects 30s; a negative value disables the
	// goroutine (expired entries are still never returned; call Purge).
	PurgeInterval time.Duration
	// LockTimeout is how long Open waits for a lock held by another handle
	// before failing with ErrLocked. 0 selects 1s; a negative value tries
	// exactly once.
	LockTimeout time.Duration
	// OnEvent, if not nil, is told about every committed change. Calls are
	// made after the commit, outside any store lock, one at a time and in
	// commit order, but not necessarily on the goroutine that made the
	// change: when a goroutine is already delivering, a write hands its
	// events to that goroutine instead of waiting, so its call may return
	// before its event has been seen. It must not block, and must not call
	// Close (Close waits for the purge goroutine, which may be the one
	// calling it). It may call other Store methods, including writes. A
	// panic in it propagates to the Store call that was delivering; later
	// events are still delivered.
	OnEvent func(Event)
	// Now replaces time.Now, for tests. It decides expiry and timestamps;
	// the purge goroutine's schedule still uses the real clock.
	Now func() time.Time
}

// EventKind says what kind of change an Event reports.
type EventKind uint8

const (
	EventPut    EventKind = iota + 1 // key created or overwritten
	EventDelete                      // removed by Delete or Pop
	EventExpire                      // an expired entry was physically removed
	EventClear                       // every entry removed by Clear; Key is empty
)

func (k EventKind) String() string {
	switch k {
	case EventPut:
		return "put"
	case EventDelete:
		return "delete"
	case EventExpire:
		return "expire"
	case EventClear:
		return "clear"
	}
	return "EventKind(" + strconv.Itoa(int(k)) + ")"
}

// Event describes one committed change. Size is the length of the value put
// or removed; Expires is that entry's deadline (zero = never). Every entry
// that leaves the store produces exactly one Delete, Expire or Clear event,
// so a listener can mirror the live key set.
type Event struct {
	Kind    EventKind
	Key     string
	Size    int
	Expires time.Time
}

// Entry is a snapshot of one live entry. Value is a private copy.
type Entry struct {
	Key              string
	Value            []byte
	Size             int
	Created, Updated time.Time
	Expires          time.Time // zero = never
	// Origin is where the value came from, as given to SetFrom (for a
	// node: the peer a fetch got it from); "" for a value written here.
	Origin string
}

// TTL returns the lifetime left at now, shaped so that
// Set(e.Key, e.Value, e.TTL(now)) recreates the entry with the same deadline:
// it is 0 for an entry that never expires (Set's "never"), and at least 1ns
// for one that does, even if that deadline has already passed, so the round
// trip can neither make an entry immortal nor pick up the default TTL. Use
// Expired to tell whether the deadline has passed.
func (e Entry) TTL(now time.Time) time.Duration {
	if e.Expires.IsZero() {
		return 0
	}
	if d := e.Expires.Sub(now); d > 0 {
		return d
	}
	return time.Nanosecond
}

// Expired reports whether the entry's deadline is at or before now.
func (e Entry) Expired(now time.Time) bool {
	return !e.Expires.IsZero() && !e.Expires.After(now)
}

// Store is a persistent key-value store. It is safe for concurrent use.
type Store struct {
	db         *bolt.DB
	path       string
	defaultTTL time.Duration // <= 0 means never
	now        func() time.Time
	onEvent    func(Event)

	// mu is read-held for the whole of every transaction so that Close,
	// which write-locks it, waits for them and later calls see closed.
	mu     sync.RWMutex
	closed bool

	// wmu serialises write transactions together with queuing their events;
	// bbolt already admits one writer at a time, so this costs no
	// concurrency and makes the queue order equal the commit order.
	wmu sync.Mutex

	evMu    sync.Mutex
	evQueue []Event
	// drainMu is held by whichever goroutine is currently delivering
	// events. Others hand their events over rather than wait, which keeps
	// delivery serial and ordered without letting a re-entrant OnEvent
	// deadlock.
	drainMu sync.Mutex

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// Open opens or creates the store at path. Missing parent directories are
// created with mode 0700 and a new file with 0600. If another handle (in this
// or another process) holds the file, Open fails with an error wrapping
// ErrLocked after Options.LockTimeout.
func Open(path string, opts Options) (*Store, error) {
	if path == "" {
		return nil, errors.New("store: empty path")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}

	lockTimeout := opts.LockTimeout
	switch {
	case lockTimeout == 0:
		lockTimeout = defaultLockTimeout
	case lockTimeout < 0:
		// bbolt treats 0 as "wait forever"; the smallest positive value
		// makes it give up after the first failed attempt.
		lockTimeout = time.Nanosecond
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout: lockTimeout,
		// The hashmap freelist keeps allocation cheap once a large, churned
		// file has many free pages.
		FreelistType: bolt.FreelistMapType,
	})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, path)
		}
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	if err := db.Update(initBuckets); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}

	s := &Store{
		db:      db,
		path:    path,
		now:     opts.Now,
		onEvent: opts.OnEvent,
	}
	if s.now == nil {
		s.now = time.Now
	}
	switch {
	case opts.DefaultTTL == 0:
		s.defaultTTL = DefaultTTL
	case opts.DefaultTTL > 0:
		s.defaultTTL = opts.DefaultTTL
	}

	interval := opts.PurgeInterval
	if interval == 0 {
		interval = defaultPurgeInterval
	}
	if interval > 0 {
		s.stop = make(chan struct{})
		s.done = make(chan struct{})
		go s.purgeLoop(interval)
	}
	return s, nil
}

func initBuckets(tx *bolt.Tx) error {
	meta, err := tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return err
	}
	if v := meta.Get(metaFormat); v == nil {
		if err := meta.Put(metaFormat, []byte{formatVersion}); err != nil {
			return err
		}
	} else if len(v) != 1 || v[0] != formatVersion {
		return fmt.Errorf("%w: unsupported format version %v", ErrCorrupt, v)
	}
	entries, err := tx.CreateBucketIfNotExists(bucketEntries)
	if err != nil {
		return err
	}
	if _, err := tx.CreateBucketIfNotExists(bucketExpiry); err != nil {
		return err
	}
	if _, err := tx.CreateBucketIfNotExists(bucketState); err != nil {
		return err
	}
	if meta.Get(metaCount) == nil {
		// Only a brand-new (or pre-count) file lands here; afterwards the
		// count is maintained in the same transactions as the data.
		n := entries.Stats().KeyN
		if err := meta.Put(metaCount, encodeUint64(uint64(n))); err != nil {
			return err
		}
	}
	return nil
}

// Path returns the file path given to Open.
func (s *Store) Path() string { return s.path }

// Close stops the purge goroutine, waits for it and for in-flight calls, and
// closes the file. Later calls return ErrClosed; Close itself is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if s.stop != nil {
			close(s.stop)
			<-s.done
		}
		s.mu.Lock()
		s.closed = true
		s.closeErr = s.db.Close()
		s.mu.Unlock()
	})
	return s.closeErr
}

// --- reads ---

// Get returns a copy of the value of a live key, or ErrNotFound.
func (s *Store) Get(key string) ([]byte, error) {
	if err := validateKey(key); err != nil {
		return nil, err
	}
	var out []byte
	err := s.view(func(tx *bolt.Tx) error {
		_, v, err := s.liveRecord(tx, key)
		if err != nil {
			return err
		}
		out = cloneValue(v)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Lookup returns the live entry for key, or ErrNotFound.
func (s *Store) Lookup(key string) (Entry, error) {
	if err := validateKey(key); err != nil {
		return Entry{}, err
	}
	var e Entry
	err := s.view(func(tx *bolt.Tx) error {
		h, v, err := s.liveRecord(tx, key)
		if err != nil {
			return err
		}
		e = makeEntry(key, h, v)
		return nil
	})
	return e, err
}

// Exists reports whether key is live. Errors (including ErrClosed) read as
// false.
func (s *Store) Exists(key string) bool {
	if validateKey(key) != nil {
		return false
	}
	err := s.view(func(tx *bolt.Tx) error {
		_, _, err := s.liveRecord(tx, key)
		return err
	})
	return err == nil
}

// Keys returns the live keys in byte-wise (sort.Strings) order.
func (s *Store) Keys() ([]string, error) {
	keys := []string{}
	err := s.view(func(tx *bolt.Tx) error {
		now := s.nowNanos()
		return tx.Bucket(bucketEntries).ForEach(func(k, raw []byte) error {
			h, _, err := decodeRecord(k, raw)
			if err != nil {
				return err
			}
			if !h.expiredAt(now) {
				keys = append(keys, string(k))
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return keys, nil
}

// Entries returns the live entries whose key starts with prefix (all of them
// for ""), sorted by key, values included. It reads one consistent snapshot.
func (s *Store) Entries(prefix string) ([]Entry, error) {
	out := []Entry{}
	err := s.view(func(tx *bolt.Tx) error {
		now := s.nowNanos()
		p := []byte(prefix)
		c := tx.Bucket(bucketEntries).Cursor()
		for k, raw := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, raw = c.Next() {
			h, v, err := decodeRecord(k, raw)
			if err != nil {
				return err
			}
			if !h.expiredAt(now) {
				out = append(out, makeEntry(string(k), h, v))
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Len returns the number of live entries, or 0 if it cannot be read (for
// example after Close). It costs O(expired-but-not-yet-purged entries), not
// O(entries), thanks to the stored count and the expiry index.
func (s *Store) Len() int {
	n := 0
	_ = s.view(func(tx *bolt.Tx) error {
		total, err := readCount(tx)
		if err != nil {
			return err
		}
		now := s.nowNanos()
		dead := uint64(0)
		c := tx.Bucket(bucketExpiry).Cursor()
		for ik, _ := c.First(); ik != nil; ik, _ = c.Next() {
			exp, _, ok := decodeIndexKey(ik)
			if !ok || exp > now {
				break
			}
			dead++
		}
		if dead < total {
			n = int(total - dead)
		}
		return nil
	})
	return n
}

// --- writes ---

// Set stores a copy of value under key. ttl > 0 makes the entry expire that
// long from now, 0 means never, and UseDefaultTTL selects Options.DefaultTTL.
// Overwriting a live entry keeps its Created time; overwriting an expired one
// first reports it as an EventExpire, then starts afresh.
func (s *Store) Set(key string, value []byte, ttl time.Duration) error {
	return s.SetFrom(key, value, ttl, "")
}

// SetFrom is Set recording where the value came from (Entry.Origin): at
// most MaxOriginLen bytes of UTF-8 without control characters, or "" for a
// value written here. A later Set of the key makes it local again.
func (s *Store) SetFrom(key string, value []byte, ttl time.Duration, origin string) error {
	if err := validateKey(key); err != nil {
		return err
	}
	if len(origin) > MaxOriginLen || validateKey("o"+origin) != nil {
		return fmt.Errorf("store: invalid origin %q (at most %d bytes of text)", origin, MaxOriginLen)
	}
	if len(value) > MaxValueLen {
		return fmt.Errorf("%w: %d bytes (max %d)", ErrValueTooLarge, len(value), MaxValueLen)
	}
	switch {
	case ttl == UseDefaultTTL:
		ttl = s.defaultTTL
	case ttl < 0:
		return fmt.Errorf("%w: %v", ErrInvalidTTL, ttl)
	}
	k := []byte(key)
	return s.update(func(w *writeTx) error {
		now := s.nowNanos()
		h := header{created: now, updated: now, expires: deadline(now, ttl), origin: origin}
		existed, err := w.removeOld(k, now)
		if err != nil {
			return err
		}
		if existed != nil {
			h.created = existed.created
		} else {
			w.addCount(1)
		}
		if err := w.entries.Put(k, encodeRecord(h, value)); err != nil {
			return err
		}
		if h.expires != noExpiry {
			if err := w.expiry.Put(indexKey(h.expires, k), nil); err != nil {
				return err
			}
		}
		w.emit(EventPut, key, len(value), h.expires)
		return nil
	})
}

// Delete removes a live key, or returns ErrNotFound. An expired entry found
// under key is removed too (reported as EventExpire) but still yields
// ErrNotFound, since to the caller it was already gone.
func (s *Store) Delete(key string) error {
	_, err := s.take(key, false, nil)
	return err
}

// Pop returns the value of a live key and deletes it in the same
// transaction, so two concurrent Pops never both receive it.
func (s *Store) Pop(key string) ([]byte, error) {
	return s.take(key, true, nil)
}

// DeleteUnchanged removes a live key only if it has not been written since
// updated (its Entry.Updated then), in one transaction: a value that was
// handed on elsewhere is deleted, a newer one is kept. It reports whether
// the key was deleted; a missing key is not an error.
func (s *Store) DeleteUnchanged(key string, updated time.Time) (bool, error) {
	deleted := false
	_, err := s.take(key, false, func(h header) bool {
		deleted = h.updated == updated.UnixNano()
		return deleted
	})
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return deleted, err
}

// take deletes a live key (and returns its value when wantValue); when
// match is set, only a record it accepts is deleted.
func (s *Store) take(key string, wantValue bool, match func(header) bool) ([]byte, error) {
	if err := validateKey(key); err != nil {
		return nil, err
	}
	k := []byte(key)
	var out []byte
	err := s.update(func(w *writeTx) error {
		now := s.nowNanos()
		raw := w.entries.Get(k)
		if raw == nil {
			w.result = ErrNotFound
			return nil
		}
		h, v, err := decodeRecord(k, raw)
		if err == nil && h.expiredAt(now) {
			if err := w.remove(k, h); err != nil {
				return err
			}
			w.emit(EventExpire, key, len(v), h.expires)
			w.result = ErrNotFound
			return nil
		}
		if err != nil {
			if wantValue || match != nil {
				return err
			}
			// Delete must still be able to get rid of an undecodable
			// record; its index entry, if any, is dropped by the purge.
			if err := w.entries.Delete(k); err != nil {
				return err
			}
			w.addCount(-1)
			w.emit(EventDelete, key, len(raw), noExpiry)
			return nil
		}
		if match != nil && !match(h) {
			return nil
		}
		if wantValue {
			out = bytes.Clone(v)
			if out == nil {
				out = []byte{}
			}
		}
		size := len(v) // v is invalid once the record is deleted
		if err := w.remove(k, h); err != nil {
			return err
		}
		w.emit(EventDelete, key, size, h.expires)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Clear removes every entry, expired or not, and reports one EventClear.
func (s *Store) Clear() error {
	return s.update(func(w *writeTx) error {
		for _, name := range [][]byte{bucketEntries, bucketExpiry} {
			if err := w.tx.DeleteBucket(name); err != nil {
				return err
			}
			if _, err := w.tx.CreateBucket(name); err != nil {
				return err
			}
		}
		if err := w.meta.Put(metaCount, encodeUint64(0)); err != nil {
			return err
		}
		w.emit(EventClear, "", 0, noExpiry)
		return nil
	})
}

// Purge deletes every entry expired at the time of the call, reporting each
// as an EventExpire, and returns how many it deleted. It walks only the
// expiry index, so its cost does not depend on the number of live entries.
// Large sweeps are committed in batches.
func (s *Store) Purge() (int, error) {
	return s.purge(nil)
}

func (s *Store) purge(stop <-chan struct{}) (int, error) {
	// One cut-off for the whole sweep, so entries that expire while it runs
	// are left for the next one instead of stretching it indefinitely.
	cutoff := s.nowNanos()
	total := 0
	for {
		// Peek in a read transaction first: the usual sweep finds nothing
		// due, and that should cost neither the writer slot nor an fsync.
		due := false
		err := s.view(func(tx *bolt.Tx) error {
			ik, _ := tx.Bucket(bucketExpiry).Cursor().First()
			exp, _, ok := decodeIndexKey(ik)
			due = ik != nil && (!ok || exp <= cutoff)
			return nil
		})
		if err != nil || !due {
			return total, err
		}
		scanned, removed := 0, 0
		err = s.update(func(w *writeTx) error {
			scanned, removed = 0, 0
			var batch [][]byte
			c := w.expiry.Cursor()
			for ik, _ := c.First(); ik != nil && len(batch) < purgeBatch; ik, _ = c.Next() {
				exp, _, ok := decodeIndexKey(ik)
				if ok && exp > cutoff {
					break
				}
				// Copied: the slices die with the deletes below.
				batch = append(batch, bytes.Clone(ik))
			}
			scanned = len(batch)
			for _, ik := range batch {
				if err := w.expiry.Delete(ik); err != nil {
					return err
				}
				exp, k, ok := decodeIndexKey(ik)
				if !ok {
					continue
				}
				raw := w.entries.Get(k)
				if raw == nil {
					continue
				}
				h, v, err := decodeRecord(k, raw)
				if err != nil || h.expires != exp {
					// A stale index entry: the record it pointed at was
					// replaced in a way that lost track of it. Dropping
					// it is the repair.
					continue
				}
				size := len(v)
				if err := w.entries.Delete(k); err != nil {
					return err
				}
				w.addCount(-1)
				w.emit(EventExpire, string(k), size, exp)
				removed++
			}
			return nil
		})
		if err != nil {
			return total, err
		}
		total += removed
		if scanned < purgeBatch {
			return total, nil
		}
		select {
		case <-stop:
			return total, nil
		default:
		}
	}
}

func (s *Store) purgeLoop(interval time.Duration) {
	defer close(s.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			// Errors have nowhere to go; a failed sweep is retried on the
			// next tick, and expired entries stay invisible meanwhile.
			_, _ = s.purge(s.stop)
		}
	}
}

// --- application state ---

// SetState keeps value under name apart from the entries: state records
// are never listed by Keys or Entries, never returned by Get (so a peer's
// fetch cannot read them), never expire, and report no events. They hold
// an application's own bookkeeping (the dashboard's transfer list) in the
// same file. A nil value deletes the record. Names follow the key rules.
func (s *Store) SetState(name string, value []byte) error {
	if err := validateKey(name); err != nil {
		return err
	}
	if len(value) > MaxValueLen {
		return fmt.Errorf("%w: %d bytes (max %d)", ErrValueTooLarge, len(value), MaxValueLen)
	}
	return s.update(func(w *writeTx) error {
		b, err := w.tx.CreateBucketIfNotExists(bucketState)
		if err != nil {
			return err
		}
		if value == nil {
			return b.Delete([]byte(name))
		}
		return b.Put([]byte(name), value)
	})
}

// State returns a copy of the state record name, or ErrNotFound.
func (s *Store) State(name string) ([]byte, error) {
	if err := validateKey(name); err != nil {
		return nil, err
	}
	var out []byte
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketState)
		if b == nil {
			return ErrNotFound
		}
		v := b.Get([]byte(name))
		if v == nil {
			return ErrNotFound
		}
		out = cloneValue(v)
		return nil
	})
	return out, err
}

// --- transaction plumbing ---

func (s *Store) nowNanos() int64 { return s.now().UnixNano() }

func (s *Store) view(fn func(*bolt.Tx) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	return s.db.View(fn)
}

// writeTx carries what a write needs besides the bolt transaction: the
// buckets, the events to publish if it commits, and a result error for
// outcomes (such as ErrNotFound after cleaning up an expired entry) that must
// not roll the transaction back.
type writeTx struct {
	tx                    *bolt.Tx
	entries, expiry, meta *bolt.Bucket
	events                []Event
	result                error
	countDelta            int64
}

func (s *Store) update(fn func(*writeTx) error) error {
	queued, err := s.commit(fn)
	if queued {
		s.deliver()
	}
	return err
}

// commit runs fn in a write transaction and, if it commits, queues its
// events. Locks are released by defer so a panic cannot leave them held.
func (s *Store) commit(fn func(*writeTx) error) (queued bool, err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return false, ErrClosed
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	var w writeTx
	err = s.db.Update(func(tx *bolt.Tx) error {
		w = writeTx{
			tx:      tx,
			entries: tx.Bucket(bucketEntries),
			expiry:  tx.Bucket(bucketExpiry),
			meta:    tx.Bucket(bucketMeta),
		}
		if err := fn(&w); err != nil {
			return err
		}
		return w.flushCount()
	})
	if err != nil {
		return false, err
	}
	if s.onEvent != nil && len(w.events) > 0 {
		s.evMu.Lock()
		s.evQueue = append(s.evQueue, w.events...)
		s.evMu.Unlock()
		queued = true
	}
	return queued, w.result
}

// deliver runs OnEvent for queued events unless another goroutine is already
// doing so, in which case that goroutine picks ours up before it stops: it
// re-checks the queue after releasing drainMu, and we enqueued before our
// TryLock failed.
func (s *Store) deliver() {
	for {
		if !s.drainMu.TryLock() {
			return
		}
		s.drainQueue()
		s.evMu.Lock()
		empty := len(s.evQueue) == 0
		s.evMu.Unlock()
		if empty {
			return
		}
	}
}

func (s *Store) drainQueue() {
	// Unlock even if OnEvent panics, so one bad callback cannot wedge every
	// later event behind a lock nobody will release.
	defer s.drainMu.Unlock()
	for {
		s.evMu.Lock()
		q := s.evQueue
		s.evQueue = nil
		s.evMu.Unlock()
		if len(q) == 0 {
			return
		}
		for _, e := range q {
			s.onEvent(e)
		}
	}
}

func (w *writeTx) emit(kind EventKind, key string, size int, expires int64) {
	e := Event{Kind: kind, Key: key, Size: size}
	if expires != noExpiry {
		e.Expires = nanosToTime(expires)
	}
	w.events = append(w.events, e)
}

func (w *writeTx) addCount(d int64) { w.countDelta += d }

func (w *writeTx) flushCount() error {
	if w.countDelta == 0 {
		return nil
	}
	n, err := readCount(w.tx)
	if err != nil {
		return err
	}
	next := int64(n) + w.countDelta
	if next < 0 {
		return fmt.Errorf("%w: entry count would become %d", ErrCorrupt, next)
	}
	return w.meta.Put(metaCount, encodeUint64(uint64(next)))
}

// remove deletes a decoded record together with its index entry.
func (w *writeTx) remove(k []byte, h header) error {
	if h.expires != noExpiry {
		if err := w.expiry.Delete(indexKey(h.expires, k)); err != nil {
			return err
		}
	}
	if err := w.entries.Delete(k); err != nil {
		return err
	}
	w.addCount(-1)
	return nil
}

// removeOld prepares k for being overwritten by Set. It returns the old
// header if a live entry existed (so Created can be kept), nil otherwise. An
// expired entry is removed and reported; an undecodable one is left for the
// Put to overwrite (its count is kept, since the key stays occupied).
func (w *writeTx) removeOld(k []byte, now int64) (*header, error) {
	raw := w.entries.Get(k)
	if raw == nil {
		return nil, nil
	}
	h, v, err := decodeRecord(k, raw)
	if err != nil {
		return &header{created: now}, nil
	}
	if h.expires != noExpiry {
		if err := w.expiry.Delete(indexKey(h.expires, k)); err != nil {
			return nil, err
		}
	}
	if h.expiredAt(now) {
		w.emit(EventExpire, string(k), len(v), h.expires)
		// The key stays occupied by the new record, so the count is
		// unchanged: -1 for the expired entry, +1 for the new one.
		w.addCount(-1)
		return nil, nil
	}
	return &h, nil
}

func readCount(tx *bolt.Tx) (uint64, error) {
	v := tx.Bucket(bucketMeta).Get(metaCount)
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: entry count", ErrCorrupt)
	}
	return binary.BigEndian.Uint64(v), nil
}

func getRecord(tx *bolt.Tx, k []byte) (header, []byte, error) {
	raw := tx.Bucket(bucketEntries).Get(k)
	if raw == nil {
		return header{}, nil, ErrNotFound
	}
	return decodeRecord(k, raw)
}

// liveRecord is getRecord for key, with an expired record reported as
// ErrNotFound (the purge may not have removed it yet).
func (s *Store) liveRecord(tx *bolt.Tx, key string) (header, []byte, error) {
	h, v, err := getRecord(tx, []byte(key))
	if err == nil && h.expiredAt(s.nowNanos()) {
		return header{}, nil, ErrNotFound
	}
	return h, v, err
}

// cloneValue copies a value out of a transaction; an empty value is an
// empty slice, never nil.
func cloneValue(v []byte) []byte {
	if out := bytes.Clone(v); out != nil {
		return out
	}
	return []byte{}
}

func makeEntry(key string, h header, v []byte) Entry {
	e := Entry{
		Key:     key,
		Value:   cloneValue(v),
		Size:    len(v),
		Created: nanosToTime(h.created),
		Updated: nanosToTime(h.updated),
		Origin:  h.origin,
	}
	if h.expires != noExpiry {
		e.Expires = nanosToTime(h.expires)
	}
	return e
}

// validateKey enforces the key rules. Control characters are refused because
// keys end up in logs and in the inspector UI, where they could forge lines or
// terminal escapes; invalid UTF-8 because keys are Go strings that other
// peers and tools will treat as text.
func validateKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: empty", ErrInvalidKey)
	case len(key) > MaxKeyLen:
		return fmt.Errorf("%w: %d bytes (max %d)", ErrInvalidKey, len(key), MaxKeyLen)
	}
	for i, r := range key {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(key[i:]); size == 1 {
				return fmt.Errorf("%w: invalid UTF-8 at byte %d", ErrInvalidKey, i)
			}
		}
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: control character %U at byte %d", ErrInvalidKey, r, i)
		}
	}
	return nil
}
