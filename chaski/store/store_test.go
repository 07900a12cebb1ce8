package store

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/goleak"
)

func TestSetGetOverwrite(t *testing.T) {
	clk := newClock()
	s := openTest(t, Options{Now: clk.Now})
	start := clk.Now()

	in := []byte("hello")
	mustSet(t, s, "greeting", in, 0)
	in[0] = 'J' // the store must have copied the input
	mustGet(t, s, "greeting", []byte("hello"))

	out, _ := s.Get("greeting")
	out[0] = 'X' // nor may the output alias stored data
	mustGet(t, s, "greeting", []byte("hello"))

	clk.Advance(time.Minute)
	mustSet(t, s, "greeting", []byte("bonjour"), 0)
	e, err := s.Lookup("greeting")
	if err != nil {
		t.Fatal(err)
	}
	if string(e.Value) != "bonjour" || e.Size != 7 || e.Key != "greeting" {
		t.Fatalf("Lookup = %+v", e)
	}
	if !e.Created.Equal(start) {
		t.Errorf("Created = %v, want %v (kept across overwrite)", e.Created, start)
	}
	if !e.Updated.Equal(start.Add(time.Minute)) {
		t.Errorf("Updated = %v, want %v", e.Updated, start.Add(time.Minute))
	}
	if !e.Expires.IsZero() {
		t.Errorf("Expires = %v, want zero", e.Expires)
	}
	if n := s.Len(); n != 1 {
		t.Errorf("Len = %d, want 1", n)
	}

	if _, err := s.Get("missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(missing) err = %v, want ErrNotFound", err)
	}
	if _, err := s.Lookup("missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Lookup(missing) err = %v, want ErrNotFound", err)
	}
	checkConsistency(t, s)
}

func TestEmptyValue(t *testing.T) {
	s := openTest(t, Options{})
	mustSet(t, s, "nil", nil, 0)
	mustSet(t, s, "empty", []byte{}, 0)
	for _, k := range []string{"nil", "empty"} {
		v, err := s.Get(k)
		if err != nil || v == nil || len(v) != 0 {
			t.Errorf("Get(%q) = %#v, %v; want non-nil empty slice", k, v, err)
		}
	}
}

func TestPop(t *testing.T) {
	rec := &recorder{}
	s := openTest(t, Options{OnEvent: rec.on})
	mustSet(t, s, "k", []byte("v1"), time.Hour)
	rec.take()

	v, err := s.Pop("k")
	if err != nil || string(v) != "v1" {
		t.Fatalf("Pop = %q, %v", v, err)
	}
	if s.Exists("k") {
		t.Error("key still exists after Pop")
	}
	if _, err := s.Pop("k"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Pop err = %v, want ErrNotFound", err)
	}
	evs := rec.take()
	if len(evs) != 1 || evs[0].Kind != EventDelete || evs[0].Key != "k" || evs[0].Size != 2 || evs[0].Expires.IsZero() {
		t.Errorf("events = %+v, want one delete of k", evs)
	}
	checkConsistency(t, s)
}

func TestDeleteUnchanged(t *testing.T) {
	clock := newClock()
	s := openTest(t, Options{Now: clock.Now})
	mustSet(t, s, "k", []byte("v1"), time.Hour)
	e, err := s.Lookup("k")
	if err != nil {
		t.Fatal(err)
	}
	// Written again since the lookup: kept.
	clock.Advance(time.Second)
	mustSet(t, s, "k", []byte("v2"), time.Hour)
	if ok, err := s.DeleteUnchanged("k", e.Updated); ok || err != nil || !s.Exists("k") {
		t.Fatalf("DeleteUnchanged of a rewritten key = %v, %v (exists %v)", ok, err, s.Exists("k"))
	}
	e2, err := s.Lookup("k")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := s.DeleteUnchanged("k", e2.Updated); !ok || err != nil || s.Exists("k") {
		t.Fatalf("DeleteUnchanged of an unchanged key = %v, %v (exists %v)", ok, err, s.Exists("k"))
	}
	if ok, err := s.DeleteUnchanged("k", e2.Updated); ok || err != nil {
		t.Fatalf("DeleteUnchanged of a missing key = %v, %v", ok, err)
	}
	checkConsistency(t, s)
}

