// Package pki is Chaski's public key infrastructure: the operator's own
// certificate authority kept on disk, a token-authenticated certificate
// signing service, the client that obtains a node certificate from it, and
// the mutual TLS 1.3 configuration every node uses to talk to its peers.
//
// Trust model, in short:
//
//   - The CA is created once (InitCA) and loaded on every later start
//     (LoadCA); it is never regenerated silently.
//   - A node obtains its certificate by proving knowledge of the operator's
//     join token with an HMAC; the token itself never crosses the wire, and
//     the answer carries an HMAC too so that a man in the middle cannot hand
//     out its own CA (see PROTOCOL.md).
//   - Peers authenticate each other as "holds a currently valid certificate
//     issued by our CA with the right extended key usage". Host names are
//     deliberately not checked (see PROTOCOL.md and verifyPeer).
package pki

import "errors"

// Sentinel errors. Every error returned by this package that belongs to one
// of these classes wraps the sentinel, so test with errors.Is.
var (
	// ErrCAExists is returned by InitCA when the directory already holds a
	// CA key or certificate; an existing CA is never overwritten.
	ErrCAExists = errors.New("CA already exists")

	// ErrBadPassword is returned when the CA key cannot be decrypted with the
	// given password, when an encrypted key is loaded without a password, or
	// when a password is given for a key that is not encrypted.
	ErrBadPassword = errors.New("bad CA key password")

	// ErrInvalidToken is returned by the client when the signing service
	// rejected the join token (its MAC did not verify).
	ErrInvalidToken = errors.New("invalid join token")

	// ErrRateLimited is returned by the client when the signing service
	// refused the request because of its rate limits. Retry later.
	ErrRateLimited = errors.New("rate limited")

	// ErrBadAnswer is returned by the client when the answer of the signing
	// service does not carry a valid MAC, or the returned certificate does not
	// chain to the returned CA, or does not match the requested key and name.
	// It means the answer did not come from a holder of the join token.
	ErrBadAnswer = errors.New("bad answer from CA server")

	// ErrRejected is returned by the client when the signing service refused
	// the request for another reason (malformed request, unacceptable CSR,
	// internal error). The wrapped message carries the server's reason.
	ErrRejected = errors.New("request rejected by CA server")

	// ErrNoPeerCert is the TLS handshake error when the peer presented no
	// certificate.
	ErrNoPeerCert = errors.New("peer sent no certificate")

	// ErrUntrustedPeer is the TLS handshake error when the peer's certificate
	// was not issued by our CA.
	ErrUntrustedPeer = errors.New("peer certificate not issued by our CA")

	// ErrPeerCertInvalid is the TLS handshake error when the peer's
	// certificate was issued by our CA but is not acceptable now (expired,
	// not yet valid, wrong extended key usage).
	ErrPeerCertInvalid = errors.New("peer certificate not acceptable")

	// ErrBadCSR is returned by (*CA).Sign for an unacceptable certificate
	// request.
	ErrBadCSR = errors.New("unacceptable certificate request")
)
