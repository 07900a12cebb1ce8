package tui

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/charmbracelet/bubbles/cursor"
	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/progress"
	"github.com/charmbracelet/bubbles/textinput"
	"github.com/charmbracelet/bubbles/viewport"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/chaski-dev/chaski/chaski"
	"github.com/chaski-dev/chaski/chaski/wire"
	"github.com/chaski-dev/chaski/theme"
)

// Options configures the dashboard.
type Options struct {
	Theme             string           // theme name (see theme.Names); "" = default
	Mouse             bool             // capture the mouse (wheel scrolling); off by default
	Title             string           // shown at the left of the header; "" = "chaski"
	AcceptFilesPrompt bool             // ask the user about incoming file offers
	LogLines          int              // lines kept in the log pane; 0 = 1000
	Now               func() time.Time // clock; nil = time.Now
	// Keys rebinds actions (see KeyActions) to other keys: action -> keys
	// as Bubble Tea names them ("ctrl+q", "f10", "x"). The help shows them.
	// Unknown actions are ignored here; CheckKeys reports them.
	Keys map[string][]string
}

// CheckKeys reports the first unknown action or empty key list in keys.
func CheckKeys(keys map[string][]string) error {
	km := newKeyMap()
	return km.rebind(keys)
}

type pane int

const (
	paneEdges pane = iota
	paneTopics
	paneDiscovery
	paneTransfers
	paneStore
	paneLog
	numPanes
)

var paneNames = [numPanes]string{"Edges", "Topics", "Discovery", "Transfers", "Storage", "Log"}

const (
	frameInterval   = 50 * time.Millisecond  // repaint rate: 20 fps
	refreshInterval = 500 * time.Millisecond // node snapshot rate
	storeInterval   = 5 * time.Second        // store listing refresh when idle
	maxBatch        = 512                    // events folded into one Msg
	topicLines      = 1000                   // messages kept per topic
	noticeTTL       = 8 * time.Second
	eventBuffer     = 4096
	dedupSize       = 8192
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
		transfers []chaski.TransferInfo
		store     []chaski.StoreEntry
		storeErr  error
		withStore bool
	}
	// resultMsg is the outcome of a command run in the background.
	resultMsg struct {
		notice string
		err    error
		// open shows a value in the detail view when set.
		openTitle string
		openBody  []byte
		refresh   bool // refresh the snapshot now
	}
	publishedMsg struct {
		id  int
		err error
	}
)

// msgEntry is one line of a topic view.
type msgEntry struct {
	at     time.Time
	topic  string
	from   string
	data   []byte
	self   bool
	id     int    // local publish id while pending, 0 otherwise
	failed string // publish error
	// cached rendering
	line  string
	lineW int
}

type logEntry struct {
	at    time.Time
	level int // -4 debug, 0 info, 4 warn, 8 error (slog levels)
	text  string
}

type discState struct {
	lastRun time.Time
	phase   string
	peer    string
	detail  string
	first   bool
}

type prompt struct {
	label  string
	input  textinput.Model
	submit func(m *model, value string) tea.Cmd
}

type confirm struct {
	question string
	id       string // transfer id for incoming offers
	yes, no  func(m *model) tea.Cmd
}

type model struct {
	b     Backend
	opts  Options
	st    theme.Styles
	keys  keyMap
	help  help.Model
	now   func() time.Time
	ctx   context.Context
	stop  context.CancelFunc
	title string

	events    <-chan chaski.Event
	stopWatch func()
	msgs      <-chan *chaski.Message

	width, height int
	pane          pane

	// Node snapshot, patched by events between snapshots.
	status        chaski.Status
	haveStatus    bool
	edges         []chaski.EdgeInfo
	transfers     map[string]*chaski.TransferInfo
	transferOrder []string
	store         []chaski.StoreEntry
	storeErr      error
	storeStale    bool
	storeAt       time.Time

	rateAt          time.Time
	rateIn, rateOut float64
	lastIn, lastOut uint64
	seenIn, seenOut uint64 // messages counted from events (fallback rate)

	// Topics.
	all      *ring[msgEntry]
	topics   map[string]*ring[msgEntry]
	topicTab int // 0 = all
	topicSet bool
	input    textinput.Model
	typing   bool
	hist     []string
	histIdx  int
	histTmp  string
	scroll   int // entries hidden below the view (0 = follow)
	pending  []int
	pubSeq   int
	seen     map[wire.MessageID]struct{}
	seenRing *ring[wire.MessageID]

	// Discovery and log.
	disc    map[string]*discState
	discLog *ring[logEntry]
	logs    *ring[logEntry]

	// Generic list state per pane.
	sel       [numPanes]int
	off       [numPanes]int
	filter    [numPanes]string
	filtering bool
	filterIn  textinput.Model
	logScroll int

	prompt     *prompt
	confirms   []confirm
	offered    map[string]bool
	showHelp   bool
	helpView   viewport.Model
	detail     bool
	detailView viewport.Model
	detailName string
	detailBody []byte

	notice    string
	noticeErr bool
	noticeAt  time.Time

	bar progress.Model

	// Render caches.
	boxW                                 int
	boxTop, boxBottom, boxLeft, boxRight string
	headerKey, headerLine                string

	lastSecond int64
	dataDirty  bool
	viewDirty  bool
	view       string
	quitting   bool
}

