package wire

import (
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
)

// Signed publishes (KindPublishSigned) prove who published a message: the
// origin id of a node that signs is derived from its Ed25519 public key
// (NodeIDForKey), and every publish carries that key and a signature over
// everything in it that relays do not rewrite. A receiver can therefore check,
// without any certificate authority, that the message was published by the
// holder of the key behind its origin id; a forger can invent ids of its own
// but cannot speak for an id it does not hold the key of.
//
// The body is the Publish body with a signature block between the name and
// the payload, so that TTL and hops stay at the offsets relays rewrite:
//
//	0   35+N  as in a Publish body (origin ... origin name)
//	35+N  32  Ed25519 public key of the origin
//	67+N  64  Ed25519ph signature (see PublishDigest)
//	131+N     payload (the rest of the body)
const (
	SigKeyLen   = ed25519.PublicKeySize
	SigLen      = ed25519.SignatureSize
	SigBlockLen = SigKeyLen + SigLen
)

// SignContext separates publish signatures from any other use of the key.
const SignContext = "chaski publish v1"

// Errors of signature checks.
var (
	ErrBadSignature = errors.New("wire: publish signature does not verify")
	ErrKeyMismatch  = errors.New("wire: publish key does not match its origin id")
)

// NodeIDForKey derives the node id of a signing node from its public key:
// the first 16 bytes of SHA-256(key) with the UUID version 4 bits set, so
// that ids still read as UUIDs. 122 bits of the hash remain.
func NodeIDForKey(pub ed25519.PublicKey) NodeID {
	sum := sha256.Sum256(pub)
	var id NodeID
	copy(id[:], sum[:16])
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	return id
}

var signOpts = &ed25519.Options{Hash: crypto.SHA512, Context: SignContext}

// PublishDigest writes into h (reset first) what a publish signature covers:
// the topic (length byte and bytes), the origin id, sequence number and time
// (body[0:32]), the name (length byte and bytes) and the payload. TTL and hops
// are left out: every relay rewrites them. head is the body up to and
// including the name; it and payload need not be contiguous. The sum is
// appended to dst.
func PublishDigest(h hash.Hash, dst []byte, topic string, head, payload []byte) []byte {
	h.Reset()
	h.Write([]byte{byte(len(topic))})
	h.Write([]byte(topic))
	h.Write(head[:PublishTTLOffset])
	h.Write(head[PublishHopsOffset+1:])
	h.Write(payload)
	return h.Sum(dst)
}

// NewDigestHash returns the hash PublishDigest expects (SHA-512, as
// Ed25519ph requires).
func NewDigestHash() hash.Hash { return sha512.New() }

// AppendSignedPublishFrame appends a complete KindPublishSigned frame, signed
// with key; p.ID.Origin must be NodeIDForKey of key's public half (the
// receiver checks it). h is a scratch hash from NewDigestHash.
func AppendSignedPublishFrame(b []byte, topic string, p *Publish, key ed25519.PrivateKey, h hash.Hash) ([]byte, error) {
	return appendWithBlock(b, topic, p, func(head, payload []byte) ([]byte, error) {
		var digest [sha512.Size]byte
		PublishDigest(h, digest[:0], topic, head, payload)
		sig, err := key.Sign(nil, digest[:], signOpts)
		if err != nil {
			return nil, fmt.Errorf("wire: signing a publish: %w", err)
		}
		return append(append(make([]byte, 0, SigBlockLen), key.Public().(ed25519.PublicKey)...), sig...), nil
	})
}

