package sshui

import (
	"strings"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/ssh"
	"github.com/muesli/termenv"
)

// sessionRenderer is the lipgloss renderer of one session: its colour
// profile comes from the client's TERM (from the PTY request) and
// COLORTERM (when the client sends it), so colours fit the client's
// terminal, not the server's.
//
// It is wish's bubbletea.MakeRenderer without the terminal query: for a
// session without a real PTY, MakeRenderer asks the client's terminal for
// its background colour and reads the session until an answer comes, with
// a timeout that cannot interrupt the read. A client whose terminal does
// not answer (a script, `ssh -tt host </dev/null`) then holds its session
// slot until the transport times out, and the first keys a user types are
// taken as the answer. The dashboard's palettes do not depend on the
// background, so the renderer assumes a dark one instead of asking.
func sessionRenderer(sess ssh.Session) *lipgloss.Renderer {
	pty, _, ok := sess.Pty()
	if !ok || pty.Term == "" || pty.Term == "dumb" {
		return lipgloss.NewRenderer(sess, termenv.WithProfile(termenv.Ascii))
	}
	env := environ(append(sess.Environ(), "TERM="+pty.Term))
	r := lipgloss.NewRenderer(sess, termenv.WithEnvironment(env), termenv.WithUnsafe(), termenv.WithColorCache(true))
	r.SetHasDarkBackground(true)
	return r
}

// noColor reports whether the client sent NO_COLOR (ssh's SendEnv).
func noColor(sess ssh.Session) bool {
	return environ(sess.Environ()).Getenv("NO_COLOR") != ""
}

type environ []string

func (e environ) Environ() []string { return e }

func (e environ) Getenv(k string) string {
	// The last assignment wins, as in a shell.
	v := ""
	for _, kv := range e {
		if strings.HasPrefix(kv, k+"=") {
			v = kv[len(k)+1:]
		}
	}
	return v
}
