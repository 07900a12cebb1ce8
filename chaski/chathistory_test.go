package chaski

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/chaski-dev/chaski/chaski/store"
)

// A node with ChatHistory keeps the last N lines of each topic, received
// and its own, in its store: after a restart on the same store they are
// there, oldest first, own lines marked.
func TestChatHistorySurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	st, err := store.Open(path, store.Options{PurgeInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	a := startNode(t, "127.0.0.1", Config{Name: "a", Subscriptions: []string{"chat"}, Store: st, ChatHistory: 5})
	b := startNode(t, "127.0.0.1", Config{Name: "b", Subscriptions: []string{"chat"}})
	connect(t, b, a)
	eventually(t, "b sees a's subscription", func() bool {
		err := b.Publish(context.Background(), "chat", []byte("m0"))
		return err == nil || !errors.Is(err, ErrNoSubscribers)
	})
	if m := recv(t, a); string(m.Data) != "m0" {
		t.Fatalf("got %q", m.Data)
	}
	for i := 1; i < 7; i++ {
		publish(t, b, "chat", fmt.Sprintf("m%d", i))
		if m := recv(t, a); string(m.Data) != fmt.Sprintf("m%d", i) {
			t.Fatalf("got %q", m.Data)
		}
	}
	publish(t, a, "chat", "mine")
	// Before the restart: pending lines are included.
	lines, err := a.ChatHistory("chat", 0)
	if err != nil || len(lines) < 5 {
		t.Fatalf("before restart: %d lines, %v", len(lines), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st2, err := store.Open(path, store.Options{PurgeInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st2.Close() })
	a2 := startNode(t, "127.0.0.1", Config{Name: "a", Subscriptions: []string{"chat"}, Store: st2, ChatHistory: 5})
	lines, err = a2.ChatHistory("chat", 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range lines {
		got = append(got, fmt.Sprintf("%s:%s:%v", l.From, l.Data, l.Own))
	}
	want := []string{"b:m3:false", "b:m4:false", "b:m5:false", "b:m6:false", "a:mine:true"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("history after restart = %v, want %v", got, want)
	}
	if l := lines[0]; l.Topic != "chat" || l.FromID != b.ID() || l.Time.IsZero() {
		t.Errorf("line fields: %+v", l)
	}
	if two, _ := a2.ChatHistory("chat", 2); len(two) != 2 || string(two[1].Data) != "mine" {
		t.Errorf("limit 2: %+v", two)
	}
	// Logs are not keys: the key listing (and so a peer's fetch) never sees them.
	if keys, _ := st2.Keys(); len(keys) != 0 {
		t.Errorf("history shows as keys: %v", keys)
	}
	// Without ChatHistory nothing is kept.
	if l, err := b.ChatHistory("chat", 0); l != nil || err != nil {
		t.Errorf("b without history: %v %v", l, err)
	}
}
