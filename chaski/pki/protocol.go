package pki

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Wire protocol of the signing service; PROTOCOL.md is the specification.
const (
	protocolVersion = 1

	// MaxMessageSize caps the body of every frame, in both directions.
	MaxMessageSize = 64 << 10

	nonceLen = 32
	macLen   = sha256.Size

	labelRequest = "chaski-csr-v1"
	labelAnswer  = "chaski-cert-v1"
)

// Error codes carried in an error answer.
const (
	codeInvalidToken = "invalid_token"
	codeRateLimited  = "rate_limited"
	codeBadRequest   = "bad_request"
	codeInternal     = "internal"
)

// request is the client's message. []byte fields travel as standard base64
// (the encoding/json convention).
type request struct {
	V     int    `json:"v"`
	Nonce []byte `json:"nonce"`
	CSR   []byte `json:"csr"` // DER
	MAC   []byte `json:"mac"`
}

// response is the server's message: either OK with Cert, CA and MAC, or not
// OK with Code and Error.
type response struct {
	V     int    `json:"v"`
	OK    bool   `json:"ok"`
	Code  string `json:"code,omitempty"`
	Error string `json:"error,omitempty"`
	Cert  string `json:"cert,omitempty"` // PEM, leaf first
	CA    string `json:"ca,omitempty"`   // PEM, one certificate
	MAC   []byte `json:"mac,omitempty"`
}

var errFrameSize = errors.New("frame length out of range")

// writeFrame writes body as one frame: 4-byte big-endian length, then body.
func writeFrame(w io.Writer, body []byte) error {
	if len(body) == 0 || len(body) > MaxMessageSize {
		return errFrameSize
	}
	buf := make([]byte, 4+len(body))
	binary.BigEndian.PutUint32(buf, uint32(len(body)))
	copy(buf[4:], body)
	_, err := w.Write(buf)
	return err
}

// readFrame reads one frame. The length is checked before anything is
// allocated, so a peer cannot make us allocate more than MaxMessageSize.
func readFrame(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 || n > MaxMessageSize {
		return nil, fmt.Errorf("%w: %d", errFrameSize, n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return body, nil
}

// decodeRequest reads and syntactically validates one request frame. It does
// not check the MAC nor parse the CSR.
func decodeRequest(r io.Reader) (*request, error) {
	body, err := readFrame(r)
	if err != nil {
		return nil, err
	}
	return parseRequest(body)
}

func parseRequest(body []byte) (*request, error) {
	var req request
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, fmt.Errorf("malformed request: %v", err)
	}
	switch {
	case req.V != protocolVersion:
		return nil, fmt.Errorf("unsupported protocol version %d", req.V)
	case len(req.Nonce) != nonceLen:
		return nil, fmt.Errorf("nonce must be %d bytes", nonceLen)
	case len(req.MAC) != macLen:
		return nil, fmt.Errorf("mac must be %d bytes", macLen)
	case len(req.CSR) == 0:
		return nil, errors.New("missing csr")
	}
	return &req, nil
}

func encodeJSONFrame(w io.Writer, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return writeFrame(w, body)
}

// requestMAC = HMAC-SHA256(token, "chaski-csr-v1" || nonce || csr_der).
// The nonce has a fixed length, so the concatenation is unambiguous.
func requestMAC(token, nonce, csrDER []byte) []byte {
	m := hmac.New(sha256.New, token)
	m.Write([]byte(labelRequest))
	m.Write(nonce)
	m.Write(csrDER)
	return m.Sum(nil)
}

// answerMAC = HMAC-SHA256(token, "chaski-cert-v1" || nonce ||
// u32(len(cert_pem)) || cert_pem || u32(len(ca_pem)) || ca_pem), u32 being
// a 4-byte big-endian length. The lengths make the boundary between the two
// PEM documents part of what is authenticated.
func answerMAC(token, nonce []byte, certPEM, caPEM string) []byte {
	m := hmac.New(sha256.New, token)
	m.Write([]byte(labelAnswer))
	m.Write(nonce)
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(certPEM)))
	m.Write(n[:])
	io.WriteString(m, certPEM)
	binary.BigEndian.PutUint32(n[:], uint32(len(caPEM)))
	m.Write(n[:])
	io.WriteString(m, caPEM)
	return m.Sum(nil)
}