func TestPopIsExclusive(t *testing.T) {
	s := openTest(t, Options{})
	fastWrites(s)
	const keys, poppers = 50, 4
	for i := range keys {
		mustSet(t, s, fmt.Sprint("job", i), []byte(fmt.Sprint(i)), 0)
	}
	var mu sync.Mutex
	got := map[string]int{}
	var wg sync.WaitGroup
	for range poppers {
		wg.Go(func() {
			for i := range keys {
				v, err := s.Pop(fmt.Sprint("job", i))
				if errors.Is(err, ErrNotFound) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				got[string(v)]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(got) != keys {
		t.Errorf("popped %d distinct values, want %d", len(got), keys)
	}
	for v, n := range got {
		if n != 1 {
			t.Errorf("value %s popped %d times", v, n)
		}
	}
	if s.Len() != 0 {
		t.Errorf("Len = %d after popping everything", s.Len())
	}
}

func TestDeleteExists(t *testing.T) {
	rec := &recorder{}
	s := openTest(t, Options{OnEvent: rec.on})
	mustSet(t, s, "a", []byte("1"), 0)
	if !s.Exists("a") {
		t.Fatal("Exists(a) = false after Set")
	}
	if err := s.Delete("a"); err != nil {
		t.Fatal(err)
	}
	if s.Exists("a") {
		t.Error("Exists(a) = true after Delete")
	}
	if err := s.Delete("a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Delete(absent) = %v, want ErrNotFound", err)
	}
	want := []Event{{Kind: EventPut, Key: "a", Size: 1}, {Kind: EventDelete, Key: "a", Size: 1}}
	if evs := rec.take(); !reflect.DeepEqual(evs, want) {
		t.Errorf("events = %+v, want %+v", evs, want)
	}
	checkConsistency(t, s)
}

func TestKeysAndEntries(t *testing.T) {
	clk := newClock()
	s := openTest(t, Options{Now: clk.Now})
	fastWrites(s)
	keys := []string{"peer/b", "peer/a", "msg/2", "msg/10", "msg/1", "peer/ä", "zz", "peer"}
	for i, k := range keys {
		mustSet(t, s, k, []byte(strings.Repeat("x", i)), 0)
	}
	mustSet(t, s, "peer/dead", []byte("gone soon"), time.Second)
	clk.Advance(time.Second)

	got, err := s.Keys()
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(keys)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("Keys = %q, want %q", got, want)
	}

	es, err := s.Entries("peer/")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Key)
		if e.Size != len(e.Value) || len(e.Value) != slices.Index(keys, e.Key) {
			t.Errorf("entry %q: size %d, value %q", e.Key, e.Size, e.Value)
		}
	}
	if wantNames := []string{"peer/a", "peer/b", "peer/ä"}; !slices.Equal(names, wantNames) {
		t.Errorf("Entries(peer/) keys = %q, want %q", names, wantNames)
	}

	all, err := s.Entries("")
	if err != nil || len(all) != len(keys) {
		t.Errorf("Entries(\"\") = %d entries, %v; want %d", len(all), err, len(keys))
	}
	none, err := s.Entries("nope")
	if err != nil || none == nil || len(none) != 0 {
		t.Errorf("Entries(nope) = %#v, %v; want empty non-nil", none, err)
	}
}

func TestClear(t *testing.T) {
	clk := newClock()
	rec := &recorder{}
	s := openTest(t, Options{Now: clk.Now, OnEvent: rec.on})
	mustSet(t, s, "a", []byte("1"), 0)
	mustSet(t, s, "b", []byte("2"), time.Second)
	mustSet(t, s, "c", []byte("3"), time.Hour)
	clk.Advance(2 * time.Second) // b is expired but not purged
	rec.take()

	if err := s.Clear(); err != nil {
		t.Fatal(err)
	}
	if n := s.Len(); n != 0 {
		t.Errorf("Len after Clear = %d", n)
	}
	if keys, _ := s.Keys(); len(keys) != 0 {
		t.Errorf("Keys after Clear = %q", keys)
	}
	if evs := rec.take(); !reflect.DeepEqual(evs, []Event{{Kind: EventClear}}) {
		t.Errorf("events = %+v, want one clear", evs)
	}
	if n, err := s.Purge(); n != 0 || err != nil {
		t.Errorf("Purge after Clear = %d, %v; the index must be cleared too", n, err)
	}
	mustSet(t, s, "a", []byte("again"), 0)
	mustGet(t, s, "a", []byte("again"))
	checkConsistency(t, s)
}

