package wire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/vmihailenco/msgpack/v5"
)

func TestPreamble(t *testing.T) {
	p := AppendPreamble(nil)
	if len(p) != PreambleLen {
		t.Fatalf("preamble length %d", len(p))
	}
	if v, err := ParsePreamble(p); err != nil || v != Version {
		t.Fatalf("ParsePreamble = %d, %v", v, err)
	}
	bad := append([]byte(nil), p...)
	bad[4] = Version + 1
	if _, err := ParsePreamble(bad); !errors.Is(err, ErrVersion) {
		t.Fatalf("version mismatch not reported: %v", err)
	}
	if _, err := ParsePreamble([]byte("GET / HTTP/1.1")); !errors.Is(err, ErrBadMagic) {
		t.Fatalf("garbage preamble: %v", err)
	}
}

func TestPublishRoundTrip(t *testing.T) {
	p := Publish{ID: MessageID{Seq: 42}, Time: 1234567890, TTL: 9, Hops: 2, Name: "alice", Payload: []byte("hello world")}
	p.ID.Origin[0] = 7
	frame, err := AppendPublishFrame(nil, "chat", &p)
	if err != nil {
		t.Fatal(err)
	}
	r := NewReader(bufio.NewReader(bytes.NewReader(frame)), 0)
	f, err := r.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	if f.Kind != KindPublish || f.Topic != "chat" {
		t.Fatalf("frame %v %q", f.Kind, f.Topic)
	}
	got, err := ParsePublish(f.Body)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != p.ID || got.Time != p.Time || got.TTL != 9 || got.Hops != 2 || got.Name != "alice" || string(got.Payload) != "hello world" {
		t.Fatalf("round trip mismatch: %+v", got)
	}
	// The relay offsets must point at ttl and hops.
	if f.Body[PublishTTLOffset] != 9 || f.Body[PublishHopsOffset] != 2 {
		t.Fatal("relay offsets do not match the layout")
	}
	if _, err := r.ReadFrame(); err != io.EOF {
		t.Fatalf("clean end of stream should be io.EOF, got %v", err)
	}
}

func TestFrameLimits(t *testing.T) {
	var h [HeaderLen]byte
	PutHeader(h[:], KindPublish, 3, 0)
	binary.BigEndian.PutUint32(h[4:], 0xFFFFFFFF) // 4 GiB announced
	r := NewReader(bufio.NewReader(bytes.NewReader(h[:])), 1<<20)
	if _, err := r.ReadFrame(); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("4 GiB length accepted: %v", err)
	}
	if _, err := AppendFrame(nil, KindPublish, strings.Repeat("x", MaxTopicLen+1), nil); !errors.Is(err, ErrTopicLength) {
		t.Fatalf("long topic accepted: %v", err)
	}
	// Truncated body is an unexpected EOF, not a clean EOF.
	frame, _ := AppendFrame(nil, KindSubs, "", []byte{1, 2, 3, 4})
	r = NewReader(bufio.NewReader(bytes.NewReader(frame[:len(frame)-2])), 0)
	if _, err := r.ReadFrame(); err != io.ErrUnexpectedEOF {
		t.Fatalf("truncated frame: %v", err)
	}
}

func TestPingRoundTrip(t *testing.T) {
	f := AppendPingFrame(nil, KindPing, &Ping{ID: 99, Echo: true, Padding: make([]byte, 100)})
	fr, err := NewReader(bufio.NewReader(bytes.NewReader(f)), 0).ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParsePing(fr.Body)
	if err != nil || p.ID != 99 || !p.Echo || len(p.Padding) != 100 {
		t.Fatalf("ping round trip: %+v %v", p, err)
	}
	if _, err := ParsePing([]byte{1, 2}); !errors.Is(err, ErrMalformed) {
		t.Fatal("short ping accepted")
	}
}

func TestControlRoundTrip(t *testing.T) {
	in := Hello{Version: Version, ID: make([]byte, 16), Name: "n1", Listen: "127.0.0.1:1", Subs: []string{"a", "b"}, Root: true}
	body, err := Marshal(&in)
	if err != nil {
		t.Fatal(err)
	}
	var out Hello
	if err := Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	if out.Name != "n1" || len(out.Subs) != 2 || !out.Root || out.Listen != in.Listen {
		t.Fatalf("hello round trip: %+v", out)
	}
}

