package chaski

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/chaski-dev/chaski/chaski/wire"
)

// drain takes everything from q as the writer would and returns the bytes
// in the order they would reach the socket.
func drain(q *sendQueue) []byte {
	var out []byte
	for {
		ctrl, data := q.take(nil, nil, writeBatchBudget)
		if len(ctrl) == 0 && len(data) == 0 {
			return out
		}
		for _, f := range ctrl {
			out = append(out, f...)
		}
		for _, s := range data {
			out = append(out, s.b...)
		}
		q.done(data)
	}
}

// Small frames are copied: the producer may reuse its buffer at once, and
// a stream of them shares a few pooled segments.
func TestSendQueueCopiesSmallFrames(t *testing.T) {
	q := newSendQueue(1 << 20)
	ctx := context.Background()
	scratch := make([]byte, 100)
	var want []byte
	for i := 0; i < 1000; i++ {
		for j := range scratch {
			scratch[j] = byte(i + j)
		}
		want = append(want, scratch...)
		if err := q.pushData(ctx, nil, scratch, true); err != nil {
			t.Fatal(err)
		}
	}
	if segs := len(q.data) - q.dataHead; segs != 2 {
		t.Fatalf("1,000 frames of 100 B took %d segments, want 2 (64 KiB each)", segs)
	}
	if q.backlog() != 100_000 {
		t.Fatalf("backlog %d, want 100000", q.backlog())
	}
	if got := drain(q); !bytes.Equal(got, want) {
		t.Fatal("the bytes taken differ from the frames pushed")
	}
	if q.backlog() != 0 || len(q.free) != 2 {
		t.Fatalf("after draining: backlog %d, %d free segments (want 0 and 2)", q.backlog(), len(q.free))
	}
	// The next frames reuse a free segment.
	seg := q.free[len(q.free)-1]
	_ = q.pushData(ctx, nil, scratch, true)
	if &q.data[q.dataHead].b[0] != &seg[:1][0] {
		t.Fatal("a free segment was not reused")
	}
}

// Large frames are queued as they are, unless borrowed; control frames come
// first; order within the data lane is kept across the two kinds.
func TestSendQueueLargeFramesAndOrder(t *testing.T) {
	q := newSendQueue(1 << 20)
	ctx := context.Background()
	big := bytes.Repeat([]byte{7}, segCopyMax+1)
	borrowedBig := bytes.Repeat([]byte{8}, segCopyMax+1)
	_ = q.pushData(ctx, nil, []byte("a"), true)
	_ = q.pushData(ctx, nil, big, false)
	_ = q.pushData(ctx, nil, borrowedBig, true)
	_ = q.pushData(ctx, nil, []byte("b"), true)
	q.pushCtrl([]byte("C"))
	if &q.data[q.dataHead+1].b[0] != &big[0] {
		t.Fatal("a large frame was copied")
	}
	if &q.data[q.dataHead+2].b[0] == &borrowedBig[0] {
		t.Fatal("a borrowed large frame was not copied")
	}
	want := append(append(append([]byte("Ca"), big...), borrowedBig...), 'b')
	if got := drain(q); !bytes.Equal(got, want) {
		t.Fatal("wrong order or content")
	}
}

// A full lane blocks pushData until the writer hands bytes back; relays
// may overfill it up to the hard limit after their patience, then fail.
func TestSendQueueBounds(t *testing.T) {
	q := newSendQueue(1000)
	ctx := context.Background()
	f := make([]byte, 600)
	_ = q.pushData(ctx, nil, f, true)
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := q.pushData(short, nil, f, true); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("push into a full lane: %v, want a timeout", err)
	}
	done := make(chan error, 1)
	go func() { done <- q.pushData(ctx, nil, f, true) }()
	ctrl, data := q.take(nil, nil, writeBatchBudget)
	if len(ctrl) != 0 || len(data) != 1 {
		t.Fatalf("took %d control and %d data pieces", len(ctrl), len(data))
	}
	q.done(data)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	r := &relayFrame{body: make([]byte, 600-wire.HeaderLen)}
	for i := 0; i < 2; i++ { // 600 queued: 1,200 then 1,800 bytes
		if err := q.pushRelay(ctx, nil, r, time.Millisecond, 2000); err != nil {
			t.Fatalf("relay within the hard limit: %v", err)
		}
	}
	if err := q.pushRelay(ctx, nil, r, time.Millisecond, 2000); !errors.Is(err, errQueueOverflow) {
		t.Fatalf("relay past the hard limit: %v, want errQueueOverflow", err)
	}
}