func TestLazyExpiry(t *testing.T) {
	clk := newClock()
	rec := &recorder{}
	s := openTest(t, Options{Now: clk.Now, OnEvent: rec.on})
	mustSet(t, s, "short", []byte("v"), 10*time.Second)
	mustSet(t, s, "forever", []byte("w"), 0)
	rec.take()

	clk.Advance(10*time.Second - time.Nanosecond)
	mustGet(t, s, "short", []byte("v"))
	if s.Len() != 2 {
		t.Errorf("Len = %d before expiry, want 2", s.Len())
	}

	clk.Advance(time.Nanosecond) // the deadline itself is already expired
	if _, err := s.Get("short"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(expired) err = %v, want ErrNotFound", err)
	}
	if _, err := s.Lookup("short"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Lookup(expired) err = %v, want ErrNotFound", err)
	}
	if s.Exists("short") {
		t.Error("Exists(expired) = true")
	}
	if keys, _ := s.Keys(); !slices.Equal(keys, []string{"forever"}) {
		t.Errorf("Keys = %q, want [forever]", keys)
	}
	if es, _ := s.Entries(""); len(es) != 1 || es[0].Key != "forever" {
		t.Errorf("Entries = %+v, want only forever", es)
	}
	if s.Len() != 1 {
		t.Errorf("Len = %d after expiry, want 1", s.Len())
	}
	if evs := rec.take(); len(evs) != 0 {
		t.Errorf("reads produced events %+v", evs)
	}
	if _, err := s.Pop("short"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Pop(expired) err = %v, want ErrNotFound", err)
	}
	// Pop found the expired record and removed it: reported as expiry, not
	// as a delete, and exactly once.
	evs := rec.take()
	if len(evs) != 1 || evs[0].Kind != EventExpire || evs[0].Key != "short" || evs[0].Size != 1 {
		t.Errorf("events = %+v, want one expire of short", evs)
	}
	if err := s.Delete("short"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Delete(expired) err = %v", err)
	}
	if n, _ := s.Purge(); n != 0 {
		t.Errorf("Purge = %d, want 0 (already removed)", n)
	}
	checkConsistency(t, s)
}

func TestSetOverExpiredEntry(t *testing.T) {
	clk := newClock()
	rec := &recorder{}
	s := openTest(t, Options{Now: clk.Now, OnEvent: rec.on})
	mustSet(t, s, "k", []byte("old"), time.Second)
	clk.Advance(time.Hour)
	rec.take()

	mustSet(t, s, "k", []byte("new!"), 0)
	evs := rec.take()
	if len(evs) != 2 || evs[0].Kind != EventExpire || evs[0].Size != 3 || evs[1].Kind != EventPut || evs[1].Size != 4 {
		t.Errorf("events = %+v, want expire(old) then put(new)", evs)
	}
	e, err := s.Lookup("k")
	if err != nil {
		t.Fatal(err)
	}
	if !e.Created.Equal(clk.Now()) {
		t.Errorf("Created = %v, want fresh %v: the expired entry is a different entry", e.Created, clk.Now())
	}
	if n, _ := s.Purge(); n != 0 {
		t.Errorf("Purge = %d, want 0: the old deadline must be out of the index", n)
	}
	mustGet(t, s, "k", []byte("new!"))
	checkConsistency(t, s)
}

func TestOverwriteMovesDeadline(t *testing.T) {
	clk := newClock()
	s := openTest(t, Options{Now: clk.Now})
	mustSet(t, s, "k", []byte("v"), time.Second)
	mustSet(t, s, "k", []byte("v"), time.Hour) // extends
	clk.Advance(time.Minute)
	if n, _ := s.Purge(); n != 0 {
		t.Errorf("Purge removed %d entries; the extended entry must survive", n)
	}
	mustGet(t, s, "k", []byte("v"))
	mustSet(t, s, "k", []byte("v"), 0) // becomes immortal
	clk.Advance(10 * time.Hour)
	if n, _ := s.Purge(); n != 0 {
		t.Errorf("Purge removed %d entries after ttl was cleared", n)
	}
	mustGet(t, s, "k", []byte("v"))
	checkConsistency(t, s)
}