func TestCheckMsgpackRejectsHostileBodies(t *testing.T) {
	deep := bytes.Repeat([]byte{0x91}, 100000) // 100k nested one-element arrays
	deep = append(deep, 0xc0)
	hugeArray := []byte{0xdd, 0xff, 0xff, 0xff, 0xff} // array of 4 billion
	hugeString := []byte{0xdb, 0x7f, 0xff, 0xff, 0xff, 'a'}
	hugeMap := []byte{0xdf, 0x10, 0, 0, 0}
	cases := map[string][]byte{
		"deep":       deep,
		"hugeArray":  hugeArray,
		"hugeString": hugeString,
		"hugeMap":    hugeMap,
		"trailing":   {0xc0, 0xc0},
		"empty":      {},
		"invalid":    {0xc1},
		"truncated":  {0xcd, 0x01},
	}
	for name, b := range cases {
		if err := CheckMsgpack(b, MaxDepth); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: accepted (%v)", name, err)
		}
		var h Hello
		if err := Unmarshal(b, &h); err == nil {
			t.Errorf("%s: Unmarshal accepted", name)
		}
	}
	good, _ := msgpack.Marshal(map[string]any{"a": []any{1, "x", []byte{1}, map[string]any{"b": 1.5}}, "c": nil, "d": true, "e": int64(-1 << 40)})
	if err := CheckMsgpack(good, MaxDepth); err != nil {
		t.Fatalf("valid body rejected: %v", err)
	}
}

func TestDatagram(t *testing.T) {
	d, err := AppendDatagram(nil, UDPStatusRequest, &StatusRequest{ID: 5})
	if err != nil {
		t.Fatal(err)
	}
	k, body, err := ParseDatagram(d)
	if err != nil || k != UDPStatusRequest {
		t.Fatalf("%v %v", k, err)
	}
	var req StatusRequest
	if err := Unmarshal(body, &req); err != nil || req.ID != 5 {
		t.Fatalf("%+v %v", req, err)
	}
	if _, _, err := ParseDatagram([]byte("xx")); err == nil {
		t.Fatal("short datagram accepted")
	}
	big := append([]byte{'C', 'H', 'S', 'U', Version, 1}, make([]byte, MaxDatagram)...)
	if _, _, err := ParseDatagram(big); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversize datagram: %v", err)
	}
}

func TestValidName(t *testing.T) {
	for _, s := range []string{"a", "chat room", "ünïcødé"} {
		if !ValidName(s, 64) {
			t.Errorf("%q rejected", s)
		}
	}
	for _, s := range []string{"", "a\nb", "\x00", string([]byte{0xff}), strings.Repeat("x", 65)} {
		if ValidName(s, 64) {
			t.Errorf("%q accepted", s)
		}
	}
}

// Frames read the same whether they arrive whole in the buffer (parsed in
// place) or a byte at a time (read piece by piece), and bodies never alias
// the reader's buffer.
func TestReaderWholeAndFragmented(t *testing.T) {
	var stream []byte
	type want struct {
		kind  Kind
		topic string
		body  []byte
	}
	var wants []want
	sizes := func(i int) int {
		// Mostly small bodies, and some around a block's size: just
		// below it, exactly filling it, and just above (own buffer).
		switch i % 50 {
		case 7:
			return blockSize - HeaderLen - 10
		case 19:
			return blockSize - HeaderLen
		case 31:
			return blockSize - HeaderLen + 1
		}
		return (i * 37) % 9000
	}
	for i := 0; i < 300; i++ {
		topic := []string{"", "news", "a-much-longer-topic-name"}[i%3]
		body := bytes.Repeat([]byte{byte(i)}, sizes(i))
		var err error
		stream, err = AppendFrame(stream, KindPublish, topic, body)
		if err != nil {
			t.Fatal(err)
		}
		wants = append(wants, want{KindPublish, topic, body})
	}
	for _, tc := range []struct {
		name string
		r    io.Reader
	}{
		{"whole", bytes.NewReader(stream)},
		{"one byte at a time", iotest.OneByteReader(bytes.NewReader(stream))},
		{"half reads", iotest.HalfReader(bytes.NewReader(stream))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReader(tc.r, 0)
			var got []Frame
			for {
				f, err := r.ReadFrame()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, f)
			}
			if len(got) != len(wants) {
				t.Fatalf("%d frames, want %d", len(got), len(wants))
			}
			for i, f := range got { // checked after all reads: no body was overwritten
				w := wants[i]
				if f.Kind != w.kind || f.Topic != w.topic || !bytes.Equal(f.Body, w.body) {
					t.Fatalf("frame %d differs", i)
				}
			}
		})
	}
}

