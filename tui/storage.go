package tui

import (
	"errors"
	"strconv"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/chaski-dev/chaski/chaski"
)

// storePane is the key-value store inspector.
type storePane struct {
	base
	list
}

func newStorePane(sh *shared) *storePane { return &storePane{base: base{sh: sh}} }

func (p *storePane) id() paneID { return paneStore }

func (p *storePane) rows() []*chaski.StoreEntry {
	out := make([]*chaski.StoreEntry, 0, len(p.sh.store))
	for i := range p.sh.store {
		e := &p.sh.store[i]
		if p.filt == "" || matches(p.filt, e.Key, entryOrigin(e), textOf(e.Value)) {
			out = append(out, e)
		}
	}
	return out
}

// entryOrigin is "local" or the name of the peer a fetch got the value from.
func entryOrigin(e *chaski.StoreEntry) string {
	switch {
	case e.From != "":
		return e.From
	case e.FromID != "":
		return short(e.FromID, 8)
	}
	return "local"
}

func entrySize(e *chaski.StoreEntry) int {
	if e.Size == 0 {
		return len(e.Value)
	}
	return e.Size
}

// textOf is a value's text for the filter ("" for binary values).
func textOf(b []byte) string {
	if len(b) > 4096 || valueKind(b) == "binary" {
		return ""
	}
	return string(b)
}

// fmtTTL is the lifetime left, counting down every second.
func fmtTTL(exp, now time.Time) (string, bool) {
	if exp.IsZero() {
		return "never", true
	}
	d := exp.Sub(now)
	if d <= 0 {
		return "expired", false
	}
	return fmtAge(d + time.Second - time.Nanosecond), true // rounded up: 0s is expired
}

func (p *storePane) badge() string {
	if p.problem() != "" {
		return "no store"
	}
	return strconv.Itoa(len(p.sh.store)) + " keys"
}

// problem says why there is no store, with the fix.
func (p *storePane) problem() string {
	sh := p.sh
	if sh.opts.StoreNote != "" {
		return sh.opts.StoreNote
	}
	if sh.storeErr != nil && len(sh.store) == 0 {
		if errors.Is(sh.storeErr, chaski.ErrNoStore) {
			return "this node has no store (start it with --data-dir DIR to keep one)"
		}
		return sh.storeErr.Error()
	}
	return ""
}

func (p *storePane) want() int { return max(1, len(p.sh.store)) + 1 }

func (p *storePane) shortHelp() []key.Binding {
	k := p.sh.keys
	return []key.Binding{k.Open, k.StorePut, k.StoreEdit, k.StoreDelete, k.StoreFetch}
}

func (p *storePane) key(msg tea.KeyMsg) (tea.Cmd, bool) {
	k, m, sh := p.sh.keys, p.m, p.sh
	rows := p.rows()
	if p.move(k, msg, len(rows), 5) {
		return nil, true
	}
	e, ok := selectedOf(rows, p.sel)
	switch {
	case key.Matches(msg, k.StorePut):
		if m.denied("write to the store") {
			return nil, true
		}
		return m.askText("key", "", func(keyName string) tea.Cmd {
			if keyName == "" {
				return nil
			}
			return p.askValue(keyName, "", defaultTTL.String())
		}), true
	case key.Matches(msg, k.StoreEdit) && ok:
		if m.denied("write to the store") {
			return nil, true
		}
		if valueKind(e.Value) == "binary" {
			sh.setNotice(true, "%s holds %s of binary data: it cannot be edited as text (chaski store put replaces it)", e.Key, fmtBytes(int64(entrySize(e))))
			return nil, true
		}
		ttl := "0"
		if !e.Expires.IsZero() {
			ttl = max(time.Second, e.Expires.Sub(sh.now()).Round(time.Second)).String()
		}
		return p.askValue(e.Key, string(e.Value), ttl), true
	case key.Matches(msg, k.StoreDelete) && ok:
		if m.denied("delete keys") {
			return nil, true
		}
		name, b := e.Key, sh.b
		m.ask("delete key "+name+" ("+fmtBytes(int64(entrySize(e)))+", "+entryOrigin(e)+")?", func() tea.Cmd {
			return m.call("delete "+name, "deleted "+name, func() error { return b.StoreDelete(name) })
		})
		return nil, true
	case key.Matches(msg, k.StoreFetch):
		if m.denied("fetch into the store") {
			return nil, true
		}
		return m.askText("fetch key from the network", "", func(v string) tea.Cmd { return m.fetch(v) }), true
	case key.Matches(msg, k.Open) && ok:
		title := e.Key + " · " + entryOrigin(e)
		if e.FromID != "" {
			title = e.Key + " · fetched from " + entryOrigin(e)
		}
		m.openDetail(title, e.Value)
		return nil, true
	}
	return nil, false
}

