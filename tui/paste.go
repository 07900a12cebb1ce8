package tui

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// ParsePastedPaths splits a bracketed paste into the file paths it names, the
// way terminals paste dropped files: plain paths, paths with backslash-escaped
// spaces (/tmp/my\ file.txt), single- or double-quoted paths, several paths
// separated by spaces or newlines, file:// URLs with percent-encoding (an
// empty host or "localhost" only), and ~/ for the home directory. A trailing
// newline or carriage return is ignored. It only parses text: it never
// touches the file system except to learn the home directory, and never runs
// anything. The caller decides whether the results name existing files.
func ParsePastedPaths(s string) []string {
	var (
		out    []string
		cur    strings.Builder
		inTok  bool // cur holds a token (possibly empty, e.g. '')
		quoted bool // the token had quotes, so a literal "~" or "file:" stays
		quote  rune // 0, '\'' or '"'
		escape bool
	)
	flush := func() {
		if inTok {
			if p := cleanPastedToken(cur.String(), quoted); p != "" {
				out = append(out, p)
			}
		}
		cur.Reset()
		inTok, quoted = false, false
	}
	for _, r := range s {
		if r == 0 {
			// NUL never belongs to a path: outside quotes it separates.
			if quote == 0 && !escape {
				flush()
			}
			continue
		}
		switch {
		case escape:
			escape = false
			if r == '\n' && quote == 0 { // line continuation
				continue
			}
			if quote == '"' && r != '"' && r != '\\' && r != '$' && r != '`' && r != '\n' {
				cur.WriteRune('\\')
			}
			cur.WriteRune(r)
			inTok = true
		case quote == '\'':
			if r == '\'' {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case quote == '"':
			switch r {
			case '"':
				quote = 0
			case '\\':
				escape = true
			default:
				cur.WriteRune(r)
			}
		case r == '\\':
			escape = true
			inTok = true
		case r == '\'' || r == '"':
			quote = r
			inTok, quoted = true, true
		case r == ' ' || r == '\t' || r == '\n' || r == '\r':
			flush()
		default:
			cur.WriteRune(r)
			inTok = true
		}
	}
	if escape && quote == 0 {
		// A trailing lone backslash: keep it literally.
		cur.WriteRune('\\')
	}
	flush()
	return out
}

// pastedLines is the fallback reading of a paste: one path per line, taken
// literally (for terminals that paste names with spaces unquoted).
func pastedLines(s string) []string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		line = strings.Trim(line, "\r\t ")
		if line == "" {
			continue
		}
		if p := cleanPastedToken(line, false); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// cleanPastedToken turns one token into a path: file:// URLs are decoded and
// a leading ~ is expanded. Tokens that cannot be a local path come back
// unchanged so that a later os.Stat rejects them.
func cleanPastedToken(tok string, quoted bool) string {
	if tok == "" {
		return ""
	}
	if strings.HasPrefix(tok, "file://") {
		rest := tok[len("file://"):]
		host, path := rest, ""
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			host, path = rest[:i], rest[i:]
		}
		if host != "" && !strings.EqualFold(host, "localhost") {
			return tok // another machine's file: not ours to send
		}
		if p, err := url.PathUnescape(path); err == nil && p != "" && !strings.ContainsRune(p, 0) {
			return p
		}
		return tok
	}
	if !quoted && (tok == "~" || strings.HasPrefix(tok, "~/")) {
		if home, err := os.UserHomeDir(); err == nil && home != "" {
			return filepath.Join(home, tok[1:])
		}
	}
	return tok
}

// existingFiles reports whether every path names an existing regular file
// (symbolic links are followed).
func existingFiles(paths []string) bool {
	if len(paths) == 0 {
		return false
	}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil || !st.Mode().IsRegular() {
			return false
		}
	}
	return true
}

// pastedFiles returns the files a paste names, or nil when the paste is not
// (only) a list of existing regular files and should be treated as text.
func pastedFiles(s string) []string {
	if strings.TrimSpace(s) == "" || len(s) > 64<<10 {
		return nil
	}
	if ps := ParsePastedPaths(s); existingFiles(ps) {
		return ps
	}
	if ps := pastedLines(s); existingFiles(ps) {
		return ps
	}
	return nil
}

// droppedPaths returns the paths of a paste that reads as a drop although
// not every path is a regular file (a directory, a file that does not
// exist): every token an absolute path below the root that exists or
// whose folder exists. Anything else is text: "/help" or "/api/v1/users"
// pasted into the chat stay text.
func droppedPaths(s string) []string {
	if strings.TrimSpace(s) == "" || len(s) > 64<<10 {
		return nil
	}
	ps := ParsePastedPaths(s)
	if len(ps) == 0 || len(ps) > 64 {
		return nil
	}
	for _, p := range ps {
		if !filepath.IsAbs(p) || strings.ContainsAny(p, "\n\r") {
			return nil
		}
		dir := filepath.Dir(filepath.Clean(p))
		if dir == filepath.Dir(dir) {
			return nil // directly under the root: more likely a command than a file
		}
		if _, err := os.Stat(p); err == nil {
			continue
		}
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return nil
		}
	}
	return ps
}
