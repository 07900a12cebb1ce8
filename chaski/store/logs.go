package store

import (
	"encoding/binary"
	"errors"

	bolt "go.etcd.io/bbolt"
)

// Logs are append-only, bounded sequences of records kept beside the
// key-value entries (a chat's scrollback per topic). They live in their own
// bucket, so they are never listed with the keys, never expire with them,
// and can never be fetched by a peer: a fetch reads entries only.
var bucketLogs = []byte("logs")

// MaxLogName bounds a log's name (a topic name fits).
const MaxLogName = 255

// ErrLogName is returned for an empty or too long log name.
var ErrLogName = errors.New("store: invalid log name")

// LogRecord is one record to append to the named log.
type LogRecord struct {
	Log  string
	Data []byte
}

// AppendLogs appends records in one transaction (callers batch them: a
// write per chat line would cost a disk sync each) and keeps at most keep
// records per log touched, dropping the oldest.
func (s *Store) AppendLogs(recs []LogRecord, keep int) error {
	if len(recs) == 0 {
		return nil
	}
	for _, r := range recs {
		if r.Log == "" || len(r.Log) > MaxLogName {
			return ErrLogName
		}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.db.Update(func(tx *bolt.Tx) error {
		root, err := tx.CreateBucketIfNotExists(bucketLogs)
		if err != nil {
			return err
		}
		touched := map[string]*bolt.Bucket{}
		for _, r := range recs {
			b := touched[r.Log]
			if b == nil {
				if b, err = root.CreateBucketIfNotExists([]byte(r.Log)); err != nil {
					return err
				}
				touched[r.Log] = b
			}
			seq, err := b.NextSequence()
			if err != nil {
				return err
			}
			var k [8]byte
			binary.BigEndian.PutUint64(k[:], seq)
			if err := b.Put(k[:], append([]byte(nil), r.Data...)); err != nil {
				return err
			}
		}
		if keep <= 0 {
			return nil
		}
		for _, b := range touched {
			// Keys are consecutive sequence numbers: the count is the
			// distance from the first key to the last.
			c := b.Cursor()
			first, _ := c.First()
			if first == nil {
				continue
			}
			n := b.Sequence() - binary.BigEndian.Uint64(first) + 1
			// Collected first: deleting under a moving cursor can skip keys.
			var old [][]byte
			for k := first; k != nil && n > uint64(keep); k, _ = c.Next() {
				old = append(old, append([]byte(nil), k...))
				n--
			}
			for _, k := range old {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// ReadLog returns the newest limit records of a log, oldest first (all
// when limit ≤ 0); an unknown log is empty.
func (s *Store) ReadLog(name string, limit int) ([][]byte, error) {
	var out [][]byte
	err := s.view(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketLogs)
		if root == nil {
			return nil
		}
		b := root.Bucket([]byte(name))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Last(); k != nil && (limit <= 0 || len(out) < limit); k, v = c.Prev() {
			out = append(out, append([]byte(nil), v...))
		}
		return nil
	})
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, err
}