func TestPurgeEmitsExpire(t *testing.T) {
	clk := newClock()
	rec := &recorder{}
	s := openTest(t, Options{Now: clk.Now, OnEvent: rec.on})
	t0 := clk.Now()
	mustSet(t, s, "a", []byte("1"), 1*time.Second)
	mustSet(t, s, "b", []byte("22"), 2*time.Second)
	mustSet(t, s, "c", []byte("333"), 3*time.Second)
	mustSet(t, s, "keep", []byte("k"), 0)
	rec.take()

	clk.Advance(2 * time.Second)
	n, err := s.Purge()
	if err != nil || n != 2 {
		t.Fatalf("Purge = %d, %v; want 2", n, err)
	}
	want := []Event{
		{Kind: EventExpire, Key: "a", Size: 1, Expires: t0.Add(1 * time.Second)},
		{Kind: EventExpire, Key: "b", Size: 2, Expires: t0.Add(2 * time.Second)},
	}
	evs := rec.take()
	if len(evs) != len(want) {
		t.Fatalf("events = %+v, want %+v", evs, want)
	}
	for i := range want {
		if evs[i].Kind != want[i].Kind || evs[i].Key != want[i].Key || evs[i].Size != want[i].Size || !evs[i].Expires.Equal(want[i].Expires) {
			t.Errorf("event %d = %+v, want %+v", i, evs[i], want[i])
		}
	}
	if n, _ := s.Purge(); n != 0 {
		t.Errorf("second Purge = %d, want 0", n)
	}
	if keys, _ := s.Keys(); !slices.Equal(keys, []string{"c", "keep"}) {
		t.Errorf("Keys = %q", keys)
	}
	checkConsistency(t, s)
}

func TestPurgeManyInBatches(t *testing.T) {
	clk := newClock()
	var expired int
	var mu sync.Mutex
	s := openTest(t, Options{Now: clk.Now, OnEvent: func(e Event) {
		if e.Kind == EventExpire {
			mu.Lock()
			expired++
			mu.Unlock()
		}
	}})
	fastWrites(s)
	const dying, living = 2*purgeBatch + 137, 300
	for i := range dying {
		mustSet(t, s, fmt.Sprintf("d%05d", i), []byte("x"), time.Duration(1+i%50)*time.Second)
	}
	for i := range living {
		mustSet(t, s, fmt.Sprintf("l%05d", i), []byte("y"), time.Duration(i%2)*time.Hour)
	}
	clk.Advance(time.Minute)
	if got := s.Len(); got != living {
		t.Errorf("Len = %d before purge, want %d", got, living)
	}
	n, err := s.Purge()
	if err != nil || n != dying {
		t.Fatalf("Purge = %d, %v; want %d", n, err, dying)
	}
	mu.Lock()
	if expired != dying {
		t.Errorf("%d expire events, want %d", expired, dying)
	}
	mu.Unlock()
	if got := s.Len(); got != living {
		t.Errorf("Len = %d after purge, want %d", got, living)
	}
	checkConsistency(t, s)
}

func TestTTLZeroNeverExpires(t *testing.T) {
	clk := newClock()
	s := openTest(t, Options{Now: clk.Now, DefaultTTL: time.Second})
	mustSet(t, s, "k", []byte("v"), 0)
	clk.Advance(100 * 365 * 24 * time.Hour)
	if n, err := s.Purge(); n != 0 || err != nil {
		t.Errorf("Purge = %d, %v", n, err)
	}
	mustGet(t, s, "k", []byte("v"))
	e, _ := s.Lookup("k")
	if !e.Expires.IsZero() || e.TTL(clk.Now()) != 0 || e.Expired(clk.Now()) {
		t.Errorf("entry %+v: want no deadline", e)
	}
}

func TestDefaultTTL(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  time.Duration
		want time.Duration // 0 = never
	}{
		{"zero uses package default", 0, DefaultTTL},
		{"custom", 5 * time.Minute, 5 * time.Minute},
		{"negative means never", -1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			s := openTest(t, Options{Now: clk.Now, DefaultTTL: tc.opt})
			mustSet(t, s, "k", []byte("v"), UseDefaultTTL)
			e, err := s.Lookup("k")
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == 0 {
				if !e.Expires.IsZero() {
					t.Errorf("Expires = %v, want never", e.Expires)
				}
				return
			}
			if want := clk.Now().Add(tc.want); !e.Expires.Equal(want) {
				t.Errorf("Expires = %v, want %v", e.Expires, want)
			}
			if got := e.TTL(clk.Now()); got != tc.want {
				t.Errorf("TTL = %v, want %v", got, tc.want)
			}
			clk.Advance(tc.want)
			if s.Exists("k") {
				t.Error("entry outlived the default TTL")
			}
		})
	}
	if DefaultTTL != time.Hour {
		t.Errorf("DefaultTTL = %v, want the original's 3600s", DefaultTTL)
	}
}

