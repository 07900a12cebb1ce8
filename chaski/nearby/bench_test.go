package nearby

import (
	"net"
	"testing"
)

// The cost of one announcement on the receiving side: what a flood of
// fakes costs the node per packet.
func BenchmarkParseMessage(b *testing.B) {
	pkt, err := buildResponse(Record{ID: testID, Name: "alice", Version: 1, Topics: []string{"chat", "news"}}, net.IPv4(10, 0, 0, 1), 8511, 60)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(pkt)))
	for b.Loop() {
		if m, err := parseMessage(pkt); err != nil || len(m.ads) != 1 {
			b.Fatal(m, err)
		}
	}
}

func BenchmarkParseTXT(b *testing.B) {
	txt := EncodeTXT(Record{ID: testID, Name: "alice", Version: 1, Topics: []string{"chat", "news"}})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseTXT(txt); err != nil {
			b.Fatal(err)
		}
	}
}
