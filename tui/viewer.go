package tui

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// The value viewer (Enter on a key, a fetched value) shows a value the way
// a person reads it: JSON objects and arrays pretty-printed, other UTF-8
// text wrapped, anything else as a hex dump with its printable bytes.

// valueKind names how a value is shown: "JSON", "text" or "binary".
func valueKind(b []byte) string {
	t := bytes.TrimSpace(b)
	if len(t) > 0 && (t[0] == '{' || t[0] == '[') && json.Valid(t) {
		return "JSON"
	}
	if utf8.Valid(b) && !hasBinaryControls(b) {
		return "text"
	}
	return "binary"
}

// hasBinaryControls tells text from data that merely happens to be valid
// UTF-8 (NUL and most C0 controls never appear in text).
func hasBinaryControls(b []byte) bool {
	for _, c := range b {
		if c < 0x20 && c != '\n' && c != '\r' && c != '\t' {
			return true
		}
	}
	return false
}

func compactJSON(b []byte) []byte {
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return b
	}
	return out.Bytes()
}

// viewerLines lays a value out for a view w cells wide.
func viewerLines(b []byte, w int) ([]string, string) {
	kind := valueKind(b)
	switch kind {
	case "JSON":
		var out bytes.Buffer
		if err := json.Indent(&out, bytes.TrimSpace(b), "", "  "); err == nil {
			return strings.Split(wrapText(out.String(), w), "\n"), kind
		}
		fallthrough
	case "text":
		return strings.Split(wrapText(strings.ReplaceAll(string(b), "\t", "    "), w), "\n"), "text"
	}
	return strings.Split(hexDump(b, w), "\n"), "binary (hex)"
}
