package nearby

import (
	"net"
	"strings"
	"testing"
)

// FuzzParseTXT: any TXT strings either parse into a record that encodes
// and parses back to itself, or are rejected; nothing panics.
func FuzzParseTXT(f *testing.F) {
	f.Add(strings.Join(EncodeTXT(Record{ID: testID, Name: "a", Version: 1, TLS: true, Topics: []string{"chat", "x"}}), "\n"))
	f.Add("id=" + testID + "\nname=\xff\nv=1\ntls=no")
	f.Add("txtvers=1\nid=" + testID + "\nname=n\nv=99999999999999999999\ntls=yes\ntopics=,")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseTXT(strings.Split(s, "\n"))
		if err != nil {
			return
		}
		back, err := ParseTXT(EncodeTXT(r))
		if err != nil {
			t.Fatalf("re-encoded record does not parse: %v (%+v)", err, r)
		}
		if back.ID != r.ID || back.Name != r.Name || back.TLS != r.TLS || back.Version != r.Version || len(back.Topics) != len(r.Topics) {
			t.Fatalf("round trip changed %+v into %+v", r, back)
		}
	})
}

// FuzzParseMessage: arbitrary packets never panic, and what they announce
// is valid.
func FuzzParseMessage(f *testing.F) {
	good, _ := buildResponse(Record{ID: testID, Name: "a", Version: 1, Topics: []string{"chat"}}, net.IPv4(10, 0, 0, 1), 8511, 60)
	bye, _ := buildResponse(Record{ID: testID, Name: "a", Version: 1}, net.IPv4(10, 0, 0, 1), 8511, 0)
	q, _ := buildQuery()
	f.Add(good)
	f.Add(bye)
	f.Add(q)
	f.Add([]byte{})
	f.Add(good[:len(good)/2])
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseMessage(b)
		if err != nil {
			return
		}
		if len(m.ads) > maxAnnouncements {
			t.Fatalf("%d announcements from one packet", len(m.ads))
		}
		for _, a := range m.ads {
			if a.ip.To4() == nil || a.port == 0 || len(a.ID) != 32 || a.ttl == 0 {
				t.Fatalf("invalid announcement %+v", a)
			}
		}
	})
}
