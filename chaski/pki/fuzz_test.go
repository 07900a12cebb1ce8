package pki

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

func frame(body string) []byte {
	b := make([]byte, 4, 4+len(body))
	binary.BigEndian.PutUint32(b, uint32(len(body)))
	return append(b, body...)
}

// FuzzDecodeRequest feeds arbitrary bytes to the server's request decoder:
// it must never panic nor accept a request that breaks its invariants, and
// whatever it accepts must survive a round trip.
func FuzzDecodeRequest(f *testing.F) {
	valid := &request{
		V:     protocolVersion,
		Nonce: bytes.Repeat([]byte{1}, nonceLen),
		CSR:   []byte{0x30, 0x03, 0x02, 0x01, 0x00},
		MAC:   bytes.Repeat([]byte{2}, macLen),
	}
	var buf bytes.Buffer
	if err := encodeJSONFrame(&buf, valid); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte{})
	f.Add([]byte{0, 0})
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 1, 0, 1, '{'})
	f.Add(frame("{}"))
	f.Add(frame("null"))
	f.Add(frame("[]"))
	f.Add(frame(`{"v":1,"nonce":"AQ==","csr":"AQ==","mac":"AQ=="}`))
	f.Add(frame(`{"v":1,"nonce":"!!","csr":"","mac":""}`))
	f.Add(frame(`{"v":1,"v":2}`))
	f.Add(frame(`{"V":1,"Nonce":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=","csr":"MA==","MAC":"AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI="}`))
	f.Add(append(buf.Bytes(), "trailing"...))

	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := decodeRequest(bytes.NewReader(data))
		if err != nil {
			if req != nil {
				t.Fatal("request returned with an error")
			}
			return
		}
		if req.V != protocolVersion || len(req.Nonce) != nonceLen || len(req.MAC) != macLen || len(req.CSR) == 0 {
			t.Fatalf("accepted an invalid request: %+v", req)
		}
		if n := binary.BigEndian.Uint32(data); n == 0 || n > MaxMessageSize {
			t.Fatalf("accepted a frame of %d bytes", n)
		}
		var out bytes.Buffer
		if err := encodeJSONFrame(&out, req); err != nil {
			// Re-encoding may only fail if it no longer fits one frame.
			if errors.Is(err, errFrameSize) {
				return
			}
			t.Fatal(err)
		}
		again, err := decodeRequest(&out)
		if err != nil {
			t.Fatalf("round trip: %v", err)
		}
		if again.V != req.V || !bytes.Equal(again.Nonce, req.Nonce) || !bytes.Equal(again.CSR, req.CSR) || !bytes.Equal(again.MAC, req.MAC) {
			t.Fatalf("round trip changed the request: %+v -> %+v", req, again)
		}
	})
}
