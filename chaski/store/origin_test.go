package store

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// An entry fetched from a peer keeps its origin across a reopen, loses it
// when written locally again, and the value round-trips byte for byte
// whichever record version holds it.
func TestSetFromKeepsOrigin(t *testing.T) {
	clk := newClock()
	path := tempPath(t)
	s, err := Open(path, Options{Now: clk.Now, PurgeInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	bin := []byte{0, 1, 2, 0xff}
	if err := s.SetFrom("far", bin, time.Hour, "bob 0123abcd"); err != nil {
		t.Fatal(err)
	}
	mustSet(t, s, "near", []byte("here"), 0)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openAt(t, path, Options{Now: clk.Now, PurgeInterval: -1})
	e, err := s2.Lookup("far")
	if err != nil {
		t.Fatal(err)
	}
	if e.Origin != "bob 0123abcd" || !bytes.Equal(e.Value, bin) || e.Size != len(bin) {
		t.Fatalf("fetched entry after reopen = %+v", e)
	}
	if e.Expires.IsZero() {
		t.Error("fetched entry lost its deadline")
	}
	if n, err := s2.Lookup("near"); err != nil || n.Origin != "" {
		t.Fatalf("local entry = %+v, %v; want no origin", n, err)
	}
	// The local entry is still written in the first record version, so
	// older builds read it.
	_ = s2.db.View(func(tx *bolt.Tx) error {
		if raw := tx.Bucket(bucketEntries).Get([]byte("near")); raw[0] != recordVersion {
			t.Errorf("local record version %d, want %d", raw[0], recordVersion)
		}
		if raw := tx.Bucket(bucketEntries).Get([]byte("far")); raw[0] != recordVersionOrigin {
			t.Errorf("fetched record version %d, want %d", raw[0], recordVersionOrigin)
		}
		return nil
	})
	mustSet(t, s2, "far", []byte("mine now"), 0)
	if e, _ := s2.Lookup("far"); e.Origin != "" {
		t.Errorf("origin %q kept after a local Set", e.Origin)
	}
	checkConsistency(t, s2)
}

func TestSetFromRejectsBadOrigin(t *testing.T) {
	s := openTest(t, Options{})
	for _, o := range []string{strings.Repeat("x", MaxOriginLen+1), "bob\x1b[2J", "a\nb"} {
		if err := s.SetFrom("k", []byte("v"), 0, o); err == nil {
			t.Errorf("SetFrom origin %q: no error", o)
		}
	}
	if s.Exists("k") {
		t.Error("a refused SetFrom stored the value")
	}
	if err := s.SetFrom("k", []byte("v"), 0, strings.Repeat("é", MaxOriginLen/2)); err != nil {
		t.Errorf("origin of %d bytes refused: %v", MaxOriginLen-1, err)
	}
}

// A version-2 record whose origin length runs past its end is corrupt, not
// a panic or a wrong value.
func TestTruncatedOriginRecord(t *testing.T) {
	s := openTest(t, Options{})
	rec := encodeRecord(header{origin: "bob"}, []byte("v"))
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketEntries).Put([]byte("bad"), rec[:headerLen+2]); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(metaCount, encodeUint64(1))
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("bad"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Get of a truncated origin record: %v, want ErrCorrupt", err)
	}
}

// State records live beside the entries without being one: not listed,
// not readable by Get (so not by a peer's fetch), kept across Clear and a
// reopen, deleted by a nil value.
func TestStateRecords(t *testing.T) {
	path := tempPath(t)
	s, err := Open(path, Options{PurgeInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.State("tui.transfers"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("State of a missing record: %v, want ErrNotFound", err)
	}
	if err := s.SetState("tui.transfers", []byte(`[1,2]`)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("tui.transfers"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get sees a state record: %v", err)
	}
	if keys, _ := s.Keys(); len(keys) != 0 || s.Len() != 0 {
		t.Errorf("state record listed: keys %v, Len %d", keys, s.Len())
	}
	if err := s.Clear(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openAt(t, path, Options{PurgeInterval: -1})
	v, err := s2.State("tui.transfers")
	if err != nil || string(v) != `[1,2]` {
		t.Fatalf("State after Clear and reopen = %q, %v", v, err)
	}
	if err := s2.SetState("tui.transfers", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.State("tui.transfers"); !errors.Is(err, ErrNotFound) {
		t.Errorf("State after delete: %v, want ErrNotFound", err)
	}
	if err := s2.SetState("bad\x00name", []byte("x")); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("SetState with a control character: %v, want ErrInvalidKey", err)
	}
}
