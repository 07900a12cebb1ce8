package store

import (
	"fmt"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// BenchmarkSet measures a durable write: one transaction and fsync per call,
// which is what Set costs in production.
func BenchmarkSet(b *testing.B) {
	s := openTest(b, Options{})
	value := make([]byte, 256)
	b.SetBytes(int64(len(value)))
	i := 0
	for b.Loop() {
		if err := s.Set(fmt.Sprintf("key-%08d", i%10_000), value, time.Hour); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkSetNoSync isolates the store's own overhead from the disk.
func BenchmarkSetNoSync(b *testing.B) {
	s := openTest(b, Options{})
	fastWrites(s)
	value := make([]byte, 256)
	b.SetBytes(int64(len(value)))
	i := 0
	for b.Loop() {
		if err := s.Set(fmt.Sprintf("key-%08d", i%10_000), value, time.Hour); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkGet(b *testing.B) {
	const n = 10_000
	s := openTest(b, Options{})
	bulkLoad(b, s, n, 0, 256)
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%08d", i)
	}
	b.SetBytes(256)
	i := 0
	for b.Loop() {
		if _, err := s.Get(keys[i%n]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkGetParallel(b *testing.B) {
	const n = 10_000
	s := openTest(b, Options{})
	bulkLoad(b, s, n, 0, 256)
	b.SetBytes(256)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := s.Get(fmt.Sprintf("key-%08d", i%n)); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// BenchmarkPurgeIdle100k is the demanding-user case: 100k entries with
// far-off deadlines and nothing due. Thanks to the expiry index a sweep
// reads one index page in a read transaction: no scan, no write, no fsync.
func BenchmarkPurgeIdle100k(b *testing.B) {
	s := openTest(b, Options{})
	bulkLoad(b, s, 100_000, time.Hour, 64)
	for b.Loop() {
		if n, err := s.Purge(); err != nil || n != 0 {
			b.Fatal(n, err)
		}
	}
}

func BenchmarkLen100k(b *testing.B) {
	s := openTest(b, Options{})
	bulkLoad(b, s, 100_000, time.Hour, 64)
	for b.Loop() {
		if s.Len() != 100_000 {
			b.Fatal("wrong Len")
		}
	}
}

// bulkLoad writes n entries in a single transaction through the store's own
// encoders, so setup of big benchmarks does not take n fsyncs.
func bulkLoad(b *testing.B, s *Store, n int, ttl time.Duration, size int) {
	b.Helper()
	value := make([]byte, size)
	now := s.nowNanos()
	err := s.db.Update(func(tx *bolt.Tx) error {
		entries, expiry := tx.Bucket(bucketEntries), tx.Bucket(bucketExpiry)
		h := header{created: now, updated: now, expires: deadline(now, ttl)}
		for i := range n {
			k := fmt.Appendf(nil, "key-%08d", i)
			if err := entries.Put(k, encodeRecord(h, value)); err != nil {
				return err
			}
			if h.expires != noExpiry {
				if err := expiry.Put(indexKey(h.expires, k), nil); err != nil {
					return err
				}
			}
		}
		return tx.Bucket(bucketMeta).Put(metaCount, encodeUint64(uint64(n)))
	})
	if err != nil {
		b.Fatal(err)
	}
	checkConsistency(b, s)
}