// Model is the dashboard's Bubble Tea model. It is a handle: copies share
// the same state.
type Model struct{ m *model }

// New builds the dashboard for a backend. It starts watching the node's
// events at once; Close stops the watch (Run does it for you).
func New(b Backend, opts Options) Model {
	st, err := theme.Load(opts.Theme)
	if err != nil {
		st = theme.MustLoad(theme.DefaultName)
	}
	if opts.LogLines <= 0 {
		opts.LogLines = 1000
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	keys := newKeyMap()
	for action, k := range opts.Keys {
		_ = keys.rebind(map[string][]string{action: k})
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &model{
		b: b, opts: opts, st: st, keys: keys, now: now,
		ctx: ctx, stop: cancel,
		title:      opts.Title,
		width:      80,
		height:     24,
		pane:       paneEdges,
		transfers:  map[string]*chaski.TransferInfo{},
		all:        newRing[msgEntry](topicLines),
		topics:     map[string]*ring[msgEntry]{},
		seen:       make(map[wire.MessageID]struct{}, dedupSize),
		seenRing:   newRing[wire.MessageID](dedupSize),
		disc:       map[string]*discState{},
		discLog:    newRing[logEntry](200),
		logs:       newRing[logEntry](opts.LogLines),
		offered:    map[string]bool{},
		storeStale: true,
		viewDirty:  true,
	}
	if m.title == "" {
		m.title = "chaski"
	}
	m.help = help.New()
	m.help.Styles.ShortKey = st.HelpKey
	m.help.Styles.ShortDesc = st.HelpDesc
	m.help.Styles.ShortSeparator = st.HelpSep
	m.help.Styles.FullKey = st.HelpKey
	m.help.Styles.FullDesc = st.HelpDesc
	m.help.Styles.FullSeparator = st.HelpSep
	m.help.Styles.Ellipsis = st.HelpSep
	m.input = m.newInput("› ", "type a message, or /help")
	m.filterIn = m.newInput("/", "filter")
	m.bar = m.newBar()
	m.helpView = viewport.New(0, 0)
	m.detailView = viewport.New(0, 0)
	m.events, m.stopWatch = b.WatchMessages(eventBuffer)
	m.msgs = b.Messages()
	// A first, synchronous snapshot so the first frame is not empty. These
	// calls only read the node's state.
	m.applySnapshot(snapshotMsg{status: b.Status(), edges: b.Edges(), transfers: b.Transfers()})
	return Model{m}
}

func (m *model) newInput(promptText, placeholder string) textinput.Model {
	ti := textinput.New()
	ti.Prompt = promptText
	ti.Placeholder = placeholder
	ti.PromptStyle = m.st.Prompt
	ti.TextStyle = m.st.InputText
	ti.PlaceholderStyle = m.st.Placeholder
	ti.Cursor.SetMode(cursor.CursorStatic)
	ti.CharLimit = 64 << 10
	return ti
}

func (m *model) newBar() progress.Model {
	opts := []progress.Option{progress.WithoutPercentage(), progress.WithWidth(20)}
	if m.st.ProgressStart != "" {
		opts = append(opts, progress.WithGradient(m.st.ProgressStart, m.st.ProgressEnd))
	} else {
		opts = append(opts, progress.WithSolidFill(""), progress.WithFillCharacters('█', '░'))
	}
	bar := progress.New(opts...)
	bar.EmptyColor = m.st.ProgressEmpty
	return bar
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
	return tea.Batch(
		waitEvents(m.events),
		waitMessages(m.msgs),
		frameTick(),
		m.snapshotCmd(true),
	)
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
func waitEvents(ch <-chan chaski.Event) tea.Cmd {
	if ch == nil {
		return nil
	}
	return func() tea.Msg {
		ev, ok := <-ch
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

func waitMessages(ch <-chan *chaski.Message) tea.Cmd {
	if ch == nil {
		return nil
	}
	return func() tea.Msg {
		msg, ok := <-ch
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

// snapshotCmd reads the node's state off the UI goroutine.
func (m *model) snapshotCmd(withStore bool) tea.Cmd {
	b := m.b
	return func() tea.Msg {
		s := snapshotMsg{status: b.Status(), edges: b.Edges(), transfers: b.Transfers(), withStore: withStore}
		if withStore {
			s.store, s.storeErr = b.StoreEntries()
		}
		return s
	}
}

func (m *model) scheduleSnapshot() tea.Cmd {
	withStore := m.storeStale || m.now().Sub(m.storeAt) >= storeInterval
	if withStore {
		m.storeStale = false
	}
	b := m.b
	return tea.Tick(refreshInterval, func(time.Time) tea.Msg {
		s := snapshotMsg{status: b.Status(), edges: b.Edges(), transfers: b.Transfers(), withStore: withStore}
		if withStore {
			s.store, s.storeErr = b.StoreEntries()
		}
		return s
	})
}

func (m *model) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case eventsMsg:
		for _, ev := range msg.evs {
			m.applyEvent(ev)
		}
		m.dataDirty = true
		if msg.closed {
			m.events = nil
			return nil
		}
		return waitEvents(m.events)
	case messagesMsg:
		for _, x := range msg.msgs {
			m.addMessage(x, false)
		}
		m.dataDirty = true
		if msg.closed {
			m.msgs = nil
			return nil
		}
		return waitMessages(m.msgs)
	case frameMsg:
		m.onFrame()
		return frameTick()
	case snapshotMsg:
		m.applySnapshot(msg)
		m.dataDirty = true
		return m.scheduleSnapshot()
	case resultMsg:
		m.onResult(msg)
		return nil
	case publishedMsg:
		m.onPublished(msg)
		return nil
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
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
	now := m.now()
	if m.notice != "" && now.Sub(m.noticeAt) > noticeTTL {
		m.notice = ""
		m.viewDirty = true
	}
	if m.dataDirty {
		m.viewDirty = true
		m.dataDirty = false
	}
	// The header's uptime moves once a second.
	if sec := now.Unix(); sec != m.lastSecond {
		m.lastSecond = sec
		m.viewDirty = true
	}
}

func (m *model) applySnapshot(s snapshotMsg) {
	now := m.now()
	if m.haveStatus && !m.rateAt.IsZero() {
		if dt := now.Sub(m.rateAt).Seconds(); dt >= 0.9 {
			in, out := s.status.MsgsIn, s.status.MsgsOut
			if in < m.lastIn || out < m.lastOut {
				m.lastIn, m.lastOut = in, out
			}
			if in == 0 && out == 0 {
				// The node does not count: use what the dashboard saw.
				in, out = m.seenIn, m.seenOut
			}
			m.rateIn = float64(in-min(in, m.lastIn)) / dt
			m.rateOut = float64(out-min(out, m.lastOut)) / dt
			m.lastIn, m.lastOut, m.rateAt = in, out, now
		}
	} else {
		m.lastIn, m.lastOut, m.rateAt = s.status.MsgsIn, s.status.MsgsOut, now
		if m.lastIn == 0 && m.lastOut == 0 {
			m.lastIn, m.lastOut = m.seenIn, m.seenOut
		}
	}
	m.status = s.status
	m.haveStatus = true
	m.setEdges(s.edges)
	for _, t := range s.transfers {
		m.upsertTransfer(t)
	}
	if s.withStore {
		m.store, m.storeErr, m.storeAt = s.store, s.storeErr, now
		sort.Slice(m.store, func(i, j int) bool { return m.store[i].Key < m.store[j].Key })
	}
	m.subsChanged()
}

// subsChanged keeps the topic tabs in step with the subscriptions: the first
// subscription is selected the first time there is one.
func (m *model) subsChanged() {
	for _, t := range m.status.Subscriptions {
		m.topicRing(t)
	}
	if !m.topicSet && len(m.status.Subscriptions) > 0 {
		m.topicTab, m.topicSet = 1, true
	}
	if m.topicTab > len(m.status.Subscriptions) {
		m.topicTab = len(m.status.Subscriptions)
	}
}

func (m *model) setEdges(edges []chaski.EdgeInfo) {
	m.edges = append(m.edges[:0], edges...)
	sort.SliceStable(m.edges, func(i, j int) bool {
		if m.edges[i].Name != m.edges[j].Name {
			return m.edges[i].Name < m.edges[j].Name
		}
		return m.edges[i].PeerID < m.edges[j].PeerID
	})
}

func (m *model) edgeIndex(peerID string) int {
	for i := range m.edges {
		if m.edges[i].PeerID == peerID {
			return i
		}
	}
	return -1
}

func (m *model) upsertEdge(e chaski.EdgeInfo) {
	if i := m.edgeIndex(e.PeerID); i >= 0 {
		m.edges[i] = e
		return
	}
	m.setEdges(append(m.edges, e))
}

func (m *model) removeEdge(peerID string) {
	if i := m.edgeIndex(peerID); i >= 0 {
		m.edges = append(m.edges[:i], m.edges[i+1:]...)
	}
}

func (m *model) upsertTransfer(t chaski.TransferInfo) {
	old, ok := m.transfers[t.ID]
	if !ok {
		m.transferOrder = append(m.transferOrder, t.ID)
		cp := t
		m.transfers[t.ID] = &cp
		m.maybeOffer(&cp)
		return
	}
	// Snapshots may be older than the last event: never go back.
	if old.State.Finished() && !t.State.Finished() {
		return
	}
	if t.State == old.State && t.Done < old.Done {
		return
	}
	*old = t
	m.maybeOffer(old)
	if t.State != chaski.TransferPending {
		m.dropConfirm(t.ID)
	}
}

func (m *model) maybeOffer(t *chaski.TransferInfo) {
	if !m.opts.AcceptFilesPrompt || t.Outgoing || t.State != chaski.TransferPending || m.offered[t.ID] {
		return
	}
	m.offered[t.ID] = true
	id := t.ID
	size := "unknown size"
	if t.Size >= 0 {
		size = fmtBytes(t.Size)
	}
	peer := t.Peer
	if peer == "" {
		peer = "a peer"
	}
	m.confirms = append(m.confirms, confirm{
		question: "accept file " + t.Name + " (" + size + ") from " + peer + "?",
		id:       id,
		yes: func(m *model) tea.Cmd {
			return m.call("accept "+t.Name, "accepted "+t.Name, func() error { return m.b.AcceptTransfer(id, true) })
		},
		no: func(m *model) tea.Cmd {
			return m.call("decline "+t.Name, "declined "+t.Name, func() error { return m.b.AcceptTransfer(id, false) })
		},
	})
}

func (m *model) dropConfirm(id string) {
	for i := 0; i < len(m.confirms); i++ {
		if m.confirms[i].id != "" && m.confirms[i].id == id {
			m.confirms = append(m.confirms[:i], m.confirms[i+1:]...)
			i--
		}
	}
}

func (m *model) applyEvent(ev chaski.Event) {
	switch e := ev.(type) {
	case *chaski.MessageEvent:
		// Messages received on our subscriptions come through the
		// subscriber queue (reliable, in order); events add what it does
		// not carry: our own messages and topics we only relay or see.
		if e.Msg != nil && (e.Outgoing || !m.subscribed(e.Msg.Topic) || e.Msg.FromID == m.status.ID) {
			m.addMessage(e.Msg, e.Outgoing)
		}
	case *chaski.LatencyEvent:
		if i := m.edgeIndex(e.PeerID); i >= 0 {
			l := &m.edges[i].Latency
			if !e.Lost {
				l.Last = e.RTT
			}
			h := l.History
			if len(h) >= 120 {
				// Copy rather than reslice: the snapshot's slice is shared.
				h = append(h[:0:0], h[len(h)-119:]...)
			} else {
				h = h[:len(h):len(h)]
			}
			l.History = append(h, chaski.LatencySample{At: e.When(), RTT: e.RTT, Lost: e.Lost})
		}
	case *chaski.EdgeUpEvent:
		m.upsertEdge(e.Edge)
		m.logf(e.When(), 0, "edge up: %s %s", e.Edge.Name, e.Edge.Address)
	case *chaski.EdgeDownEvent:
		if e.Reconnect {
			ed := e.Edge
			ed.State = chaski.StateReconnecting
			m.upsertEdge(ed)
		} else {
			m.removeEdge(e.Edge.PeerID)
		}
		m.logf(e.When(), 4, "edge down: %s %s: %s", e.Edge.Name, e.Edge.Address, e.Reason)
	case *chaski.EdgeStateEvent:
		if e.State == chaski.StateClosed {
			m.removeEdge(e.PeerID)
			m.logf(e.When(), 4, "gave up on %s %s: %s", e.Name, e.Address, e.Err)
		} else if i := m.edgeIndex(e.PeerID); i >= 0 {
			m.edges[i].State, m.edges[i].Attempt = e.State, e.Attempt
		} else {
			m.upsertEdge(chaski.EdgeInfo{PeerID: e.PeerID, Name: e.Name, Address: e.Address, State: e.State, Attempt: e.Attempt, Since: e.When()})
		}
	case *chaski.LogEvent:
		text := e.Message
		if e.Attrs != "" {
			text += " " + e.Attrs
		}
		m.logs.Push(logEntry{at: e.When(), level: int(e.Level), text: sanitize(text)})
	case *chaski.SubscriptionEvent:
		m.status.Subscriptions = append([]string(nil), e.Subscriptions...)
		m.subsChanged()
	case *chaski.PeerSubscriptionEvent:
		if i := m.edgeIndex(e.PeerID); i >= 0 {
			m.edges[i].Subscriptions = e.Subscriptions
			m.edges[i].Root = e.Root
		}
	case *chaski.DiscoveryEvent:
		d := m.discFor(e.Topic)
		d.lastRun, d.phase, d.detail = e.When(), e.Phase, e.Detail
		if e.Peer != "" {
			d.peer = e.Peer
		}
		text := "discovery " + e.Topic + ": " + e.Phase
		if e.Peer != "" {
			text += " with " + e.Peer
		}
		if e.Detail != "" {
			text += " (" + e.Detail + ")"
		}
		lvl := 0
		if e.Phase == "failed" {
			lvl = 8
		}
		m.discLog.Push(logEntry{at: e.When(), level: lvl, text: sanitize(text)})
	case *chaski.PairedEvent:
		if m.status.Paired == nil {
			m.status.Paired = map[string]bool{}
		} else if _, ok := m.status.Paired[e.Topic]; !ok {
			// Copy on write: the map came from a snapshot.
			cp := make(map[string]bool, len(m.status.Paired)+1)
			for k, v := range m.status.Paired {
				cp[k] = v
			}
			m.status.Paired = cp
		}
		m.status.Paired[e.Topic] = true
		d := m.discFor(e.Topic)
		d.peer, d.first, d.lastRun = e.Peer, e.First, e.When()
		if e.First {
			d.phase = "first"
		} else if d.phase == "" || d.phase == "started" {
			d.phase = "paired"
		}
		text := "paired " + e.Topic
		if e.First {
			text += ": first of topic, no peer found"
		} else if e.Peer != "" {
			text += " with " + e.Peer
		}
		m.discLog.Push(logEntry{at: e.When(), text: sanitize(text)})
	case *chaski.TransferEvent:
		t := e.Transfer
		prev, existed := m.transfers[t.ID]
		var prevState chaski.TransferState
		if existed {
			prevState = prev.State
		}
		m.upsertTransfer(t)
		if (!existed || prevState != t.State) && t.State.Finished() {
			switch t.State {
			case chaski.TransferDone:
				m.setNotice(false, "%s %s: done, sha256 %s", dirWord(t.Outgoing), t.Name, short(t.SHA256, 12))
			case chaski.TransferFailed:
				m.setNotice(true, "%s %s failed: %s", dirWord(t.Outgoing), t.Name, t.Err)
			}
		}
	case *chaski.StoreEvent:
		m.storeStale = true
		if e.Kind == "fetched" {
			m.logf(e.When(), 0, "store: fetched %s (%s)", e.Key, fmtBytes(int64(e.Size)))
		}
	}
}

func dirWord(out bool) string {
	if out {
		return "send"
	}
	return "receive"
}

func short(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func (m *model) discFor(topic string) *discState {
	d := m.disc[topic]
	if d == nil {
		d = &discState{}
		m.disc[topic] = d
	}
	return d
}

func (m *model) topicRing(topic string) *ring[msgEntry] {
	r := m.topics[topic]
	if r == nil {
		r = newRing[msgEntry](topicLines)
		m.topics[topic] = r
	}
	return r
}

func (m *model) subscribed(topic string) bool {
	for _, s := range m.status.Subscriptions {
		if s == topic {
			return true
		}
	}
	return false
}

// addMessage files a message under "all" and its topic. Should a message
// arrive twice (as an event and from the subscriber queue, e.g. while the
// subscriptions change), the second copy is dropped by id.
func (m *model) addMessage(msg *chaski.Message, outgoing bool) {
	if msg.ID != (wire.MessageID{}) {
		if _, dup := m.seen[msg.ID]; dup {
			return
		}
		if m.seenRing.Len() == dedupSize {
			delete(m.seen, *m.seenRing.At(0))
		}
		m.seenRing.Push(msg.ID)
		m.seen[msg.ID] = struct{}{}
	}
	self := outgoing || (msg.FromID != "" && msg.FromID == m.status.ID)
	if self {
		m.seenOut++
		// Our own line is already on screen, shown when Enter was pressed.
		if m.matchPending(msg) {
			return
		}
	} else {
		m.seenIn++
	}
	at := msg.Time
	if at.IsZero() {
		at = m.now()
	}
	e := msgEntry{at: at, topic: msg.Topic, from: msg.From, data: msg.Data, self: self}
	m.all.Push(e)
	if r, ok := m.topics[msg.Topic]; ok {
		r.Push(e)
	} else if m.subscribed(msg.Topic) {
		m.topicRing(msg.Topic).Push(e)
	}
}

// matchPending pairs an outgoing message with a line the user typed.
func (m *model) matchPending(msg *chaski.Message) bool {
	if len(m.pending) == 0 {
		return false
	}
	r := m.all
	for i, id := range m.pending {
		for j := r.Len() - 1; j >= 0 && j >= r.Len()-256; j-- {
			e := r.At(j)
			if e.id == id && e.topic == msg.Topic && string(e.data) == string(msg.Data) {
				m.pending = append(m.pending[:i], m.pending[i+1:]...)
				return true
			}
		}
	}
	return false
}

func (m *model) logf(at time.Time, level int, format string, args ...any) {
	m.logs.Push(logEntry{at: at, level: level, text: sanitize(fmt.Sprintf(format, args...))})
}

func (m *model) setNotice(isErr bool, format string, args ...any) {
	m.notice = sanitize(fmt.Sprintf(format, args...))
	m.noticeErr = isErr
	m.noticeAt = m.now()
	m.viewDirty = true
	lvl := 0
	if isErr {
		lvl = 8
	}
	m.logs.Push(logEntry{at: m.noticeAt, level: lvl, text: "ui: " + m.notice})
}

func (m *model) onResult(r resultMsg) {
	if r.err != nil {
		msg := r.err.Error()
		if r.notice != "" {
			msg = r.notice + ": " + msg
		}
		m.setNotice(true, "%s", msg)
	} else if r.notice != "" {
		m.setNotice(false, "%s", r.notice)
	}
	if r.openTitle != "" {
		m.openDetail(r.openTitle, r.openBody)
	}
	if r.refresh {
		m.storeStale = true
	}
}

func (m *model) onPublished(p publishedMsg) {
	if p.err == nil {
		return // the node's echo of the message clears the pending mark
	}
	for i, id := range m.pending {
		if id == p.id {
			m.pending = append(m.pending[:i], m.pending[i+1:]...)
			break
		}
	}
	mark := func(r *ring[msgEntry]) {
		for i := r.Len() - 1; i >= 0 && i >= r.Len()-topicLines; i-- {
			if e := r.At(i); e.id == p.id {
				e.failed, e.line = p.err.Error(), ""
				return
			}
		}
	}
	mark(m.all)
	for _, r := range m.topics {
		mark(r)
	}
	m.setNotice(true, "publish: %v", p.err)
}

// call runs fn in the background; on failure the notice is "what: error",
// on success it is done.
func (m *model) call(what, done string, fn func() error) tea.Cmd {
	return func() tea.Msg {
		if err := fn(); err != nil {
			return resultMsg{notice: what, err: err, refresh: true}
		}
		return resultMsg{notice: done, refresh: true}
	}
}

func (m *model) timeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(m.ctx, d)
}