func TestInvalidTTL(t *testing.T) {
	s := openTest(t, Options{})
	for _, ttl := range []time.Duration{-2, -time.Second} {
		if err := s.Set("k", nil, ttl); !errors.Is(err, ErrInvalidTTL) {
			t.Errorf("Set(ttl=%v) err = %v, want ErrInvalidTTL", ttl, err)
		}
	}
	if s.Exists("k") {
		t.Error("rejected Set stored a value")
	}
}

func TestHugeTTLSaturates(t *testing.T) {
	clk := newClock()
	s := openTest(t, Options{Now: clk.Now})
	mustSet(t, s, "k", []byte("v"), time.Duration(1<<63-1))
	clk.Advance(200 * 365 * 24 * time.Hour)
	if n, _ := s.Purge(); n != 0 {
		t.Error("an overflowing deadline wrapped into the past")
	}
	mustGet(t, s, "k", []byte("v"))
}

func TestPreEpochClock(t *testing.T) {
	// The index must order negative deadlines correctly too.
	clk := &fakeClock{t: time.Date(1969, 12, 31, 23, 59, 0, 0, time.UTC)}
	s := openTest(t, Options{Now: clk.Now})
	mustSet(t, s, "before", []byte("1"), 30*time.Second) // deadline < 0
	mustSet(t, s, "exact", []byte("2"), time.Minute)     // deadline == 0, the "never" sentinel
	mustSet(t, s, "after", []byte("3"), 2*time.Minute)   // deadline > 0
	clk.Advance(30 * time.Second)
	if n, _ := s.Purge(); n != 1 {
		t.Errorf("Purge at -30s removed %d, want 1", n)
	}
	// A deadline landing on the sentinel is stored 1ns later, never as "never".
	clk.Advance(30*time.Second + time.Nanosecond)
	if s.Exists("exact") {
		t.Error("entry whose deadline is the epoch never expired")
	}
	if n, _ := s.Purge(); n != 1 {
		t.Errorf("Purge at epoch removed %d, want 1", n)
	}
	mustGet(t, s, "after", []byte("3"))
	checkConsistency(t, s)
}

func TestEntryTTL(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		expires time.Time
		ttl     time.Duration
		expired bool
	}{
		{time.Time{}, 0, false},
		{now.Add(time.Minute), time.Minute, false},
		{now, time.Nanosecond, true},
		{now.Add(-time.Hour), time.Nanosecond, true},
	} {
		e := Entry{Expires: tc.expires}
		if got := e.TTL(now); got != tc.ttl {
			t.Errorf("TTL(expires %v) = %v, want %v", tc.expires, got, tc.ttl)
		}
		if got := e.Expired(now); got != tc.expired {
			t.Errorf("Expired(expires %v) = %v, want %v", tc.expires, got, tc.expired)
		}
	}
}

func TestEventKindString(t *testing.T) {
	for k, want := range map[EventKind]string{
		EventPut: "put", EventDelete: "delete", EventExpire: "expire", EventClear: "clear", 0: "EventKind(0)",
	} {
		if got := k.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", k, got, want)
		}
	}
}

