// Package tui is Chaski's terminal dashboard, built on Bubble Tea v1.
//
// Layout, top to bottom: a header (node name and address — with "*" when
// every subscription is paired —, root flag, uptime, edge count, messages
// in/out per second, TLS), the pane tabs, the current pane, a status line
// for notices and prompts, and a one-line key help. Panes: 1 Edges (state,
// latency numbers and a live sparkline where lost pings are marked "×"),
// 2 Topics (a tab per subscription plus "all", a chat view and an input
// line with /commands), 3 Discovery, 4 Transfers (progress bars; files
// dropped on the terminal are offered for sending), 5 Storage, 6 Log.
// "?" lists every key; "/" filters the list of any pane.
//
// Data flow: the model watches the node's events and drains its subscriber
// queue with re-armed commands that fold bursts into one message (at most
// maxBatch), polls a snapshot (status, edges, transfers, store) off the UI
// goroutine every refreshInterval, and repaints at most 20 times a second:
// node data only marks the model dirty, and the next frame tick renders.
// Topic histories are bounded rings with cached rendered lines. Every call
// that may block the node runs inside a tea.Cmd.
package tui
