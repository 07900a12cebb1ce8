package wire

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"
)

func signedFrame(t *testing.T, priv ed25519.PrivateKey, origin NodeID, topic string, payload []byte) []byte {
	t.Helper()
	p := Publish{ID: MessageID{Origin: origin, Seq: 42}, Time: 1234, TTL: 5, Hops: 1, Name: "alice", Payload: payload}
	frame, err := AppendSignedPublishFrame(nil, topic, &p, priv, NewDigestHash())
	if err != nil {
		t.Fatal(err)
	}
	return frame
}

func bodyOf(t *testing.T, frame []byte) (Header, []byte) {
	t.Helper()
	h, err := ParseHeader(frame, HardMaxBody)
	if err != nil {
		t.Fatal(err)
	}
	if h.Kind != KindPublishSigned {
		t.Fatalf("kind %v", h.Kind)
	}
	return h, frame[HeaderLen+h.TopicLen:]
}

func TestSignedPublishRoundTrip(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	origin := NodeIDForKey(pub)
	frame := signedFrame(t, priv, origin, "news", []byte("payload bytes"))
	h, body := bodyOf(t, frame)
	if len(body) != PublishFixedLen+len("alice")+SigBlockLen+len("payload bytes") || h.BodyLen != len(body) {
		t.Fatalf("body of %d bytes (header says %d)", len(body), h.BodyLen)
	}
	s, err := ParseSignedPublishReuse(body, "")
	if err != nil {
		t.Fatal(err)
	}
	if s.ID.Origin != origin || s.ID.Seq != 42 || s.Time != 1234 || s.TTL != 5 || s.Hops != 1 || s.Name != "alice" || string(s.Payload) != "payload bytes" {
		t.Fatalf("parsed %+v", s.Publish)
	}
	if err := s.Verify("news", NewDigestHash()); err != nil {
		t.Fatal(err)
	}
	// A relay rewrites TTL and hops in place: still valid.
	body[PublishTTLOffset], body[PublishHopsOffset] = 1, 7|PublishBridged
	s, _ = ParseSignedPublishReuse(body, "")
	if err := s.Verify("news", NewDigestHash()); err != nil {
		t.Fatalf("after a relay's rewrite: %v", err)
	}
	// The same message under another topic is not.
	if err := s.Verify("other", NewDigestHash()); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("other topic: %v", err)
	}
	// Stripping the block gives the plain publish (what a relay sends a peer
	// that does not know signed publishes).
	hl := SignedHeadLen(body)
	plain, err := ParsePublish(append(append([]byte(nil), body[:hl]...), body[hl+SigBlockLen:]...))
	if err != nil || plain.Name != "alice" || string(plain.Payload) != "payload bytes" {
		t.Fatalf("stripped: %+v %v", plain, err)
	}
}

func TestSignedPublishRejectsEveryChangedByte(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	frame := signedFrame(t, priv, NodeIDForKey(pub), "news", []byte("some payload"))
	_, body := bodyOf(t, frame)
	for i := range body {
		if i == PublishTTLOffset || i == PublishHopsOffset {
			continue
		}
		forged := append([]byte(nil), body...)
		forged[i] ^= 0x01
		s, err := ParseSignedPublishReuse(forged, "")
		if err != nil {
			continue // e.g. a name length that no longer fits
		}
		if err := s.Verify("news", NewDigestHash()); err == nil {
			t.Fatalf("byte %d flipped and the publish still verifies", i)
		}
	}
}

func TestSignedPublishKeyMustMatchOrigin(t *testing.T) {
	victimPub, _, _ := ed25519.GenerateKey(rand.Reader)
	_, forgerPriv, _ := ed25519.GenerateKey(rand.Reader)
	// The forger signs correctly with its own key but names the victim's id.
	frame := signedFrame(t, forgerPriv, NodeIDForKey(victimPub), "news", []byte("lies"))
	_, body := bodyOf(t, frame)
	s, err := ParseSignedPublishReuse(body, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Verify("news", NewDigestHash()); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("forged origin: %v", err)
	}
	// Putting the victim's key in the block instead breaks the signature.
	copy(body[SignedHeadLen(body):], victimPub)
	s, _ = ParseSignedPublishReuse(body, "")
	if err := s.Verify("news", NewDigestHash()); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("victim's key, forger's signature: %v", err)
	}
}

func TestSignedPublishMalformed(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	_, body := bodyOf(t, signedFrame(t, priv, NodeIDForKey(pub), "t", nil))
	for n := 0; n < PublishFixedLen+len("alice")+SigBlockLen; n++ {
		if _, err := ParseSignedPublishReuse(body[:n], ""); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%d bytes: %v", n, err)
		}
	}
	if _, err := ParseSignedPublishReuse(body, ""); err != nil {
		t.Fatal(err)
	}
}

func TestNodeIDForKeyIsUUIDv4(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	id := NodeIDForKey(pub)
	if id[6]>>4 != 4 || id[8]>>6 != 2 {
		t.Fatalf("id %x is not a version 4 UUID", id)
	}
	if NodeIDForKey(pub) != id {
		t.Fatal("not deterministic")
	}
}

func BenchmarkSignPublish(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	p := Publish{ID: MessageID{Origin: NodeIDForKey(pub), Seq: 1}, TTL: 5, Name: "bench", Payload: make([]byte, 100)}
	h := NewDigestHash()
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		p.ID.Seq++
		buf, _ = AppendSignedPublishFrame(buf[:0], "topic", &p, priv, h)
	}
}

func BenchmarkVerifyPublish(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	p := Publish{ID: MessageID{Origin: NodeIDForKey(pub), Seq: 1}, TTL: 5, Name: "bench", Payload: make([]byte, 100)}
	h := NewDigestHash()
	frame, _ := AppendSignedPublishFrame(nil, "topic", &p, priv, h)
	hd, _ := ParseHeader(frame, HardMaxBody)
	body := frame[HeaderLen+hd.TopicLen:]
	b.ReportAllocs()
	for b.Loop() {
		s, _ := ParseSignedPublishReuse(body, "bench")
		if err := s.Verify("topic", h); err != nil {
			b.Fatal(err)
		}
	}
}
