package store

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/goleak"
)

// Environment variables that turn the test binary into a helper process.
const (
	helperEnv     = "CHASKI_STORE_TEST_HELPER"
	helperPathEnv = "CHASKI_STORE_TEST_PATH"
	helperArgEnv  = "CHASKI_STORE_TEST_ARG"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode))
	}
	goleak.VerifyTestMain(m)
}

// fakeClock is the Options.Now hook used to drive expiry deterministically.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// recorder collects events; it is safe to call from any goroutine.
type recorder struct {
	mu  sync.Mutex
	evs []Event
}

func (r *recorder) on(e Event) {
	r.mu.Lock()
	r.evs = append(r.evs, e)
	r.mu.Unlock()
}

// take returns and forgets the events seen so far.
func (r *recorder) take() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	evs := r.evs
	r.evs = nil
	return evs
}

func tempPath(t testing.TB) string {
	// A nested, not-yet-existing directory exercises Open's MkdirAll.
	return filepath.Join(t.TempDir(), "node", "data", "store.db")
}

// openTest opens a store in a fresh directory and closes it at cleanup. The
// background purge is off unless the caller asks for it, so expiry is driven
// only by the clock and explicit Purge calls.
func openTest(t testing.TB, opts Options) *Store {
	t.Helper()
	return openAt(t, tempPath(t), opts)
}

func openAt(t testing.TB, path string, opts Options) *Store {
	t.Helper()
	if opts.PurgeInterval == 0 {
		opts.PurgeInterval = -1
	}
	s, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open(%q): %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// fastWrites turns off fsync for tests that need many writes to stay quick
// on a slow disk; durability is exercised separately by the crash test.
func fastWrites(s *Store) { s.db.NoSync = true }

func mustSet(t testing.TB, s *Store, key string, value []byte, ttl time.Duration) {
	t.Helper()
	if err := s.Set(key, value, ttl); err != nil {
		t.Fatalf("Set(%q): %v", key, err)
	}
}

func mustGet(t testing.TB, s *Store, key string, want []byte) {
	t.Helper()
	got, err := s.Get(key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Get(%q) = %q, want %q", key, got, want)
	}
}

// checkConsistency verifies the invariants the purge and Len rely on: every
// expiring record has exactly its index entry, the index has nothing else,
// and the stored count equals the number of records.
func checkConsistency(t testing.TB, s *Store) {
	t.Helper()
	err := s.view(func(tx *bolt.Tx) error {
		entries := tx.Bucket(bucketEntries)
		expiry := tx.Bucket(bucketExpiry)
		records, indexed := 0, 0
		err := entries.ForEach(func(k, raw []byte) error {
			records++
			h, _, err := decodeRecord(k, raw)
			if err != nil {
				t.Errorf("record %q: %v", k, err)
				return nil
			}
			if h.created > h.updated {
				t.Errorf("record %q: created %d after updated %d", k, h.created, h.updated)
			}
			if h.expires != noExpiry {
				indexed++
				if v := expiry.Get(indexKey(h.expires, k)); v == nil {
					t.Errorf("record %q: missing index entry for %d", k, h.expires)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		if n := expiry.Stats().KeyN; n != indexed {
			t.Errorf("index has %d entries, want %d", n, indexed)
		}
		count, err := readCount(tx)
		if err != nil {
			return err
		}
		if int(count) != records {
			t.Errorf("stored count %d, records %d", count, records)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("consistency check: %v", err)
	}
}

// pollUntil waits for cond with a generous deadline; the CI box is slow and
// loaded, and a real bug shows up as a timeout either way.
func pollUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
