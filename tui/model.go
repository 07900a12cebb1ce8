package tui

import (
	"context"
	"strings"
	"sync/atomic"
	"time"

	"github.com/charmbracelet/bubbles/cursor"
	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/chaski-dev/chaski/chaski"
	"github.com/chaski-dev/chaski/theme"
)

// Options configures the dashboard.
type Options struct {
	Theme    string              // theme name (see theme.Names); "" = default
	Keys     map[string][]string // action → keys, from a config file (see KeyActions); shown in "?" help
	Renderer *lipgloss.Renderer  // draws the styles (an SSH session's own); nil = lipgloss's default
	ReadOnly bool                // a viewer that may not publish, send, delete or close edges
	// NoLocalFiles: the dashboard runs on another machine than its viewer
	// (SSH), so paths name the server's files: no path is looked at
	// (pastes are text, /send and drops are refused), lest a viewer read
	// or probe them.
	NoLocalFiles      bool
	Mouse             bool             // capture the mouse (wheel scrolling); off by default
	Title             string           // shown at the left of the header; "" = "chaski"
	AcceptFilesPrompt bool             // ask the user about incoming file offers
	LogLines          int              // lines kept in the log pane; 0 = 1000
	Connect           []string         // addresses to connect to at start, retried until up
	StoreNote         string           // why the node has no store, and the fix (shown in Storage)
	DataDir           string           // where e writes exports; "" = the store's directory
	Now               func() time.Time // clock; nil = time.Now
}

const (
	frameInterval   = 50 * time.Millisecond  // repaint rate: 20 fps
	refreshInterval = 500 * time.Millisecond // node snapshot rate
	storeInterval   = 5 * time.Second        // store listing refresh when idle
	maxBatch        = 512                    // events folded into one Msg
	noticeTTL       = 8 * time.Second
	eventBuffer     = 4096
)

// Messages the model receives.
type (
	eventsMsg struct {
		evs    []chaski.Event
		closed bool
	}
	messagesMsg struct {
		msgs   []*chaski.Message
		closed bool
	}
	frameMsg    struct{ at time.Time }
	snapshotMsg struct {
		status    chaski.Status
		edges     []chaski.EdgeInfo
		pairings  []chaski.PairingInfo
		nearby    []chaski.NearbyNode
		transfers []chaski.TransferInfo
		store     []chaski.StoreEntry
		storeErr  error
		withStore bool
	}
	// resultMsg is the outcome of a command run in the background.
	resultMsg struct {
		notice    string
		err       error
		openTitle string // show a value in the detail view when set
		openBody  []byte
		refresh   bool // refresh the store listing now
	}
)

// confirm is a yes/no question the user's own key asked (close an edge,
// delete a key): it takes y, n and esc until answered. Questions nobody
// asked for (an incoming file) are offers instead and never take keys.
type confirm struct {
	question string
	yes      func() tea.Cmd
}

// prompt is a one-line text question on the status line.
type prompt struct {
	label  string
	input  textinput.Model
	submit func(value string) tea.Cmd
	change func(value string) // live updates (the filter)
}

type model struct {
	sh    *shared
	panes [numPanes]component
	edges *edgesPane
	chat  *topicsPane
	xfers *transfersPane
	disc  *discoveryPane
	store *storePane
	logs  *logPane
	help  help.Model

	ctx  context.Context
	stop context.CancelFunc

	events    <-chan chaski.Event
	stopWatch func()
	msgs      <-chan *chaski.Message

	focus   paneID
	zoomed  bool
	confirm *confirm
	prompt  *prompt

	overlay      string // "", "help" or "detail"
	overlayTitle string
	overlayLines []string
	overlayOff   int
	detailBody   []byte
	detailKind   string // text, JSON or binary (hex): how the detail view shows its body
	clip         string // an OSC 52 sequence for the next frame (copy to clipboard)

	frames     map[frameKey]frameStrings
	cache      [numPanes]paneCache
	dropSeq    int
	lastSecond int64
	dataDirty  bool
	viewDirty  bool
	view       string
	quitting   bool
	suspended  *atomic.Bool // set while Ctrl-Z has the program stopped (see Run)
	initCmds   []tea.Cmd
}

