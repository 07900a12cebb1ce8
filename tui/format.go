package tui

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
)

const ellipsis = "…"

// fmtRTT formats a latency: µs below a millisecond (loopback is tens of
// µs), then ms with one or two decimals, then seconds.
func fmtRTT(d time.Duration) string {
	switch {
	case d <= 0:
		return "–"
	case d < time.Millisecond:
		us := d.Microseconds()
		if us < 1 {
			us = 1
		}
		return strconv.FormatInt(us, 10) + "µs"
	case d < 10*time.Millisecond:
		return strconv.FormatFloat(float64(d)/1e6, 'f', 2, 64) + "ms"
	case d < 100*time.Millisecond:
		return strconv.FormatFloat(float64(d)/1e6, 'f', 1, 64) + "ms"
	case d < time.Second:
		return strconv.FormatFloat(float64(d)/1e6, 'f', 0, 64) + "ms"
	default:
		return strconv.FormatFloat(d.Seconds(), 'f', 2, 64) + "s"
	}
}

// fmtBytes formats a byte count with binary units ("1.5 MiB").
func fmtBytes(n int64) string {
	if n < 0 {
		return "?"
	}
	if n < 1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	v := float64(n)
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB"} {
		v /= 1024
		if v < 1024 || u == "TiB" {
			if v < 10 {
				return strconv.FormatFloat(v, 'f', 1, 64) + " " + u
			}
			return strconv.FormatFloat(v, 'f', 0, 64) + " " + u
		}
	}
	return "?"
}

// fmtAge formats a non-negative duration compactly: 12s, 3m05s, 1h02m, 2d03h.
func fmtAge(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int64(d / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	case s < 86400:
		return fmt.Sprintf("%dh%02dm", s/3600, (s%3600)/60)
	default:
		return fmt.Sprintf("%dd%02dh", s/86400, (s%86400)/3600)
	}
}

// fmtETA formats a remaining time as m:ss or h:mm:ss.
func fmtETA(d time.Duration) string {
	if d <= 0 {
		return "–"
	}
	s := int64((d + time.Second - 1) / time.Second)
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, (s%3600)/60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

func fmtRate(perSec float64) string {
	if perSec < 0.05 {
		return "0"
	}
	if perSec < 10 {
		return strconv.FormatFloat(perSec, 'f', 1, 64)
	}
	if perSec < 10000 {
		return strconv.FormatFloat(perSec, 'f', 0, 64)
	}
	return strconv.FormatFloat(perSec/1000, 'f', 1, 64) + "k"
}

// trunc cuts s (which may hold ANSI styles) to at most w cells, ending
// with "…" when something was cut.
func trunc(s string, w int) string {
	if w <= 0 {
		return ""
	}
	if lipgloss.Width(s) <= w {
		return s
	}
	return ansi.Truncate(s, w, ellipsis)
}

// fit makes plain text exactly w cells wide: truncated with "…" or padded.
func fit(s string, w int, right bool) string {
	if w <= 0 {
		return ""
	}
	s = trunc(s, w)
	pad := w - lipgloss.Width(s)
	if pad <= 0 {
		return s
	}
	if right {
		return strings.Repeat(" ", pad) + s
	}
	return s + strings.Repeat(" ", pad)
}

// sanitize makes a payload printable on one line: control characters
// become visible marks, so a message can never move the cursor.
func sanitize(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			clean = false
			break
		}
	}
	if clean && !strings.ContainsRune(s, '\u009b') {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case r == '\n':
			b.WriteString("⏎")
		case r == '\t':
			b.WriteString(" ")
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			b.WriteString("�")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// payloadText renders a payload for a one-line view: UTF-8 text as is
// (sanitised), anything else as "<N bytes> " and a hex preview.
func payloadText(data []byte, max int) (string, bool) {
	if utf8.Valid(data) {
		if len(data) > 4*max+16 {
			data = data[:4*max+16]
			for len(data) > 0 && !utf8.Valid(data) {
				data = data[:len(data)-1]
			}
		}
		return sanitize(string(data)), false
	}
	return binaryPreview(data, 16), true
}

func binaryPreview(data []byte, n int) string {
	const hexd = "0123456789abcdef"
	var b strings.Builder
	b.WriteString("<")
	b.WriteString(strconv.Itoa(len(data)))
	b.WriteString(" bytes> ")
	for i, c := range data {
		if i == n {
			b.WriteString(" " + ellipsis)
			break
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteByte(hexd[c>>4])
		b.WriteByte(hexd[c&15])
	}
	return b.String()
}

// parseSize reads "65536", "64k", "64KiB", "1M", "1MiB".
func parseSize(s string) (int, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "ib"), "b")
	mult := 1
	switch {
	case strings.HasSuffix(t, "k"):
		mult, t = 1024, strings.TrimSuffix(t, "k")
	case strings.HasSuffix(t, "m"):
		mult, t = 1024*1024, strings.TrimSuffix(t, "m")
	}
	n, err := strconv.Atoi(strings.TrimSpace(t))
	if err != nil || n < 0 || n > (64<<20)/mult {
		return 0, fmt.Errorf("bad size %q (e.g. 64KiB, 1MiB, 1200)", s)
	}
	return n * mult, nil
}
