package tui

import (
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/progress"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/chaski-dev/chaski/chaski"
)

// transfersPane lists file transfers in both directions, plus files
// dropped here whose offer is still out or failed before any transfer.
type transfersPane struct {
	base
	list
	bar progress.Model
}

func newTransfersPane(sh *shared) *transfersPane {
	opts := []progress.Option{progress.WithoutPercentage(), progress.WithWidth(20)}
	if sh.st.ProgressStart != "" {
		opts = append(opts, progress.WithGradient(sh.st.ProgressStart, sh.st.ProgressEnd))
	} else {
		opts = append(opts, progress.WithSolidFill(""), progress.WithFillCharacters('█', '░'))
	}
	bar := progress.New(opts...)
	bar.EmptyColor = sh.st.ProgressEmpty
	return &transfersPane{base: base{sh: sh}, bar: bar}
}

func (p *transfersPane) id() paneID { return paneTransfers }

type xferRow struct {
	drop *drop
	t    *chaski.TransferInfo
}

func (p *transfersPane) rows() []xferRow {
	sh := p.sh
	out := make([]xferRow, 0, len(sh.drops)+len(sh.order))
	for i := len(sh.drops) - 1; i >= 0; i-- {
		d := sh.drops[i]
		if matches(p.filt, d.name, d.topic, d.state, d.err) {
			out = append(out, xferRow{drop: d})
		}
	}
	var ts []*chaski.TransferInfo
	for i := len(sh.order) - 1; i >= 0; i-- {
		t := sh.transfers[sh.order[i]]
		if t != nil && matches(p.filt, t.Name, t.Peer, t.Topic, t.State.String(), t.Err) {
			ts = append(ts, t)
		}
	}
	// Waiting for an answer first, then running, then the newest.
	rank := func(t *chaski.TransferInfo) int {
		switch {
		case t.State == chaski.TransferPending:
			return 0
		case !t.State.Finished():
			return 1
		}
		return 2
	}
	sort.SliceStable(ts, func(i, j int) bool {
		if ra, rb := rank(ts[i]), rank(ts[j]); ra != rb {
			return ra < rb
		}
		return ts[i].Started.After(ts[j].Started)
	})
	for _, t := range ts {
		out = append(out, xferRow{t: t})
	}
	return out
}

func (p *transfersPane) badge() string {
	active, failed := 0, 0
	for _, t := range p.sh.transfers {
		if !t.State.Finished() {
			active++
		} else if t.State == chaski.TransferFailed {
			failed++
		}
	}
	for _, d := range p.sh.drops {
		if d.state == "failed" {
			failed++
		} else {
			active++
		}
	}
	s := strconv.Itoa(active) + " active"
	if failed > 0 {
		s += " · " + strconv.Itoa(failed) + " failed"
	}
	if n := len(p.sh.offers); n > 0 {
		s += " · " + strconv.Itoa(n) + " to answer"
	}
	return s
}

func (p *transfersPane) want() int { return max(1, len(p.sh.drops)+len(p.sh.transfers)) + 1 }

func (p *transfersPane) shortHelp() []key.Binding {
	k := p.sh.keys
	return []key.Binding{k.Accept, k.Decline, k.CancelTransfer, k.Retry, k.ClearOne, k.OpenFolder, k.Open, k.DropFiles}
}

