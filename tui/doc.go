// Package tui is Chaski's terminal dashboard, built on Bubble Tea v1.
//
// Screen, top to bottom: a header (node name and address — with "*" when
// every subscription is paired —, edges up and retrying, messages in/out per
// second, uptime, TLS), on smaller screens a strip naming every pane, the
// panes, a status line (the mode badge — TYPING or KEYS —, then an open
// question, a waiting file offer or the last notice) and a one-line key
// help. From 120×28 every pane is on screen: Edges above the Topics chat on
// the left, Transfers, Discovery, Storage and Log on the right; from 80×20
// one column (a list pane above the chat); below that the focused pane
// alone; under 50×12 a "terminal too small" line with the minimum. The
// focused pane has a heavier frame and a highlighted title; z zooms it.
//
// Each pane is a component (component.go) with its own view state, keys and
// help over one shared context (context.go); the root model (model.go)
// routes keys: while the chat input has the focus every printable key is
// text and only keys that can never be text act (Tab, Esc, Enter, Ctrl and
// Alt keys, function keys); otherwise single keys are commands. Keys that
// arrive in one read are handled one by one; a paste is text for the input
// unless it names existing files, which are then sent. Questions nobody
// asked for (an incoming file) wait on the status line and never take keys.
//
// Data flow: messages come only from Backend.Messages (the dashboard shows
// its own lines when it publishes them); events come from Backend.Watch,
// which carries no message events, so a message flood cannot crowd out an
// edge or transfer event. Both are drained by re-armed commands that fold
// bursts into one message (at most maxBatch); a snapshot (status, edges,
// pairings, transfers, store) is read off the UI goroutine every
// refreshInterval, and the screen is repainted at most 20 times a second.
// Every call that may block the node runs inside a tea.Cmd.
package tui
