package cli

import (
	"strings"
	"testing"
)

func TestEditDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"ping", "ping", 0}, {"pign", "ping", 1}, {"stor", "store", 1}, {"sttaus", "status", 1},
		{"conect", "connect", 1}, {"kitten", "sitting", 3}, {"", "abc", 3}, {"ñu", "nu", 1}} {
		if got := editDistance(c.a, c.b); got != c.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", c.a, c.b, got, c.d)
		}
	}
}

func TestDidYouMean(t *testing.T) {
	cands := []string{"status", "store", "send", "sub", "json", "ca"}
	for typed, want := range map[string]string{
		"sttaus": `(did you mean "status"?)`,
		"stroe":  `(did you mean "store"?)`,
		"snd":    `(did you mean "send"?)`,
		"j":      `(did you mean "json"?)`, // the start of one name only
		"st":     "",                       // the start of two: no guess
		"x":      "",                       // one letter away from nothing
		"store":  "",                       // not a typo
		"zzzzzz": "",
	} {
		got := strings.TrimSpace(didYouMean(typed, cands, quoted))
		if got != want {
			t.Errorf("didYouMean(%q) = %q, want %q", typed, got, want)
		}
	}
}