func (p *transfersPane) key(msg tea.KeyMsg) (tea.Cmd, bool) {
	k, m, sh := p.sh.keys, p.m, p.sh
	rows := p.rows()
	if p.move(k, msg, len(rows), 5) {
		return nil, true
	}
	r, ok := selectedOf(rows, p.sel)
	switch {
	case (key.Matches(msg, k.Accept) || key.Matches(msg, k.Decline)) && ok && r.t != nil && r.t.State == chaski.TransferPending:
		// y/n on a row answers that offer (the global y/n take the oldest).
		accept := key.Matches(msg, k.Accept)
		sh.dropOffer(r.t.ID)
		sh.offers = append([]string{r.t.ID}, sh.offers...)
		return m.answerOffer(accept), true
	case key.Matches(msg, k.CancelTransfer) && ok && r.t != nil && !r.t.State.Finished():
		if m.denied("cancel transfers") {
			return nil, true
		}
		id, name, b := r.t.ID, r.t.Name, sh.b
		m.ask("cancel transfer of "+name+"?", func() tea.Cmd {
			return m.call("cancel "+name, "cancelled "+name, func() error { return b.CancelTransfer(id) })
		})
		return nil, true
	case (key.Matches(msg, k.CancelTransfer) || key.Matches(msg, k.ClearOne)) && ok && r.drop != nil && r.drop.state == "failed":
		sh.removeDrop(r.drop)
		return nil, true
	case key.Matches(msg, k.ClearOne) && ok && r.t != nil:
		if m.denied("clear transfers") {
			return nil, true
		}
		if !r.t.State.Finished() {
			sh.setNotice(true, "%s is still running: x cancels it first", r.t.Name)
			return nil, true
		}
		sh.clearTransfer(r.t.ID)
		sh.setNotice(false, "cleared %s from the list", r.t.Name)
		return nil, true
	case key.Matches(msg, k.ClearDone):
		if m.denied("clear transfers") {
			return nil, true
		}
		n := 0
		for _, x := range rows {
			if x.t != nil && x.t.State.Finished() {
				sh.clearTransfer(x.t.ID)
				n++
			} else if x.drop != nil && x.drop.state == "failed" {
				sh.removeDrop(x.drop)
				n++
			}
		}
		sh.setNotice(false, "cleared %d finished row(s)", n)
		return nil, true
	case key.Matches(msg, k.Retry) && ok:
		return p.retry(r), true
	case key.Matches(msg, k.OpenFolder) && ok:
		p.open(r)
		return nil, true
	case key.Matches(msg, k.Open) && ok:
		if r.t != nil {
			m.openDetail("transfer "+r.t.Name, []byte(p.detail(r.t)))
		} else {
			m.openDetail("drop "+r.drop.name, []byte("file: "+r.drop.name+"\nfrom: "+r.drop.path+"\ntopic: "+r.drop.topic+"\nstate: "+r.drop.state+"\nreason: "+r.drop.err))
		}
		return nil, true
	}
	return nil, false
}

// retry sends a failed outgoing file again, to the same topic, from the
// path it was read from (a resend resumes where the receiver stopped).
func (p *transfersPane) retry(r xferRow) tea.Cmd {
	m, sh := p.m, p.sh
	if m.denied("retry sends") {
		return nil
	}
	var path, topic, name string
	switch {
	case r.drop != nil && r.drop.state == "failed":
		path, topic, name = r.drop.path, r.drop.topic, r.drop.name
	case r.t != nil && (r.t.State == chaski.TransferFailed || r.t.State == chaski.TransferCancelled):
		if !r.t.Outgoing {
			sh.setNotice(true, "only the sender can retry %s: ask %s to send it again (it resumes from what arrived)", r.t.Name, r.t.Peer)
			return nil
		}
		if strings.Contains(r.t.Name, "/") {
			sh.setNotice(true, "%s was sent as part of a folder: drop the folder again to send what is missing", r.t.Name)
			return nil
		}
		path, topic, name = sh.sourceOf(r.t), r.t.Topic, r.t.Name
	default:
		sh.setNotice(true, "nothing to retry: r retries a failed or cancelled send")
		return nil
	}
	if path == "" {
		sh.setNotice(true, "cannot retry %s: this dashboard did not send it, so it does not know where the file is", name)
		return nil
	}
	if r.drop != nil {
		sh.removeDrop(r.drop)
	}
	return m.dropFilesTo(topic, []string{path})
}

// open shows the folder of a finished transfer (where a received file was
// saved, where a sent one was read from) and copies it to the clipboard
// with OSC 52, which most terminals honour (tmux with set-clipboard on).
func (p *transfersPane) open(r xferRow) {
	sh := p.sh
	path := ""
	switch {
	case r.t != nil && !r.t.Outgoing:
		path = r.t.Path
	case r.t != nil:
		path = sh.sourceOf(r.t)
	case r.drop != nil:
		path = r.drop.path
	}
	if path == "" {
		sh.setNotice(true, "no folder to open: the file has not been saved (yet)")
		return
	}
	dir := filepath.Dir(path)
	p.m.copyToClipboard(dir)
	sh.setNotice(false, "folder %s (copied to the clipboard)", dir)
}

