package wire

import (
	"math/rand/v2"
	"testing"
	"unicode/utf8"
)

// validNameReference is the rule ValidName implements, written the plain
// way: the fast ASCII path must agree with it on every input.
func validNameReference(s string, max int) bool {
	if s == "" || len(s) > max || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

func TestValidNameMatchesReference(t *testing.T) {
	fixed := []string{"", "a", "chat", "a\x00b", "tab\there", "del\x7f", "zürich", "ü\x01", "\xff", "ok\xc3",
		"日本", "x\u2028y", "\u0085", "a\x1fb", "é", "e\u0301"}
	for _, s := range fixed {
		for _, max := range []int{1, 4, 255} {
			if got, want := ValidName(s, max), validNameReference(s, max); got != want {
				t.Errorf("ValidName(%q, %d) = %v, want %v", s, max, got, want)
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte{'a', 'Z', '0', ' ', '~', 0x00, 0x1f, 0x7f, 0x80, 0xbf, 0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xff}
	for i := 0; i < 200000; i++ {
		b := make([]byte, r.IntN(12))
		for j := range b {
			b[j] = alphabet[r.IntN(len(alphabet))]
		}
		s := string(b)
		if got, want := ValidName(s, 8), validNameReference(s, 8); got != want {
			t.Fatalf("ValidName(%q, 8) = %v, want %v", s, got, want)
		}
	}
}

func BenchmarkValidNameASCII(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if !ValidName("bench/topic-01", MaxTopicLen) {
			b.Fatal("refused")
		}
	}
}

func BenchmarkValidNameReferenceASCII(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if !validNameReference("bench/topic-01", MaxTopicLen) {
			b.Fatal("refused")
		}
	}
}
