package tui

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParsePastedPaths(t *testing.T) {
	home, err := os.UserHomeDir()
	if err != nil {
		t.Skip("no home directory")
	}
	cases := []struct {
		name, in string
		want     []string
	}{
		{"plain", "/tmp/a.txt", []string{"/tmp/a.txt"}},
		{"trailing newline", "/tmp/a.txt\n", []string{"/tmp/a.txt"}},
		{"trailing CRLF", "/tmp/a.txt\r\n", []string{"/tmp/a.txt"}},
		{"backslash space", `/tmp/my\ file.txt`, []string{"/tmp/my file.txt"}},
		{"backslash several", `/tmp/a\ b\ \(c\).txt`, []string{"/tmp/a b (c).txt"}},
		{"single quoted", `'/tmp/my file.txt'`, []string{"/tmp/my file.txt"}},
		{"single quoted with escaped quote", `'/tmp/it'\''s.txt'`, []string{"/tmp/it's.txt"}},
		{"double quoted", `"/tmp/my file.txt"`, []string{"/tmp/my file.txt"}},
		{"double quoted escapes", `"/tmp/a \"b\".txt"`, []string{`/tmp/a "b".txt`}},
		{"double quoted keeps other backslashes", `"C:\dir\f.txt"`, []string{`C:\dir\f.txt`}},
		{"several spaces", "/tmp/a.txt /tmp/b.txt  /tmp/c.txt", []string{"/tmp/a.txt", "/tmp/b.txt", "/tmp/c.txt"}},
		{"several mixed", `'/tmp/x y' /tmp/z\ w "/tmp/q r"`, []string{"/tmp/x y", "/tmp/z w", "/tmp/q r"}},
		{"newline separated", "/tmp/a.txt\n/tmp/b.txt\n", []string{"/tmp/a.txt", "/tmp/b.txt"}},
		{"file url", "file:///tmp/a%20b.txt", []string{"/tmp/a b.txt"}},
		{"file url localhost", "file://localhost/tmp/a%20b.txt", []string{"/tmp/a b.txt"}},
		{"file url utf8", "file:///tmp/%C3%A9t%C3%A9.txt", []string{"/tmp/été.txt"}},
		{"file urls newline", "file:///tmp/a.txt\r\nfile:///tmp/b.txt\r\n", []string{"/tmp/a.txt", "/tmp/b.txt"}},
		{"file url other host kept", "file://server/share/a.txt", []string{"file://server/share/a.txt"}},
		{"quoted file url", "'file:///tmp/a%20b.txt'", []string{"/tmp/a b.txt"}},
		{"tilde", "~/docs/a.txt", []string{filepath.Join(home, "docs/a.txt")}},
		{"quoted tilde stays", "'~/a.txt'", []string{"~/a.txt"}},
		{"empty", "", nil},
		{"blank", "  \n\r\n", nil},
		{"empty quotes dropped", "'' \"\"", nil},
		{"text", "hello world", []string{"hello", "world"}},
		{"unterminated quote", "'/tmp/a b", []string{"/tmp/a b"}},
		{"trailing backslash", `/tmp/a\`, []string{`/tmp/a\`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := ParsePastedPaths(c.in)
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("ParsePastedPaths(%q) = %q, want %q", c.in, got, c.want)
			}
		})
	}
}

func TestPastedFiles(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "my file.txt")
	b := filepath.Join(dir, "b.bin")
	for _, p := range []string{a, b} {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	esc := strings.ReplaceAll(a, " ", `\ `)
	cases := []struct {
		in   string
		want []string
	}{
		{esc, []string{a}},
		{"'" + a + "' " + b + "\n", []string{a, b}},
		{"file://" + strings.ReplaceAll(a, " ", "%20"), []string{a}},
		{a + "\n" + b, []string{a, b}}, // unquoted names with spaces, one per line
		{a, []string{a}},               // a single unquoted name with a space
		{dir, nil},                     // a directory is not a file
		{b + " /nonexistent/zz", nil},  // every token must exist
		{"hello there", nil},
		{"", nil},
	}
	for _, c := range cases {
		if got := pastedFiles(c.in); !reflect.DeepEqual(got, c.want) {
			t.Errorf("pastedFiles(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func FuzzParsePastedPaths(f *testing.F) {
	for _, s := range []string{
		"/tmp/a.txt", `/tmp/my\ file.txt`, `'/tmp/x y'`, `"/tmp/a \"b\""`,
		"file:///tmp/a%20b.txt", "file://localhost/x", "file://%zz", "~/a", "a\nb\r\n",
		`'unterminated`, `\`, "\x00", "'it'\\''s'", "file://", "file:///%",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := ParsePastedPaths(s)
		for _, p := range got {
			if p == "" {
				t.Fatalf("empty path from %q", s)
			}
			if strings.ContainsRune(p, 0) {
				t.Fatalf("NUL in path %q from %q", p, s)
			}
		}
		_ = pastedLines(s)
		// A single-quoted token round-trips exactly (no expansion inside
		// quotes), whatever it contains.
		if s == "" || strings.ContainsRune(s, 0) || strings.HasPrefix(s, "file://") || !utf8.ValidString(s) {
			return
		}
		q := "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
		if back := ParsePastedPaths(q); len(back) != 1 || back[0] != s {
			t.Fatalf("round trip of %q via %q = %q", s, q, back)
		}
	})
}