func (s *shared) removeDrop(d *drop) {
	for i, x := range s.drops {
		if x == d {
			s.drops = append(s.drops[:i], s.drops[i+1:]...)
			return
		}
	}
}

func (p *transfersPane) detail(t *chaski.TransferInfo) string {
	s := transferDetail(t, p.sh.now())
	if src := p.sh.sourceOf(t); src != "" {
		s += "\nsent from: " + src
	}
	if p.sh.xhist.loaded[t.ID] {
		s += "\n(from an earlier run, kept in the store)"
	}
	return s
}

func transferDetail(t *chaski.TransferInfo, now time.Time) string {
	dir := "incoming from "
	if t.Outgoing {
		dir = "outgoing to "
	}
	algo, sum := xferHash(t)
	if sum == "" {
		algo, sum = "hash", "(not known yet)"
	}
	lines := []string{
		"file: " + t.Name, dir + t.Peer, "topic: " + t.Topic, "state: " + t.State.String(),
		"bytes: " + fmtBytes(t.Done) + " of " + fmtBytes(t.Size), algo + ": " + sum,
		"offered: " + t.Started.Format(time.RFC3339),
	}
	if e := transferElapsed(t, now); e > 0 {
		lines = append(lines, "elapsed: "+fmtElapsed(e), "rate: "+fmtBytes(int64(transferRate(t, now)))+"/s")
	}
	if !t.FirstByte.IsZero() {
		lines = append(lines, "first byte: "+t.FirstByte.Format(time.RFC3339))
	}
	if !t.Ended.IsZero() {
		lines = append(lines, "ended: "+t.Ended.Format(time.RFC3339))
	}
	if t.Path != "" {
		lines = append(lines, "saved to: "+t.Path)
	}
	if t.Err != "" {
		lines = append(lines, "reason: "+t.Err)
	}
	return strings.Join(lines, "\n")
}

// transferRate is bytes per second from the first byte (not from the
// offer, which may have waited for a person) to the end or now.
func transferRate(t *chaski.TransferInfo, now time.Time) float64 {
	from := t.FirstByte
	if from.IsZero() {
		return t.Rate
	}
	end := now
	if !t.Ended.IsZero() {
		end = t.Ended
	}
	d := end.Sub(from).Seconds()
	if d <= 0 {
		return 0
	}
	return float64(t.Done-t.Resumed) / d
}

// transferElapsed is the time data has been moving: from the first byte
// (or the offer, for a transfer that never started) to the end or now.
func transferElapsed(t *chaski.TransferInfo, now time.Time) time.Duration {
	from := t.FirstByte
	if from.IsZero() {
		if t.State == chaski.TransferPending || t.State == chaski.TransferOffered {
			return 0
		}
		from = t.Started
	}
	if from.IsZero() {
		return 0
	}
	end := now
	if !t.Ended.IsZero() {
		end = t.Ended
	}
	return max(0, end.Sub(from))
}

// fmtElapsed is fmtAge with tenths under ten seconds: a loopback send
// takes a fraction of one.
func fmtElapsed(d time.Duration) string {
	if d < 100*time.Millisecond {
		return "<0.1s"
	}
	if d < 10*time.Second {
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	}
	return fmtAge(d)
}

// declined tells a refusal by a person from other failures.
func declined(t *chaski.TransferInfo) bool { return strings.Contains(t.Err, "declined") }

