package chaski

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/chaski-dev/chaski/chaski/store"
)

// A fetched value remembers which peer answered (the far end of a chain,
// not the relay in between); a local put does not claim one.
func TestFetchRecordsTheAnsweringPeer(t *testing.T) {
	a, _, c := chain(t)
	if err := c.StorePut("greeting", []byte("hello"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := a.StorePut("mine", []byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	r, err := a.FetchWith(ctx, "greeting", FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r.From != "C" || r.FromID != c.ID() {
		t.Fatalf("FetchResult from %q (%s), want C (%s)", r.From, r.FromID, c.ID())
	}
	es, err := a.StoreEntries()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]StoreEntry{}
	for _, e := range es {
		got[e.Key] = e
	}
	if e := got["greeting"]; e.From != "C" || e.FromID != c.ID() {
		t.Errorf("fetched entry from %q (%q), want C (%s)", e.From, e.FromID, c.ID())
	}
	if e := got["mine"]; e.From != "" || e.FromID != "" {
		t.Errorf("local entry claims to come from %q (%q)", e.From, e.FromID)
	}
}

func TestNodeState(t *testing.T) {
	n := startNode(t, "127.0.0.1", Config{Name: "A", Store: openStore(t, store.Options{})})
	if _, err := n.LoadState("tui.transfers"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("LoadState of nothing: %v, want ErrNotFound", err)
	}
	if err := n.SaveState("tui.transfers", []byte("[]")); err != nil {
		t.Fatal(err)
	}
	if v, err := n.LoadState("tui.transfers"); err != nil || string(v) != "[]" {
		t.Fatalf("LoadState = %q, %v", v, err)
	}
	if es, _ := n.StoreEntries(); len(es) != 0 {
		t.Errorf("a state record shows as a store entry: %+v", es)
	}
	bare := startNode(t, "127.0.0.1", Config{Name: "B"})
	if err := bare.SaveState("x", []byte("y")); !errors.Is(err, ErrNoStore) {
		t.Errorf("SaveState without a store: %v, want ErrNoStore", err)
	}
}