// appendWithBlock appends a KindPublishSigned frame of p whose signature
// block block returns, given the body up to the name (head) and the
// payload; on error b is returned unchanged.
func appendWithBlock(b []byte, topic string, p *Publish, block func(head, payload []byte) ([]byte, error)) ([]byte, error) {
	start := len(b)
	b, err := AppendPublishFrame(b, topic, p)
	if err != nil {
		return b[:start], err
	}
	bodyStart := start + HeaderLen + len(topic)
	headEnd := bodyStart + PublishFixedLen + len(p.Name)
	if len(b)-bodyStart+SigBlockLen > HardMaxBody {
		return b[:start], ErrTooLarge
	}
	blk, err := block(b[bodyStart:headEnd], b[headEnd:])
	if err != nil {
		return b[:start], err
	}
	// Open the signature block between the name and the payload.
	b = append(b, make([]byte, SigBlockLen)...)
	copy(b[headEnd+SigBlockLen:], b[headEnd:len(b)-SigBlockLen])
	copy(b[headEnd:], blk)
	PutHeader(b[start:], KindPublishSigned, len(topic), len(b)-bodyStart)
	return b, nil
}

// SignedPublish is a parsed KindPublishSigned body: the publish (Payload
// aliases the body) and its key and signature (aliasing it too; Block is
// both, as they follow each other in the body).
type SignedPublish struct {
	Publish
	Key, Sig, Block []byte
	head            []byte
}

// ParseSignedPublishReuse decodes a KindPublishSigned body (see
// ParsePublishReuse for name). It does not verify the signature: Verify does.
func ParseSignedPublishReuse(body []byte, name string) (SignedPublish, error) {
	var s SignedPublish
	p, err := ParsePublishReuse(body, name)
	if err != nil {
		return s, err
	}
	headLen := SignedHeadLen(body)
	if len(body) < headLen+SigBlockLen {
		return s, fmt.Errorf("%w: signed publish body of %d bytes", ErrMalformed, len(body))
	}
	s.Publish = p
	s.head = body[:headLen]
	s.Key = body[headLen : headLen+SigKeyLen]
	s.Sig = body[headLen+SigKeyLen : headLen+SigBlockLen]
	s.Block = body[headLen : headLen+SigBlockLen]
	s.Payload = body[headLen+SigBlockLen:]
	return s, nil
}

// Verify checks that the key is the one the origin id was derived from and
// that the signature covers this publish on topic. h is a scratch hash from
// NewDigestHash.
func (s *SignedPublish) Verify(topic string, h hash.Hash) error {
	if NodeIDForKey(s.Key) != s.ID.Origin {
		return ErrKeyMismatch
	}
	var digest [sha512.Size]byte
	PublishDigest(h, digest[:0], topic, s.head, s.Payload)
	if ed25519.VerifyWithOptions(ed25519.PublicKey(s.Key), digest[:], s.Sig, signOpts) != nil {
		return ErrBadSignature
	}
	return nil
}

// AppendSignedPublishWith appends a KindPublishSigned frame of p with a
// signature block made elsewhere (block: key then signature, SigBlockLen
// bytes), as a bridge does for a signed message it brings back into a
// mesh. It checks the block first (Verify), so that a node never sends a
// frame its peers would refuse; on error b is returned unchanged.
func AppendSignedPublishWith(b []byte, topic string, p *Publish, block []byte, h hash.Hash) ([]byte, error) {
	if len(block) != SigBlockLen {
		return b, fmt.Errorf("%w: signature block of %d bytes", ErrMalformed, len(block))
	}
	start := len(b)
	b, err := appendWithBlock(b, topic, p, func(_, _ []byte) ([]byte, error) { return block, nil })
	if err != nil {
		return b, err
	}
	s, err := ParseSignedPublishReuse(b[start+HeaderLen+len(topic):], p.Name)
	if err == nil {
		err = s.Verify(topic, h)
	}
	if err != nil {
		return b[:start], err
	}
	return b, nil
}

// SignedHeadLen is the length of a signed publish body before its signature
// block (the fixed part and the name): a relay that strips the block for a
// peer that does not know KindPublishSigned cuts it out there.
func SignedHeadLen(body []byte) int { return PublishFixedLen + int(body[34]) }