func (p *transfersPane) state(t *chaski.TransferInfo) (string, lipgloss.Style) {
	st := p.sh.st
	sy := st.Symbols
	switch t.State {
	case chaski.TransferOffered:
		return sy.Pending + " offered, waiting for " + t.Peer, st.Warn
	case chaski.TransferActive:
		word := "receiving"
		if t.Outgoing {
			word = "sending"
		}
		if t.Size > 0 {
			word += " " + strconv.Itoa(int(t.Done*100/t.Size)) + "%"
		}
		if t.Resumed > 0 && t.Size > 0 {
			word += " (resumed at " + strconv.Itoa(int(t.Resumed*100/t.Size)) + "%)"
		}
		return word, st.Accent
	case chaski.TransferVerifying:
		return sy.Pending + " verifying " + hashAlgo(t), st.Accent
	case chaski.TransferDone:
		// The receiver's row says where the file is first, then the hash
		// (in full in the detail view, Enter).
		hash := ""
		if algo, sum := xferHash(t); sum != "" {
			hash = " " + algo + " " + short(sum, 12)
		}
		if !t.Outgoing && t.Path != "" {
			if hash != "" {
				hash = " ·" + hash
			}
			return sy.OK + p.earlier(t) + " saved to " + t.Path + hash, st.OK
		}
		return sy.OK + " done" + p.earlier(t) + hash, st.OK
	case chaski.TransferFailed, chaski.TransferCancelled:
		if declined(t) {
			if t.Outgoing {
				return sy.Fail + " declined by " + t.Peer, st.Warn
			}
			return sy.Fail + " declined", st.Muted
		}
		if t.State == chaski.TransferCancelled {
			return sy.Fail + " cancelled" + p.earlier(t), st.Muted
		}
		reason := strings.TrimPrefix(t.Err, "chaski: ")
		if reason == "" {
			reason = "unknown error"
		}
		return sy.Fail + " failed" + p.earlier(t) + ": " + reason, st.Error
	case chaski.TransferPending:
		if p.sh.opts.AcceptFilesPrompt {
			return sy.Pending + " accept? y/n", st.Warn
		}
		return sy.Pending + " pending", st.Warn
	}
	return t.State.String(), st.Row
}

// earlier marks a row that came from the store (an earlier run).
func (p *transfersPane) earlier(t *chaski.TransferInfo) string {
	if p.sh.xhist.loaded[t.ID] {
		return " (earlier run)"
	}
	return ""
}