// Model is the dashboard's Bubble Tea model. It is a handle: copies share
// the same state.
type Model struct{ m *model }

// NewModel builds the dashboard for a backend as a tea.Model that needs no
// terminal of its own (an SSH session can run it). It starts watching the
// node's events at once; the watch stops when the model quits.
func NewModel(b Backend, opts Options) tea.Model { return New(b, opts) }

// New is NewModel returning the concrete handle (Close stops the watch).
func New(b Backend, opts Options) Model {
	st, err := theme.New(opts.Theme, opts.Renderer)
	if err != nil {
		st, _ = theme.New(theme.DefaultName, opts.Renderer)
	}
	if opts.LogLines <= 0 {
		opts.LogLines = 1000
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	km := newKeyMap()
	// Each action on its own: one the CLI did not know (CheckKeys reports
	// those) does not cost the others.
	var keyErr error
	for action, k := range opts.Keys {
		if err := km.apply(map[string][]string{action: k}); err != nil && keyErr == nil {
			keyErr = err
		}
	}
	sh := &shared{
		st: st, keys: km, b: b, now: now, opts: opts, bg: ctx, width: 80, height: 24, readOnly: opts.ReadOnly,
		transfers: map[string]*chaski.TransferInfo{}, offered: map[string]bool{}, peerIdx: map[string]int{},
		storeStale: true,
	}
	sh.xhist.init()
	m := &model{sh: sh, ctx: ctx, stop: cancel, viewDirty: true, suspended: new(atomic.Bool)}
	m.logs = newLogPane(sh, opts.LogLines)
	sh.logf = m.logs.add
	sh.loadTransfers()
	m.edges = newEdgesPane(sh)
	m.chat = newTopicsPane(sh)
	m.disc = newDiscoveryPane(sh)
	m.xfers = newTransfersPane(sh)
	m.store = newStorePane(sh)
	m.panes = [numPanes]component{m.edges, m.chat, m.disc, m.xfers, m.store, m.logs}
	m.edges.m, m.chat.m, m.disc.m, m.xfers.m, m.store.m, m.logs.m = m, m, m, m, m, m
	m.help = help.New()
	m.help.Styles.ShortKey = st.HelpKey
	m.help.Styles.ShortDesc = st.HelpDesc
	m.help.Styles.ShortSeparator = st.HelpSep
	m.help.Styles.FullKey = st.HelpKey
	m.help.Styles.FullDesc = st.HelpDesc
	m.help.Styles.FullSeparator = st.HelpSep
	m.help.Styles.Ellipsis = st.HelpSep
	if keyErr != nil {
		sh.setNotice(true, "%v", keyErr)
	}
	m.events, m.stopWatch = b.Watch(eventBuffer)
	m.msgs = b.Messages()
	// A first, synchronous snapshot so the first frame is not empty. These
	// calls only read the node's state.
	sh.applySnapshot(m.snapshot(true))
	m.chat.syncTopics()
	m.initCmds = append(m.initCmds, m.chat.loadHistory())
	// Started with a subscription, the chat input has the focus: a line
	// typed at once goes to the topic.
	if len(sh.status.Subscriptions) > 0 && !opts.ReadOnly {
		m.focus = paneTopics
		m.initCmds = append(m.initCmds, m.chat.setTyping(true))
	}
	for _, a := range opts.Connect {
		m.initCmds = append(m.initCmds, m.startDial(a))
	}
	return Model{m}
}

// Close stops watching the node. It is safe to call more than once.
func (mm Model) Close() {
	m := mm.m
	m.stop()
	if m.stopWatch != nil {
		m.stopWatch()
	}
}

// Init starts the event readers and the timers.
func (mm Model) Init() tea.Cmd {
	m := mm.m
	cmds := append([]tea.Cmd{
		waitEvents(m.ctx, m.events),
		waitMessages(m.ctx, m.msgs),
		frameTick(),
		m.snapshotCmd(true),
	}, m.initCmds...)
	m.initCmds = nil
	return tea.Batch(cmds...)
}

// View returns the last rendered frame, re-rendering only when something
// changed since: keys and resizes re-render at once, node events at the
// next frame tick.
func (mm Model) View() string {
	m := mm.m
	if m.quitting {
		return ""
	}
	if m.viewDirty || m.view == "" {
		m.view = m.render()
		m.viewDirty = false
	}
	return m.view
}

// Update handles one message.
func (mm Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	return mm, mm.m.update(msg)
}

func frameTick() tea.Cmd {
	return tea.Tick(frameInterval, func(t time.Time) tea.Msg { return frameMsg{at: t} })
}

// waitEvents blocks for one event, then takes whatever else is already
// queued (up to maxBatch) so that a burst costs one Update.
func waitEvents(ctx context.Context, ch <-chan chaski.Event) tea.Cmd {
	if ch == nil {
		return nil
	}
	return func() tea.Msg {
		var ev chaski.Event
		var ok bool
		select {
		case ev, ok = <-ch:
		case <-ctx.Done():
			return nil // the dashboard ended: no reader is left behind
		}
		if !ok {
			return eventsMsg{closed: true}
		}
		batch := make([]chaski.Event, 1, 16)
		batch[0] = ev
		for len(batch) < maxBatch {
			select {
			case ev, ok := <-ch:
				if !ok {
					return eventsMsg{evs: batch, closed: true}
				}
				batch = append(batch, ev)
			default:
				return eventsMsg{evs: batch}
			}
		}
		return eventsMsg{evs: batch}
	}
}

func waitMessages(ctx context.Context, ch <-chan *chaski.Message) tea.Cmd {
	if ch == nil {
		return nil
	}
	return func() tea.Msg {
		var msg *chaski.Message
		var ok bool
		select {
		case msg, ok = <-ch:
		case <-ctx.Done():
			return nil
		}
		if !ok {
			return messagesMsg{closed: true}
		}
		batch := make([]*chaski.Message, 1, 16)
		batch[0] = msg
		for len(batch) < maxBatch {
			select {
			case msg, ok := <-ch:
				if !ok {
					return messagesMsg{msgs: batch, closed: true}
				}
				batch = append(batch, msg)
			default:
				return messagesMsg{msgs: batch}
			}
		}
		return messagesMsg{msgs: batch}
	}
}

func (m *model) snapshot(withStore bool) snapshotMsg {
	b := m.sh.b
	s := snapshotMsg{status: b.Status(), edges: b.Edges(), pairings: b.Pairings(), nearby: nearbyOf(b), transfers: b.Transfers(), withStore: withStore}
	if withStore {
		s.store, s.storeErr = b.StoreEntries()
	}
	return s
}

// snapshotCmd reads the node's state off the UI goroutine.
func (m *model) snapshotCmd(withStore bool) tea.Cmd {
	return func() tea.Msg { return m.snapshot(withStore) }
}

func (m *model) scheduleSnapshot() tea.Cmd {
	sh := m.sh
	withStore := sh.storeStale || sh.now().Sub(sh.storeAt) >= storeInterval
	if withStore {
		sh.storeStale = false
	}
	return tea.Tick(refreshInterval, func(time.Time) tea.Msg { return m.snapshot(withStore) })
}

// paneCache keeps a pane's last drawing: in a flood of messages only the
// chat changes, and the other panes need not be drawn again each frame.
type paneCache struct {
	w, h    int
	focused bool
	ok      bool
	lines   []string
}

// stale marks panes to be drawn again at the next frame.
func (m *model) stale(ps ...paneID) {
	for _, p := range ps {
		m.cache[p].ok = false
	}
}

func (m *model) staleAll() {
	for p := range m.cache {
		m.cache[p].ok = false
	}
}

// staleFor decides which panes msg may change: messages only the chat,
// latency samples only Edges, log lines only the Log; anything else may
// change what any pane shows.
func (m *model) staleFor(msg tea.Msg) {
	switch msg := msg.(type) {
	case messagesMsg, publishedMsg:
		m.stale(paneTopics)
	case eventsMsg:
		for _, ev := range msg.evs {
			switch ev.(type) {
			case *chaski.LatencyEvent:
				m.stale(paneEdges)
			case *chaski.LogEvent:
				m.stale(paneLog)
			default:
				m.staleAll()
				return
			}
		}
	case frameMsg, dialRetryMsg:
		// onFrame and onDialRetry say what they change.
	default:
		m.staleAll()
	}
}

func (m *model) update(msg tea.Msg) tea.Cmd {
	sh := m.sh
	m.staleFor(msg)
	switch msg := msg.(type) {
	case eventsMsg:
		for _, ev := range msg.evs {
			sh.applyEvent(ev)
			for _, c := range m.panes {
				if e, ok := c.(eventer); ok {
					e.onEvent(ev)
				}
			}
		}
		m.dataDirty = true
		if msg.closed {
			m.events = nil
			return nil
		}
		return waitEvents(m.ctx, m.events)
	case messagesMsg:
		for _, x := range msg.msgs {
			m.chat.addMessage(x)
		}
		m.dataDirty = true
		if msg.closed {
			m.msgs = nil
			return nil
		}
		return waitMessages(m.ctx, m.msgs)
	case frameMsg:
		m.onFrame()
		if save := sh.saveTransfersCmd(); save != nil {
			return tea.Batch(frameTick(), save)
		}
		return frameTick()
	case snapshotMsg:
		sh.applySnapshot(msg)
		m.chat.syncTopics()
		m.dataDirty = true
		return tea.Batch(m.scheduleSnapshot(), m.chat.loadHistory())
	case historyMsg:
		m.chat.onHistory(msg)
		m.dataDirty = true
		return nil
	case resultMsg:
		m.onResult(msg)
		return nil
	case publishedMsg:
		m.chat.onPublished(msg)
		m.viewDirty = true
		return nil
	case dialResultMsg:
		m.viewDirty = true
		return m.onDialResult(msg)
	case dialRetryMsg:
		return m.onDialRetry(msg)
	case dropResultMsg:
		m.onDropResult(msg)
		m.viewDirty = true
		return nil
	case tea.ResumeMsg:
		m.suspended.Store(false)
		m.viewDirty = true
		return nil
	case tea.WindowSizeMsg:
		sh.width, sh.height = msg.Width, msg.Height
		m.viewDirty = true
		return nil
	case tea.KeyMsg:
		m.viewDirty = true
		return m.onKey(msg)
	case tea.MouseMsg:
		return m.onMouse(msg)
	}
	return nil
}

// onFrame runs 20 times a second: it turns data changes into one repaint
// and refreshes derived numbers.
func (m *model) onFrame() {
	sh := m.sh
	now := sh.now()
	if sh.notice != "" && now.Sub(sh.noticeAt) > noticeTTL {
		sh.notice = ""
		m.viewDirty = true
	}
	if m.dataDirty {
		m.viewDirty = true
		m.dataDirty = false
	}
	// Uptime, ages, TTLs and retry countdowns move once a second.
	if sec := now.Unix(); sec != m.lastSecond {
		m.lastSecond = sec
		m.viewDirty = true
		m.staleAll()
	}
}

func (m *model) onResult(r resultMsg) {
	sh := m.sh
	if r.err != nil {
		msg := r.err.Error()
		if r.notice != "" {
			msg = r.notice + ": " + msg
		}
		sh.setNotice(true, "%s", msg)
	} else if r.notice != "" {
		sh.setNotice(false, "%s", r.notice)
	}
	if r.openTitle != "" {
		m.openDetail(r.openTitle, r.openBody)
	}
	if r.refresh {
		sh.storeStale = true
	}
	m.viewDirty = true
}

// ---- keys -------------------------------------------------------------

// textFocus reports whether a text input has the keyboard: then every
// printable key is text and only keys that can never be text act.
func (m *model) textFocus() bool {
	if m.prompt != nil {
		return true
	}
	if m.confirm != nil || m.overlay != "" {
		return false
	}
	t, ok := m.panes[m.focus].(typer)
	return ok && t.typing()
}

// onKey routes a key press: Ctrl-C always quits; keys that arrive together
// in one read (tmux send-keys 'jj', fast typing) are handled one by one
// unless they are text; pastes go to the input or become file drops; a
// question the user asked takes its answer; non-text global keys act in
// every mode; the rest goes to the text input or, in command mode, to the
// global commands and the focused pane.
func (m *model) onKey(msg tea.KeyMsg) tea.Cmd {
	if msg.Type == tea.KeyCtrlC {
		return m.quit()
	}
	if msg.Paste {
		return m.onPaste(msg)
	}
	if msg.Type == tea.KeyRunes && len(msg.Runes) > 1 && !m.textFocus() {
		var cmds []tea.Cmd
		for i, r := range msg.Runes {
			if m.textFocus() {
				// A key opened an input: the rest is text for it.
				rest := msg
				rest.Runes = msg.Runes[i:]
				cmds = append(cmds, m.onKey(rest))
				break
			}
			one := msg
			one.Runes = []rune{r}
			cmds = append(cmds, m.onKey(one))
		}
		return tea.Batch(cmds...)
	}
	if m.confirm != nil {
		return m.onConfirmKey(msg)
	}
	if m.prompt != nil {
		return m.onPromptKey(msg)
	}
	if msg.Type == tea.KeyTab && m.overlay == "" && m.focus == paneTopics && m.chat.typing() && m.chat.complete() {
		return nil // Tab completes a word in the chat input (else it moves the focus)
	}
	if cmd, ok := m.onAlwaysKey(msg); ok {
		return cmd
	}
	if m.overlay != "" {
		return m.onOverlayKey(msg)
	}
	if t, ok := m.panes[m.focus].(typer); ok && t.typing() {
		return t.typeKey(msg)
	}
	if cmd, ok := m.onCommandKey(msg); ok {
		return cmd
	}
	cmd, _ := m.panes[m.focus].key(msg)
	return cmd
}

// onAlwaysKey handles the keys that act in every mode because no terminal
// sends them as text.
func (m *model) onAlwaysKey(msg tea.KeyMsg) (tea.Cmd, bool) {
	k := m.sh.keys
	switch {
	case key.Matches(msg, k.Suspend):
		m.suspended.Store(true)
		return tea.Suspend, true
	case key.Matches(msg, k.NextPane):
		m.overlay = ""
		return m.focusPane((m.focus + 1) % numPanes), true
	case key.Matches(msg, k.PrevPane):
		m.overlay = ""
		return m.focusPane((m.focus + numPanes - 1) % numPanes), true
	case key.Matches(msg, k.PanesAlt):
		m.overlay = ""
		return m.focusPane(paneID(msg.String()[len(msg.String())-1] - '1')), true
	case key.Matches(msg, k.ZoomAlt):
		m.zoomed = !m.zoomed
		return nil, true
	case key.Matches(msg, k.ExportAlt):
		return m.export(), true
	case key.Matches(msg, k.AcceptAlt):
		return m.answerOffer(true), true
	case key.Matches(msg, k.DeclineAlt):
		return m.answerOffer(false), true
	case msg.Type != tea.KeyRunes && key.Matches(msg, k.Help):
		m.openHelp() // F1, or a rebound help key that is not text
		return nil, true
	case msg.Type != tea.KeyRunes && key.Matches(msg, k.Quit):
		return m.quit(), true // a quit key that is not text (ctrl+q)
	}
	return nil, false
}

// onCommandKey handles the global single keys of command mode.
func (m *model) onCommandKey(msg tea.KeyMsg) (tea.Cmd, bool) {
	k := m.sh.keys
	switch {
	case key.Matches(msg, k.Quit):
		return m.quit(), true
	case key.Matches(msg, k.Help):
		m.openHelp()
		return nil, true
	case key.Matches(msg, k.Panes):
		return m.focusPane(paneID(msg.String()[0] - '1')), true
	case key.Matches(msg, k.Zoom):
		m.zoomed = !m.zoomed
		return nil, true
	case key.Matches(msg, k.Filter):
		return m.startFilter(), true
	case key.Matches(msg, k.Export):
		return m.export(), true
	case key.Matches(msg, k.Back):
		c := m.panes[m.focus]
		if c.filter() != "" {
			c.setFilter("")
		} else if m.zoomed {
			m.zoomed = false
		}
		return nil, true
	case key.Matches(msg, k.Accept) && len(m.sh.offers) > 0:
		return m.answerOffer(true), true
	case key.Matches(msg, k.Decline) && len(m.sh.offers) > 0:
		return m.answerOffer(false), true
	}
	return nil, false
}

func (m *model) focusPane(p paneID) tea.Cmd {
	if p < 0 || p >= numPanes {
		return nil
	}
	if t, ok := m.panes[m.focus].(typer); ok && m.focus != p {
		t.setTyping(false)
	}
	m.focus = p
	if t, ok := m.panes[p].(typer); ok && !m.sh.readOnly {
		// Going to the chat means typing in it (Esc gives keys back).
		return t.setTyping(true)
	}
	return nil
}

func (m *model) quit() tea.Cmd {
	m.quitting = true
	m.stop()
	if m.stopWatch != nil {
		m.stopWatch()
	}
	return tea.Quit
}

func (m *model) onConfirmKey(msg tea.KeyMsg) tea.Cmd {
	c := m.confirm
	k := m.sh.keys
	switch {
	case key.Matches(msg, k.Yes):
		m.confirm = nil
		if c.yes != nil {
			return c.yes()
		}
	case key.Matches(msg, k.No):
		m.confirm = nil
	}
	return nil
}

func (m *model) ask(question string, yes func() tea.Cmd) {
	m.confirm = &confirm{question: question, yes: yes}
}

// askText opens a one-line prompt on the status line.
func (m *model) askText(label, value string, submit func(v string) tea.Cmd) tea.Cmd {
	in := newInput(m.sh.st, label+" › ", "")
	in.SetValue(value)
	in.CursorEnd()
	m.prompt = &prompt{label: label, input: in, submit: submit}
	return m.prompt.input.Focus()
}

func (m *model) onPromptKey(msg tea.KeyMsg) tea.Cmd {
	p := m.prompt
	switch msg.Type {
	case tea.KeyEsc:
		m.prompt = nil
		if p.change != nil {
			p.change("")
		}
		return nil
	case tea.KeyEnter:
		m.prompt = nil
		if p.submit != nil {
			return p.submit(strings.TrimSpace(p.input.Value()))
		}
		return nil
	}
	var cmd tea.Cmd
	p.input, cmd = p.input.Update(msg)
	if p.change != nil {
		p.change(p.input.Value())
	}
	return cmd
}

func (m *model) startFilter() tea.Cmd {
	c := m.panes[m.focus]
	in := newInput(m.sh.st, "/", "filter "+paneNames[m.focus])
	in.SetValue(c.filter())
	in.CursorEnd()
	m.prompt = &prompt{label: "filter", input: in, change: c.setFilter}
	return m.prompt.input.Focus()
}

func (m *model) openHelp() {
	m.overlay = "help"
	m.overlayTitle = "Keys"
	m.overlayOff = 0
	m.overlayLines = nil // laid out for the width at render time
}

func (m *model) openDetail(title string, body []byte) {
	m.overlay = "detail"
	m.overlayTitle = title
	m.overlayOff = 0
	m.detailBody = body
	m.overlayLines = nil
	m.viewDirty = true
}

func (m *model) onOverlayKey(msg tea.KeyMsg) tea.Cmd {
	k := m.sh.keys
	page := max(1, m.bodyHeight()-3)
	switch {
	case key.Matches(msg, k.Back), key.Matches(msg, k.Quit), key.Matches(msg, k.Help), msg.Type == tea.KeyEnter:
		m.overlay = ""
	case key.Matches(msg, k.Up):
		m.overlayOff--
	case key.Matches(msg, k.Down):
		m.overlayOff++
	case key.Matches(msg, k.PgUp):
		m.overlayOff -= page
	case key.Matches(msg, k.PgDown):
		m.overlayOff += page
	case key.Matches(msg, k.Top):
		m.overlayOff = 0
	case key.Matches(msg, k.Bottom):
		m.overlayOff = 1 << 30
	}
	m.overlayOff = max(0, m.overlayOff)
	return nil
}

// onPaste turns a paste into text for the input that has the focus (the
// chat input when none has), or, when it names existing files, into a
// drop that sends them.
func (m *model) onPaste(msg tea.KeyMsg) tea.Cmd {
	if m.confirm != nil {
		return nil // a question is open: a stray paste answers nothing
	}
	if m.prompt != nil {
		return m.onPromptKey(msg) // a path pasted into a prompt is text for it
	}
	if m.sh.opts.NoLocalFiles {
		// Not even a stat: whether a path exists on the server is not
		// the viewer's to learn.
	} else if files := pastedFiles(string(msg.Runes)); files != nil {
		return m.dropFiles(files)
	} else if paths := droppedPaths(string(msg.Runes)); paths != nil {
		// Absolute paths that are not all regular files: a drop of a
		// directory (sent whole when the node can) or of a file that is
		// gone. Each gets a row saying why; none becomes silent text.
		return m.dropFiles(paths)
	}
	m.overlay = ""
	if m.sh.readOnly {
		m.sh.setNotice(true, "read-only: this dashboard cannot publish")
		return nil
	}
	var cmd tea.Cmd
	if m.focus != paneTopics || !m.chat.typing() {
		cmd = m.focusPane(paneTopics)
	}
	m.chat.insert(string(msg.Runes))
	return cmd
}

func (m *model) onMouse(msg tea.MouseMsg) tea.Cmd {
	if !tea.MouseEvent(msg).IsWheel() {
		return nil
	}
	up := msg.Button == tea.MouseButtonWheelUp
	if m.overlay != "" {
		if up {
			m.overlayOff = max(0, m.overlayOff-3)
		} else {
			m.overlayOff += 3
		}
	} else {
		k, d := tea.KeyMsg{Type: tea.KeyDown}, -3
		if up {
			k, d = tea.KeyMsg{Type: tea.KeyUp}, 3
		}
		if m.focus == paneTopics {
			m.chat.scrollBy(d)
		} else {
			for i := 0; i < 3; i++ {
				m.panes[m.focus].key(k)
			}
		}
	}
	m.viewDirty = true
	return nil
}

func newInput(st theme.Styles, promptText, placeholder string) textinput.Model {
	ti := textinput.New()
	ti.Prompt = promptText
	ti.Placeholder = placeholder
	ti.PromptStyle = st.Prompt
	ti.TextStyle = st.InputText
	ti.PlaceholderStyle = st.Placeholder
	ti.Cursor.SetMode(cursor.CursorStatic) // a blinking cursor repaints twice a second for nothing
	ti.CharLimit = 64 << 10
	return ti
}
