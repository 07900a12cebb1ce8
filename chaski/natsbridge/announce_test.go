package natsbridge

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/chaski-dev/chaski/chaski"
	"github.com/chaski-dev/chaski/chaski/wire"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
)

func TestBatchRoundTrip(t *testing.T) {
	origin := uuid.MustParse("5a0c3c52-8d3e-4a55-9a43-fd4b2d1f0c11")
	in := []claimed{
		{seq: 7, at: 1764680000000000000, data: []byte("one")},
		{seq: 9, at: 1764679999999999000, data: nil}, // an earlier time, an empty payload
		{seq: 10, at: 1764680000000005000, data: bytes.Repeat([]byte("x"), 300)},
	}
	body := appendBatch(nil, in)
	var out []claimed
	err := parseBatch(origin.String()+"/3", body, func(id wire.MessageID, at int64, data []byte) {
		if id.Origin != wire.NodeID(origin) {
			t.Fatalf("origin %v", id.Origin)
		}
		out = append(out, claimed{id.Seq, at, data})
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("%d messages, want %d", len(out), len(in))
	}
	for i := range in {
		if out[i].seq != in[i].seq || out[i].at != in[i].at || !bytes.Equal(out[i].data, in[i].data) {
			t.Fatalf("message %d: %+v, want %+v", i, out[i], in[i])
		}
	}

	// Malformed: every one is refused, none panics.
	for name, c := range map[string]struct {
		header string
		body   []byte
	}{
		"no count":      {origin.String(), body},
		"bad origin":    {"nope/3", body},
		"zero count":    {origin.String() + "/0", body},
		"count too big": {origin.String() + "/4", body},
		"count small":   {origin.String() + "/2", body}, // bytes left over
		"truncated":     {origin.String() + "/3", body[:len(body)-1]},
		"zero seq":      {origin.String() + "/1", appendBatch(nil, []claimed{{seq: 0, at: 1, data: []byte("a")}})},
		"length beyond": {origin.String() + "/1", []byte{1, 2, 0x7f, 'a'}},
	} {
		if err := parseBatch(c.header, c.body, func(wire.MessageID, int64, []byte) {}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// A batched announcement from another bridge puts every message into the
// mesh with its own id and time, from nats, and a repeated one is dropped
// as a duplicate.
func TestBatchInjected(t *testing.T) {
	s := startServer(t, nil)
	n := startNode(t, "b", "chat")
	br := startBridge(t, n, Config{URLs: []string{s.URL()}})
	interest(t, []*natsServer{s}, AnnounceSubject("chaski.chat"), 1)
	got := make(chan *chaski.Message, 16)
	go func() {
		for m := range n.Messages() {
			got <- m
		}
	}()

	origin := uuid.MustParse("0b5e8f4a-1c2d-5e6f-8a9b-0c1d2e3f4a5b")
	base := time.Now().Add(-time.Second).UnixNano()
	msgs := []claimed{{1, base, []byte("b-0")}, {2, base + 1000, []byte("b-1")}, {5, base + 500, []byte("b-2")}}
	m := &nats.Msg{Subject: AnnounceSubject("chaski.chat"), Header: nats.Header{HeaderBatch: {origin.String() + "/3"}},
		Data: appendBatch(nil, msgs)}
	pub := natsConn(t, s.URL())
	for i := 0; i < 2; i++ { // the second copy is a duplicate of every message
		if err := pub.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Flush(); err != nil {
		t.Fatal(err)
	}
	for i, c := range msgs {
		select {
		case g := <-got:
			if want := fmt.Sprintf("b-%d", i); string(g.Data) != want || g.From != "nats" || g.Seq != c.seq ||
				g.FromID != origin.String() || g.Time.UnixNano() != c.at {
				t.Fatalf("message %d: %q from %s, id %s/%d at %d; want %q from nats, id %s/%d at %d",
					i, g.Data, g.From, g.FromID, g.Seq, g.Time.UnixNano(), want, origin, c.seq, c.at)
			}
		case <-time.After(waitTimeout):
			t.Fatalf("got %d of %d batched messages", i, len(msgs))
		}
	}
	eventually(t, "the second copy counted as duplicates", func() bool { return br.Info().Duplicates == 3 })
	select {
	case g := <-got:
		t.Fatalf("delivered again: %q", g.Data)
	default:
	}
}
