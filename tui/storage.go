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
		if e := &p.sh.store[i]; matches(p.filt, e.Key) {
			out = append(out, e)
		}
	}
	return out
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
	return []key.Binding{k.StorePut, k.StoreDelete, k.StoreFetch, k.Open}
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
			return m.askText("value for "+keyName, "", func(value string) tea.Cmd {
				return m.askText("expires after (e.g. 1h, 0 = never)", defaultTTL.String(), func(ttlText string) tea.Cmd {
					ttl, err := parseTTL(ttlText)
					if err != nil {
						sh.setNotice(true, "%v", err)
						return nil
					}
					return m.storePut(keyName, value, ttl)
				})
			})
		}), true
	case key.Matches(msg, k.StoreDelete) && ok:
		if m.denied("delete keys") {
			return nil, true
		}
		name, b := e.Key, sh.b
		m.ask("delete key "+name+"?", func() tea.Cmd {
			return m.call("delete "+name, "deleted "+name, func() error { return b.StoreDelete(name) })
		})
		return nil, true
	case key.Matches(msg, k.StoreFetch):
		return m.askText("fetch key from the network", "", func(v string) tea.Cmd { return m.fetch(v) }), true
	case key.Matches(msg, k.Open) && ok:
		m.openDetail(e.Key, e.Value)
		return nil, true
	}
	return nil, false
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
		{title: "VALUE", min: 10, max: 200, prio: 1},
		{title: "SIZE", min: 8, max: 10, prio: 2, right: true},
		{title: "EXPIRES", min: 9, max: 10, prio: 1, right: true},
		{title: "UPDATED", min: 9, max: 10, prio: 3, right: true},
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
		exp, eStyle := "never", st.Muted
		if !e.Expires.IsZero() {
			if d := e.Expires.Sub(now); d > 0 {
				exp, eStyle = "in "+fmtAge(d), st.Row
				if d < time.Minute {
					eStyle = st.Warn
				}
			} else {
				exp, eStyle = "expired", st.Error
			}
		}
		upd := "–"
		if !e.Updated.IsZero() {
			upd = fmtAge(now.Sub(e.Updated)) + " ago"
		}
		size := e.Size
		if size == 0 {
			size = len(e.Value)
		}
		lines = append(lines, t.row([]cell{
			{text: sanitize(e.Key)},
			{text: val, style: &vStyle},
			{text: fmtBytes(int64(size))},
			{text: exp, style: &eStyle},
			{text: upd, style: &st.Muted},
		}, focused && i == p.sel))
	}
	return fill(lines, h)
}
