package wire

import (
	"bytes"
	"crypto/ed25519"
	"testing"
	"testing/iotest"
)

// The fuzz targets assert the decoders' contract: any input yields a value or
// an error, never a panic, and never a frame larger than the limit.

func FuzzReadFrame(f *testing.F) {
	pub, _ := AppendPublishFrame(nil, "t", &Publish{Name: "n", Payload: []byte("x"), TTL: 3})
	ping := AppendPingFrame(nil, KindPing, &Ping{ID: 1, Padding: []byte("pad")})
	hello, _ := AppendControlFrame(nil, KindHello, "", &Hello{Version: 1, ID: make([]byte, 16), Name: "a"})
	f.Add(pub)
	f.Add(ping)
	f.Add(hello)
	tree, _ := AppendFileTreeFrame(nil, &FileTree{First: 2, Leaves: make([]byte, 64)})
	f.Add(tree)
	f.Add(AppendSeqMarkFrame(nil, 42))
	f.Add(signedSeed(f))
	f.Add([]byte{1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		// Half reads exercise frames that arrive in pieces.
		r := NewReader(iotest.HalfReader(bytes.NewReader(data)), 1<<16)
		for i := 0; i < 64; i++ {
			fr, err := r.ReadFrame()
			if err != nil {
				return
			}
			if len(fr.Body) > 1<<16 {
				t.Fatalf("body of %d bytes passed a 64 KiB limit", len(fr.Body))
			}
			switch fr.Kind {
			case KindPublish:
				_, _ = ParsePublish(fr.Body)
			case KindPublishSigned:
				if s, err := ParseSignedPublishReuse(fr.Body, ""); err == nil {
					_ = s.Verify(fr.Topic, NewDigestHash())
				}
			case KindPing, KindPong:
				_, _ = ParsePing(fr.Body)
			case KindFileChunk:
				_, _ = ParseFileChunk(fr.Body)
			case KindFileTree:
				_, _ = ParseFileTree(fr.Body)
			case KindSeqMark:
				if v, err := ParseSeqMark(fr.Body); err == nil && !bytes.Equal(AppendSeqMarkFrame(nil, v)[HeaderLen:], fr.Body) {
					t.Fatalf("seq mark %d does not round-trip", v)
				}
			}
		}
	})
}

func FuzzControlBodies(f *testing.F) {
	for _, v := range []any{
		&Hello{Version: 1, ID: make([]byte, 16), Name: "a", Subs: []string{"x"}},
		&Discover{Topic: "t", TTL: 5, Visited: [][]byte{make([]byte, 16)}},
		&FileOffer{Name: "f", Size: 3, Meta: map[string]string{"k": "v"}},
		&FileOffer{Name: "f", Size: 1 << 20, Hash: "blake3", Root: make([]byte, 32), Group: 256 << 10},
		&FileEnd{Size: 9, Hash: make([]byte, 32)},
		&Response{ID: 1, Data: []byte("d")},
		&StoreRequest{Request: make([]byte, 16), Key: "k", Move: true},
		&StoreTaken{Request: make([]byte, 16), Key: "k"},
	} {
		b, _ := Marshal(v)
		f.Add(b)
	}
	f.Add(bytes.Repeat([]byte{0x91}, 1000))
	f.Fuzz(func(t *testing.T, data []byte) {
		var h Hello
		_ = Unmarshal(data, &h)
		var d Discover
		_ = Unmarshal(data, &d)
		var o FileOffer
		_ = Unmarshal(data, &o)
		var s Status
		_ = Unmarshal(data, &s)
		var req StoreRequest
		_ = Unmarshal(data, &req)
		var resp StoreResponse
		_ = Unmarshal(data, &resp)
		var taken StoreTaken
		_ = Unmarshal(data, &taken)
		var end FileEnd
		_ = Unmarshal(data, &end)
		var ack FileAck
		_ = Unmarshal(data, &ack)
	})
}

// FuzzFileTree: a tree body decodes to whole leaves or fails, and encodes
// back to the same bytes.
func FuzzFileTree(f *testing.F) {
	good, _ := AppendFileTreeFrame(nil, &FileTree{Transfer: [16]byte{1}, First: 7, Leaves: bytes.Repeat([]byte{9}, 96)})
	f.Add(good[HeaderLen:])
	f.Add(make([]byte, 24))
	f.Add(make([]byte, 25))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) {
		tr, err := ParseFileTree(body)
		if err != nil {
			return
		}
		if len(tr.Leaves)%FileTreeLeafLen != 0 {
			t.Fatalf("%d leaf bytes", len(tr.Leaves))
		}
		fr, err := AppendFileTreeFrame(nil, &tr)
		if err != nil || !bytes.Equal(fr[HeaderLen:], body) {
			t.Fatalf("round trip differs (%v)", err)
		}
	})
}

func FuzzDatagram(f *testing.F) {
	d, _ := AppendDatagram(nil, UDPStatusRequest, &StatusRequest{ID: 1})
	f.Add(d)
	f.Add([]byte("CHSU"))
	f.Fuzz(func(t *testing.T, data []byte) {
		kind, body, err := ParseDatagram(data)
		if err != nil {
			return
		}
		switch kind {
		case UDPStatusRequest:
			var r StatusRequest
			_ = Unmarshal(body, &r)
		case UDPStatusResponse:
			var s Status
			_ = Unmarshal(body, &s)
		case UDPRequest:
			var r Request
			_ = Unmarshal(body, &r)
		}
	})
}

// FuzzSignedPublish checks that no body, however forged, both parses and
// verifies unless it is the one that was signed (or differs from it only in
// the TTL and hops a relay rewrites).
func FuzzSignedPublish(f *testing.F) {
	frame := signedSeed(f)
	h, err := ParseHeader(frame, HardMaxBody)
	if err != nil {
		f.Fatal(err)
	}
	signedBody := frame[HeaderLen+h.TopicLen:]
	f.Add(append([]byte(nil), signedBody...))
	f.Add(signedBody[:40])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) {
		s, err := ParseSignedPublishReuse(body, "")
		if err != nil {
			return
		}
		if s.Verify("t", NewDigestHash()) != nil {
			return
		}
		if len(body) != len(signedBody) {
			t.Fatalf("a body of %d bytes verifies; only the signed one (%d) may", len(body), len(signedBody))
		}
		for i := range body {
			if body[i] != signedBody[i] && i != PublishTTLOffset && i != PublishHopsOffset {
				t.Fatalf("byte %d changed and the signature still verifies", i)
			}
		}
	})
}

// signedSeed is a signed publish frame on topic "t" for the seed corpora.
func signedSeed(tb testing.TB) []byte {
	pub, priv, err := ed25519.GenerateKey(bytes.NewReader(make([]byte, 64)))
	if err != nil {
		tb.Fatal(err)
	}
	p := Publish{ID: MessageID{Origin: NodeIDForKey(pub), Seq: 7}, Time: 1, TTL: 3, Name: "n", Payload: []byte("hello")}
	frame, err := AppendSignedPublishFrame(nil, "t", &p, priv, NewDigestHash())
	if err != nil {
		tb.Fatal(err)
	}
	return frame
}