// Chunk bodies come back only at the size of the latest transfer, never
// from the reader's shared blocks, and in bounded number.
func TestBodyRecycler(t *testing.T) {
	var b bodyRecycler
	big := make([]byte, 256<<10+24)
	b.put(big)
	if p := b.get(len(big)); &p[0] != &big[0] {
		t.Fatal("a body of the same size was not reused")
	}
	if p := b.get(len(big)); &p[0] == &big[0] {
		t.Fatal("a body was handed out twice")
	}
	b.put(make([]byte, 4<<10)) // cut from a shared block: never kept
	if len(b.free) != 0 {
		t.Fatal("a small body was kept")
	}
	for i := 0; i < 2*maxRecycledBodies; i++ {
		b.put(make([]byte, 128<<10))
	}
	if len(b.free) != maxRecycledBodies || b.size != 128<<10 {
		t.Fatalf("%d bodies of %d bytes kept, want %d of %d", len(b.free), b.size, maxRecycledBodies, 128<<10)
	}
	if p := b.get(len(big)); len(p) != len(big) {
		t.Fatal("wrong length for another size")
	}
}

// A relayed frame is assembled in the lane with its TTL and hop count
// rewritten; the received body it was made from is left as it was.
func TestRelayFrameAssembledInLane(t *testing.T) {
	for _, size := range []int{100, segCopyMax + 1} {
		p := wire.Publish{ID: wire.MessageID{Origin: wire.NodeID{9}, Seq: 7}, TTL: 5, Hops: 2, Name: "n", Payload: bytes.Repeat([]byte{3}, size)}
		in, err := wire.AppendPublishFrame(nil, "topic", &p)
		if err != nil {
			t.Fatal(err)
		}
		body := in[wire.HeaderLen+len("topic"):]
		q := newSendQueue(1 << 20)
		r := &relayFrame{topic: "topic", body: body, ttl: p.TTL - 1, hops: p.Hops + 1}
		if err := q.pushRelay(context.Background(), nil, r, time.Millisecond, 2<<20); err != nil {
			t.Fatal(err)
		}
		out := drain(q)
		f, err := wire.NewReader(bytes.NewReader(out), wire.HardMaxBody).ReadFrame()
		if err != nil || f.Kind != wire.KindPublish || f.Topic != "topic" {
			t.Fatalf("size %d: %v %v %q", size, err, f.Kind, f.Topic)
		}
		got, err := wire.ParsePublish(f.Body)
		if err != nil {
			t.Fatal(err)
		}
		if got.TTL != 4 || got.Hops != 3 || got.ID != p.ID || !bytes.Equal(got.Payload, p.Payload) {
			t.Fatalf("size %d: relayed ttl %d hops %d id %v", size, got.TTL, got.Hops, got.ID)
		}
		if orig, _ := wire.ParsePublish(body); orig.TTL != 5 || orig.Hops != 2 {
			t.Fatal("the received body was modified")
		}
	}
}

// Relays spend their patience once per congestion episode: after one has
// waited it out, the next ones queue at once, until the lane drains below
// its bound and a new episode starts with a wait again.
func TestRelayPatienceOncePerEpisode(t *testing.T) {
	q := newSendQueue(1000)
	ctx := context.Background()
	r := &relayFrame{body: make([]byte, 600-wire.HeaderLen)}
	const patience = 200 * time.Millisecond
	timed := func() time.Duration {
		start := time.Now()
		if err := q.pushRelay(ctx, nil, r, patience, 100_000); err != nil {
			t.Fatal(err)
		}
		return time.Since(start)
	}
	if d := timed(); d >= patience {
		t.Fatalf("a relay into an empty lane waited %v", d)
	}
	if d := timed(); d < patience {
		t.Fatalf("the first relay over the bound waited only %v", d)
	}
	for i := 0; i < 5; i++ {
		if d := timed(); d >= patience {
			t.Fatalf("relay %d of the same episode waited %v", i, d)
		}
	}
	drain(q) // below the bound: the episode ends
	timed()  // empty lane
	if d := timed(); d < patience {
		t.Fatalf("the first relay of a new episode waited only %v", d)
	}
}