func short(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func (p *transfersPane) view(w, h int, focused bool) []string {
	sh := p.sh
	st := sh.st
	rows := p.rows()
	if len(sh.transfers)+len(sh.drops) == 0 {
		return fill(wrapHint(st, "no transfers — drop a file on this window (or /send PATH) to send it to the chat's topic", w), h)
	}
	if len(rows) == 0 {
		return fill([]string{st.Muted.Render(trunc("no transfer matches /"+p.filt+" — esc clears the filter", w))}, h)
	}
	t := newTable(st, []col{
		{title: " ", min: 1, max: 1},
		{title: "NAME", min: 10, max: 24},
		{title: "PEER", min: 6, max: 14, prio: 2},
		{title: "PROGRESS", min: 8, max: 30, prio: 4},
		{title: "BYTES", min: 15, max: 19, prio: 3, right: true},
		{title: "RATE", min: 9, max: 11, prio: 2, right: true},
		{title: "ETA", min: 5, max: 8, prio: 5, right: true},
		{title: "TIME", min: 6, max: 7, prio: 6, right: true},
		{title: "STATE", min: 28, max: 90},
	}, w)
	lines := []string{t.header()}
	p.sel = clamp(p.sel, 0, len(rows)-1)
	// The selected row's hash and folder get a line of their own at the
	// bottom when there is room: a row is too narrow for a path.
	foot := ""
	if h >= 4 {
		foot = p.footer(rows[p.sel], w)
	}
	listH := h
	if foot != "" {
		listH = h - 1
	}
	p.off = window(p.sel, p.off, listH-1, len(rows))
	now := sh.now()
	for i := p.off; i < len(rows) && len(lines) < listH; i++ {
		r := rows[i]
		sel := focused && i == p.sel
		if d := r.drop; d != nil {
			state, sty := st.Symbols.Pending+" offering to subscribers of #"+d.topic+"…", st.Warn
			if d.state == "failed" {
				state, sty = st.Symbols.Fail+" failed: "+d.err, st.Error
			}
			lines = append(lines, t.row([]cell{
				// The reason takes the room of the columns a drop has no
				// figures for.
				{text: st.Symbols.Out}, {text: d.name}, {text: "–"}, {text: state, style: &sty, span: true},
			}, sel))
			continue
		}
		tr := r.t
		dir := st.Symbols.In
		if tr.Outgoing {
			dir = st.Symbols.Out
		}
		pct := 0.0
		if tr.Size > 0 {
			pct = float64(tr.Done) / float64(tr.Size)
		} else if tr.State == chaski.TransferDone {
			pct = 1
		}
		pct = max(0, min(1, pct))
		total := "?"
		if tr.Size >= 0 {
			total = fmtBytes(tr.Size)
		}
		rate, eta := "–", "–"
		switch tr.State {
		case chaski.TransferActive, chaski.TransferVerifying:
			r := transferRate(tr, now)
			rate = fmtBytes(int64(r)) + "/s"
			if r > 0 && tr.Size > 0 {
				eta = fmtETA(time.Duration(float64(tr.Size-tr.Done) / r * float64(time.Second)))
			}
		case chaski.TransferDone:
			rate = fmtBytes(int64(transferRate(tr, now))) + "/s"
		}
		elapsed := "–"
		if e := transferElapsed(tr, now); e > 0 {
			elapsed = fmtElapsed(e)
		}
		state, sty := p.state(tr)
		peer := tr.Peer
		if peer == "" {
			peer = "–"
		}
		pst := sh.peerStyle(tr.Peer)
		lines = append(lines, t.row([]cell{
			{text: dir},
			{text: tr.Name},
			{text: peer, style: &pst},
			{custom: func(w int, selected bool) string { return p.progressBar(pct, w, selected) }},
			{text: fmtBytes(max(0, tr.Done)) + "/" + total},
			{text: rate},
			{text: eta},
			{text: elapsed},
			{text: state, style: &sty},
		}, sel))
	}
	if foot != "" {
		return append(fill(lines, listH), foot)
	}
	return fill(lines, h)
}

// footer describes the selected transfer in full: hash, where it was saved
// or read from, and the keys that act on it.
func (p *transfersPane) footer(r xferRow, w int) string {
	st := p.sh.st
	var parts []string
	switch {
	case r.t != nil:
		t := r.t
		parts = append(parts, t.Name)
		if !t.State.Finished() {
			// A narrow pane drops the figures' columns: say them here.
			state, _ := p.state(t)
			if rate := transferRate(t, p.sh.now()); t.State == chaski.TransferActive && rate > 0 {
				state += " · " + fmtBytes(int64(rate)) + "/s"
				if t.Size > 0 {
					state += " · ETA " + fmtETA(time.Duration(float64(t.Size-t.Done)/rate*float64(time.Second)))
				}
			}
			parts = append(parts, state)
		}
		if algo, sum := xferHash(t); sum != "" {
			parts = append(parts, algo+" "+short(sum, 12))
		}
		if t.Err != "" {
			parts = append(parts, t.State.String()+": "+strings.TrimPrefix(t.Err, "chaski: "))
		}
		if !t.Outgoing && t.Path != "" {
			parts = append(parts, "saved to "+t.Path)
		} else if src := p.sh.sourceOf(t); src != "" {
			parts = append(parts, "from "+src)
		}
		if t.State.Finished() {
			keys := "enter details · o copy folder · c clear"
			if t.Outgoing && t.State != chaski.TransferDone && !strings.Contains(t.Name, "/") {
				keys += " · r retry" // a folder's file goes again with the folder
			}
			parts = append(parts, keys)
		}
	case r.drop != nil:
		parts = append(parts, r.drop.name)
		if r.drop.err != "" {
			parts = append(parts, "failed: "+r.drop.err)
		}
		parts = append(parts, "from "+r.drop.path)
		if r.drop.state == "failed" {
			parts = append(parts, "r retry · c clear")
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return st.Muted.Render(trunc(sanitize("▸ "+strings.Join(parts, " · ")), w))
}

func (p *transfersPane) progressBar(pct float64, w int, plain bool) string {
	if plain || !p.sh.st.Color {
		n := int(pct*float64(w) + 0.5)
		return strings.Repeat("█", n) + strings.Repeat("░", w-n)
	}
	p.bar.Width = w
	return p.bar.ViewAs(pct)
}

// hashAlgo is the transfer's hash: BLAKE3 (each chunk checked on arrival)
// or SHA-256.
func hashAlgo(t *chaski.TransferInfo) string {
	if t.HashAlgo != "" {
		return t.HashAlgo
	}
	return chaski.HashSHA256
}

// fullHash is "algo:HEX" once known (from SHA256 for transfers that only
// carry that field).
func fullHash(t *chaski.TransferInfo) string {
	if t.Hash != "" {
		return t.Hash
	}
	if t.SHA256 != "" {
		return chaski.HashSHA256 + ":" + t.SHA256
	}
	return hashAlgo(t) + ":"
}