func TestPersistence(t *testing.T) {
	clk := newClock()
	path := tempPath(t)
	s, err := Open(path, Options{Now: clk.Now, PurgeInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte{0xAB, 0x00, 0xCD}, 100_000) // spans overflow pages
	mustSet(t, s, "plain", []byte("v"), 0)
	mustSet(t, s, "big", big, 0)
	mustSet(t, s, "ttl", []byte("t"), time.Hour)
	mustSet(t, s, "short", []byte("s"), time.Second)
	mustSet(t, s, "gone", []byte("g"), 0)
	if err := s.Delete("gone"); err != nil {
		t.Fatal(err)
	}
	before, _ := s.Entries("")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	clk.Advance(time.Minute) // "short" expires while the store is closed
	s2 := openAt(t, path, Options{Now: clk.Now})
	mustGet(t, s2, "plain", []byte("v"))
	mustGet(t, s2, "big", big)
	if s2.Exists("gone") || s2.Exists("short") {
		t.Error("deleted or expired key came back")
	}
	after, _ := s2.Entries("")
	var wantAfter []Entry
	for _, e := range before {
		if e.Key != "short" {
			wantAfter = append(wantAfter, e)
		}
	}
	if len(after) != len(wantAfter) {
		t.Fatalf("entries after reopen: %d, want %d", len(after), len(wantAfter))
	}
	for i := range after {
		a, b := after[i], wantAfter[i]
		if a.Key != b.Key || !bytes.Equal(a.Value, b.Value) || !a.Created.Equal(b.Created) ||
			!a.Updated.Equal(b.Updated) || !a.Expires.Equal(b.Expires) {
			t.Errorf("entry %q changed across reopen: %+v -> %+v", b.Key, b, a)
		}
	}
	if n, _ := s2.Purge(); n != 1 {
		t.Errorf("Purge after reopen = %d, want 1 (the index persisted)", n)
	}
	if s2.Len() != 3 {
		t.Errorf("Len = %d, want 3", s2.Len())
	}
	checkConsistency(t, s2)
}

func TestFilePermissions(t *testing.T) {
	path := tempPath(t)
	openAt(t, path, Options{})
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("file mode %v, want 0600", perm)
	}
	di, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if perm := di.Mode().Perm(); perm != 0o700 {
		t.Errorf("dir mode %v, want 0700", perm)
	}
}

func TestInvalidKeysAndValues(t *testing.T) {
	s := openTest(t, Options{})
	bad := map[string]string{
		"empty":        "",
		"too long":     strings.Repeat("k", MaxKeyLen+1),
		"invalid utf8": "abc\xff",
		"truncated":    "\xe2\x82",
		"nul":          "a\x00b",
		"newline":      "line\nbreak",
		"escape":       "\x1b[31mred",
		"del":          "x\x7f",
		"c1 control":   "x\u0085",
	}
	for name, key := range bad {
		if err := s.Set(key, []byte("v"), 0); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("%s: Set err = %v, want ErrInvalidKey", name, err)
		}
		if _, err := s.Get(key); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("%s: Get err = %v, want ErrInvalidKey", name, err)
		}
		if _, err := s.Lookup(key); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("%s: Lookup err = %v", name, err)
		}
		if _, err := s.Pop(key); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("%s: Pop err = %v", name, err)
		}
		if err := s.Delete(key); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("%s: Delete err = %v", name, err)
		}
		if s.Exists(key) {
			t.Errorf("%s: Exists = true", name)
		}
	}
	good := []string{strings.Repeat("k", MaxKeyLen), "ключ/🔑", "with space", "a"}
	for _, key := range good {
		mustSet(t, s, key, []byte(key), 0)
		mustGet(t, s, key, []byte(key))
	}

	if err := s.Set("big", make([]byte, MaxValueLen+1), 0); !errors.Is(err, ErrValueTooLarge) {
		t.Errorf("oversize Set err = %v, want ErrValueTooLarge", err)
	}
	if s.Exists("big") {
		t.Error("oversize value was stored")
	}
	max := make([]byte, MaxValueLen)
	max[len(max)-1] = 7
	mustSet(t, s, "max", max, 0)
	mustGet(t, s, "max", max)
	checkConsistency(t, s)
}