// sizeRecorder records the size of every Read asked of it.
type sizeRecorder struct {
	r     io.Reader
	sizes []int
}

func (s *sizeRecorder) Read(p []byte) (int, error) {
	s.sizes = append(s.sizes, len(p))
	return s.r.Read(p)
}

// After a body larger than a block (a file's chunk), the next read into
// the reader's block is small: the next chunk's body is read into its own
// buffer, not into the block and copied from there (which also used up a
// block per chunk). Once small frames follow, reads are large again. Every
// frame reads back whole either way.
func TestReaderLeanAfterLargeBody(t *testing.T) {
	var stream []byte
	var bodies [][]byte
	add := func(n int, b byte) {
		body := bytes.Repeat([]byte{b}, n)
		var err error
		if stream, err = AppendFrame(stream, KindFileChunk, "", body); err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, body)
	}
	const large = 2 * bigBlockSize // so that reads into a body are told apart from reads into a block
	for i := range 20 {
		add(large, byte(i))
	}
	for i := range 50 {
		add(100+i, byte(i))
	}
	rec := &sizeRecorder{r: bytes.NewReader(stream)}
	r := NewReader(rec, 1<<20)
	var blockReads []int // reads into a block: at most a big block's size
	for i, want := range bodies {
		before := len(rec.sizes)
		f, err := r.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(f.Body, want) {
			t.Fatalf("frame %d differs", i)
		}
		for _, n := range rec.sizes[before:] {
			if n <= bigBlockSize {
				blockReads = append(blockReads, n)
			}
		}
	}
	big := 0
	for _, n := range blockReads[:20] {
		if n > leanRead {
			big++
		}
	}
	if big != 1 {
		t.Fatalf("%d reads of more than %d bytes into a block among the large frames' (want only the first): %v", big, leanRead, blockReads[:20])
	}
	if last := blockReads[len(blockReads)-1]; last <= leanRead {
		t.Fatalf("reads stay small after small frames: %v", blockReads[len(blockReads)-5:])
	}
}

// chunkReader returns at most n bytes per Read, like a socket that has only
// that much waiting each time it is read.
type chunkReader struct {
	r io.Reader
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.n)]) }

// A stream whose reads fill all the room they are given moves to big blocks
// (fewer reads and allocations per frame); one whose reads come up short
// keeps ordinary blocks. Either way every frame reads back intact.
func TestReaderBlockSizeFollowsTheStream(t *testing.T) {
	var stream []byte
	const frames = 20000
	for i := 0; i < frames; i++ {
		body := bytes.Repeat([]byte{byte(i), byte(i >> 8)}, 50)
		var err error
		if stream, err = AppendFrame(stream, KindPublish, "news", body); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		src  io.Reader
		want int // the block size seen once the stream is under way
	}{
		{"backlogged", bytes.NewReader(stream), bigBlockSize},
		{"trickling", &chunkReader{bytes.NewReader(stream), 1000}, blockSize},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReader(tc.src, 0)
			sizes := map[int]int{}
			for i := 0; i < frames; i++ {
				f, err := r.ReadFrame()
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if want := bytes.Repeat([]byte{byte(i), byte(i >> 8)}, 50); f.Topic != "news" || !bytes.Equal(f.Body, want) {
					t.Fatalf("frame %d: topic %q body %x", i, f.Topic, f.Body[:4])
				}
				if i > frames/2 {
					sizes[cap(r.buf)]++
				}
			}
			if len(sizes) != 1 || sizes[tc.want] == 0 {
				t.Fatalf("block sizes in the second half of the stream: %v, want only %d", sizes, tc.want)
			}
		})
	}
}