// askValue asks for a value and a lifetime, then confirms before writing
// (saying when it replaces a value).
func (p *storePane) askValue(keyName, value, ttl string) tea.Cmd {
	m, sh := p.m, p.sh
	return m.askText("value for "+keyName, value, func(v string) tea.Cmd {
		return m.askText("expires after (e.g. 1h, 0 = never)", ttl, func(ttlText string) tea.Cmd {
			d, err := parseTTL(ttlText)
			if err != nil {
				sh.setNotice(true, "%v", err)
				return nil
			}
			exp := "never expires"
			if d > 0 {
				exp = "expires in " + d.String()
			}
			verb := "store"
			for i := range sh.store {
				if sh.store[i].Key == keyName {
					verb = "replace"
				}
			}
			m.ask(verb+" "+keyName+" ("+fmtBytes(int64(len(v)))+", "+exp+")?", func() tea.Cmd { return m.storePut(keyName, v, d) })
			return nil
		})
	})
}

func (p *storePane) view(w, h int, focused bool) []string {
	sh := p.sh
	st := sh.st
	if prob := p.problem(); prob != "" {
		lines := []string{}
		for _, l := range wrapHint(st, st.Symbols.Fail+" "+prob, w) {
			lines = append(lines, st.Error.Render(l))
		}
		return fill(lines, h)
	}
	if len(sh.store) == 0 {
		return fill(wrapHint(st, "store is empty — a puts a key, f fetches one from the network", w), h)
	}
	rows := p.rows()
	if len(rows) == 0 {
		return fill([]string{st.Muted.Render(trunc("no key matches /"+p.filt+" — esc clears the filter", w))}, h)
	}
	t := newTable(st, []col{
		{title: "KEY", min: 10, max: 32},
		{title: "VALUE", min: 10, max: 200, prio: 2},
		{title: "SIZE", min: 8, max: 10, prio: 3, right: true},
		{title: "TTL", min: 7, max: 9, prio: 1, right: true},
		{title: "ORIGIN", min: 6, max: 14, prio: 1},
		{title: "UPDATED", min: 9, max: 10, prio: 4, right: true},
	}, w)
	lines := []string{t.header()}
	p.sel = clamp(p.sel, 0, len(rows)-1)
	p.off = window(p.sel, p.off, h-1, len(rows))
	now := sh.now()
	for i := p.off; i < len(rows) && len(lines) < h; i++ {
		e := rows[i]
		val, bin := payloadText(e.Value, w)
		vStyle := st.Row
		if bin {
			vStyle = st.MsgBinary
		}
		exp, live := fmtTTL(e.Expires, now)
		eStyle := st.Row
		switch {
		case e.Expires.IsZero():
			eStyle = st.Muted
		case !live:
			eStyle = st.Error
		case e.Expires.Sub(now) < time.Minute:
			eStyle = st.Warn
		}
		origin, oStyle := entryOrigin(e), st.Muted
		if e.FromID != "" {
			origin, oStyle = "← "+origin, sh.peerStyle(e.From)
		}
		upd := "–"
		if !e.Updated.IsZero() {
			upd = fmtAge(now.Sub(e.Updated)) + " ago"
		}
		lines = append(lines, t.row([]cell{
			{text: sanitize(e.Key)},
			{text: val, style: &vStyle},
			{text: fmtBytes(int64(entrySize(e)))},
			{text: exp, style: &eStyle},
			{text: sanitize(origin), style: &oStyle},
			{text: upd, style: &st.Muted},
		}, focused && i == p.sel))
	}
	return fill(lines, h)
}