func TestClosed(t *testing.T) {
	s, err := Open(tempPath(t), Options{PurgeInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	mustSet(t, s, "k", []byte("v"), 0)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	checks := map[string]error{}
	_, checks["Get"] = s.Get("k")
	_, checks["Lookup"] = s.Lookup("k")
	_, checks["Pop"] = s.Pop("k")
	checks["Set"] = s.Set("k", nil, 0)
	checks["Delete"] = s.Delete("k")
	_, checks["Keys"] = s.Keys()
	_, checks["Entries"] = s.Entries("")
	checks["Clear"] = s.Clear()
	_, checks["Purge"] = s.Purge()
	for op, err := range checks {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", op, err)
		}
	}
	if s.Exists("k") || s.Len() != 0 {
		t.Error("Exists/Len report data after Close")
	}
	if s.Path() == "" {
		t.Error("Path empty after Close")
	}
}

func TestConcurrentCloseIsSafe(t *testing.T) {
	s, err := Open(tempPath(t), Options{PurgeInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	fastWrites(s)
	var writes atomic.Int64
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				k := fmt.Sprint(g, "-", i)
				// Half the keys expire at once, so the purge goroutine
				// has work to do while Close is stopping it.
				if err := s.Set(k, []byte("v"), time.Duration(i%2)*time.Millisecond); err != nil {
					if !errors.Is(err, ErrClosed) {
						t.Errorf("Set: %v", err)
					}
					return
				}
				writes.Add(1)
				if _, err := s.Get(k); err != nil && !errors.Is(err, ErrClosed) && !errors.Is(err, ErrNotFound) {
					t.Errorf("Get: %v", err)
					return
				}
			}
		})
	}
	pollUntil(t, "some writes", func() bool { return writes.Load() >= 20 })
	var cw sync.WaitGroup
	for range 3 {
		cw.Go(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
	cw.Wait()
	wg.Wait()
}

func mustKeys(t testing.TB, s *Store) []string {
	t.Helper()
	keys, err := s.Keys()
	if err != nil {
		t.Fatalf("Keys: %v", err)
	}
	return keys
}

func TestOpenRejectsForeignFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "not-a-db")
	if err := os.WriteFile(path, bytes.Repeat([]byte("SQLite format 3\x00"), 512), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, Options{PurgeInterval: -1})
	if err == nil {
		s.Close()
		t.Fatal("Open accepted a non-bbolt file")
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the path", err)
	}
}

func TestCorruptRecord(t *testing.T) {
	s := openTest(t, Options{})
	mustSet(t, s, "ok", []byte("v"), 0)
	// Write a record behind the store's back, as a buggy or foreign writer
	// would, keeping the count right so only the record is at fault.
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketEntries).Put([]byte("bad"), []byte{9, 1, 2}); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(metaCount, encodeUint64(2))
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("bad"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Get(bad) err = %v, want ErrCorrupt", err)
	}
	if _, err := s.Keys(); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Keys err = %v, want ErrCorrupt", err)
	}
	mustGet(t, s, "ok", []byte("v"))
	// Set and Delete can repair it.
	mustSet(t, s, "bad", []byte("fixed"), time.Hour)
	mustGet(t, s, "bad", []byte("fixed"))
	if err := s.Delete("bad"); err != nil {
		t.Fatal(err)
	}
	if s.Len() != 1 {
		t.Errorf("Len = %d, want 1", s.Len())
	}
	checkConsistency(t, s)
}

func TestReentrantOnEvent(t *testing.T) {
	// OnEvent may write to the store; the nested write's event must still be
	// delivered, after the outer one, without deadlock.
	var s *Store
	rec := &recorder{}
	var nestedErr error
	opts := Options{OnEvent: func(e Event) {
		rec.on(e)
		if e.Kind == EventPut && !strings.HasPrefix(e.Key, "copy/") {
			v, err := s.Get(e.Key)
			if err == nil {
				err = s.Set("copy/"+e.Key, v, 0)
			}
			if err != nil {
				nestedErr = err
			}
		}
	}}
	s = openTest(t, opts)
	mustSet(t, s, "a", []byte("1"), 0)
	if nestedErr != nil {
		t.Fatal(nestedErr)
	}
	mustGet(t, s, "copy/a", []byte("1"))
	evs := rec.take()
	if len(evs) != 2 || evs[0].Key != "a" || evs[1].Key != "copy/a" {
		t.Errorf("events = %+v, want put a then put copy/a", evs)
	}
}

func TestPanickingOnEventDoesNotWedge(t *testing.T) {
	var calls int
	var mu sync.Mutex
	s := openTest(t, Options{OnEvent: func(e Event) {
		mu.Lock()
		calls++
		mu.Unlock()
		if e.Key == "boom" {
			panic("listener bug")
		}
	}})
	func() {
		defer func() {
			if recover() == nil {
				t.Error("panic in OnEvent was swallowed")
			}
		}()
		_ = s.Set("boom", nil, 0)
	}()
	mustGet(t, s, "boom", []byte{}) // committed before the callback ran
	mustSet(t, s, "after", nil, 0)
	mu.Lock()
	defer mu.Unlock()
	if calls != 2 {
		t.Errorf("OnEvent called %d times, want 2 (delivery continues after a panic)", calls)
	}
}

// TestConcurrentEventsReplay hammers a small key space from several
// goroutines and checks that replaying the event stream reproduces the final
// contents exactly, which holds only if events arrive in commit order and
// every change is reported once.
func TestConcurrentEventsReplay(t *testing.T) {
	clk := newClock()
	var mu sync.Mutex
	model := map[string]int{} // key -> size
	var replayErr error
	apply := func(e Event) {
		mu.Lock()
		defer mu.Unlock()
		_, had := model[e.Key]
		switch e.Kind {
		case EventPut:
			model[e.Key] = e.Size
		case EventDelete, EventExpire:
			if !had && replayErr == nil {
				replayErr = fmt.Errorf("%v for key %q not in the mirror", e.Kind, e.Key)
			}
			delete(model, e.Key)
		case EventClear:
			clear(model)
		}
	}
	s := openTest(t, Options{Now: clk.Now, OnEvent: apply})
	fastWrites(s)

	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 42))
			for range 300 {
				k := fmt.Sprint("k", r.IntN(20))
				var err error
				switch op := r.IntN(100); {
				case op < 50:
					ttl := time.Duration(r.IntN(3)) * time.Second
					err = s.Set(k, make([]byte, r.IntN(64)), ttl)
				case op < 65:
					err = s.Delete(k)
				case op < 75:
					_, err = s.Pop(k)
				case op < 85:
					_, err = s.Get(k)
				case op < 95:
					clk.Advance(500 * time.Millisecond)
					_, err = s.Purge()
				case op < 96:
					err = s.Clear()
				default:
					s.Len()
					_, err = s.Keys()
				}
				if err != nil && !errors.Is(err, ErrNotFound) {
					t.Errorf("op on %s: %v", k, err)
					return
				}
			}
		})
	}
	wg.Wait()

	// Remove the expired leftovers so the mirror and the records agree.
	clk.Advance(time.Hour)
	if _, err := s.Purge(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if replayErr != nil {
		t.Fatal(replayErr)
	}
	es, err := s.Entries("")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, e := range es {
		got[e.Key] = e.Size
	}
	if !reflect.DeepEqual(got, model) {
		t.Errorf("store %v, replayed events %v", got, model)
	}
	checkConsistency(t, s)
}

func TestBackgroundPurgeAndNoLeak(t *testing.T) {
	defer goleak.VerifyNone(t)
	clk := newClock()
	expired := make(chan Event, 10)
	s, err := Open(tempPath(t), Options{
		Now:           clk.Now,
		PurgeInterval: 5 * time.Millisecond,
		OnEvent: func(e Event) {
			if e.Kind == EventExpire {
				expired <- e
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	mustSet(t, s, "soon", []byte("v"), time.Minute)
	mustSet(t, s, "later", []byte("v"), time.Hour)
	clk.Advance(time.Minute)

	select {
	case e := <-expired:
		if e.Key != "soon" {
			t.Errorf("background purge expired %q, want soon", e.Key)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("background purge did not run")
	}
	pollUntil(t, "record removal", func() bool {
		var n uint64
		_ = s.view(func(tx *bolt.Tx) error { n, _ = readCount(tx); return nil })
		return n == 1
	})
	mustGet(t, s, "later", []byte("v"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-expired:
		t.Errorf("unexpected extra expiry %+v", e)
	default:
	}
}

func TestLenCountsOnlyLive(t *testing.T) {
	clk := newClock()
	s := openTest(t, Options{Now: clk.Now})
	fastWrites(s)
	for i := range 100 {
		ttl := time.Duration(0)
		if i%4 == 0 {
			ttl = time.Second
		}
		mustSet(t, s, fmt.Sprint(i), nil, ttl)
	}
	if s.Len() != 100 {
		t.Fatalf("Len = %d, want 100", s.Len())
	}
	clk.Advance(time.Second)
	if s.Len() != 75 {
		t.Errorf("Len = %d after expiry, want 75", s.Len())
	}
	if keys := mustKeys(t, s); len(keys) != s.Len() {
		t.Errorf("Keys has %d, Len says %d", len(keys), s.Len())
	}
}
