package tui

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/chaski-dev/chaski/chaski"
	"github.com/chaski-dev/chaski/chaski/store"
)

// exporter is a pane whose data can be written out as JSON (the e key).
// exportData runs on the UI goroutine and returns plain values only (no
// pointers into the pane's state), so the file is written in the
// background without racing the next Update. Every pane implements it in
// this file; a pane that grows richer data replaces its own function.
type exporter interface {
	exportData() any
}

// exportFile is the document written for one pane.
type exportFile struct {
	Pane     string    `json:"pane"`
	Node     string    `json:"node"`
	NodeID   string    `json:"node_id"`
	Exported time.Time `json:"exported"`
	Data     any       `json:"data"`
}

// exportDir is where exports go: Options.DataDir, else the directory of
// the node's store.
func (m *model) exportDir() string {
	if d := m.sh.opts.DataDir; d != "" {
		return d
	}
	if sb, ok := m.sh.b.(interface{ Store() *store.Store }); ok {
		if st := sb.Store(); st != nil {
			return filepath.Dir(st.Path())
		}
	}
	return ""
}

// export writes the focused pane's data to
// <data dir>/export-<pane>-<time>.json and says where. Nothing is printed
// to the terminal: the dashboard owns it.
func (m *model) export() tea.Cmd {
	sh := m.sh
	if m.denied("write export files") {
		return nil
	}
	name := strings.ToLower(paneNames[m.focus])
	ex, ok := m.panes[m.focus].(exporter)
	if !ok {
		sh.setNotice(true, "the %s pane has nothing to export", paneNames[m.focus])
		return nil
	}
	dir := m.exportDir()
	if dir == "" {
		sh.setNotice(true, "no data dir to export to: start the dashboard with --data-dir DIR")
		return nil
	}
	now := sh.now()
	doc := exportFile{Pane: name, Node: sh.status.Name, NodeID: sh.status.ID, Exported: now, Data: ex.exportData()}
	raw, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		sh.setNotice(true, "export %s: %v", name, err)
		return nil
	}
	raw = append(raw, '\n')
	base := "export-" + name + "-" + now.UTC().Format("20060102-150405")
	return func() tea.Msg {
		path, err := writeNew(dir, base, raw)
		if err != nil {
			return resultMsg{notice: "export " + name, err: err}
		}
		return resultMsg{notice: "exported " + name + " to " + path}
	}
}

// writeNew writes data to dir/base.json, or base-2.json and so on when
// that exists, never replacing a file; the file is the user's alone.
func writeNew(dir, base string, data []byte) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	for i := 1; i < 1000; i++ {
		name := base + ".json"
		if i > 1 {
			name = fmt.Sprintf("%s-%d.json", base, i)
		}
		path := filepath.Join(dir, name)
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		_, werr := f.Write(data)
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			_ = os.Remove(path)
			return "", werr
		}
		return path, nil
	}
	return "", fmt.Errorf("too many exports named %s in %s", base, dir)
}

// jsonValue is a payload for JSON: text as a string, JSON as itself,
// anything else as base64 (with the encoding named).
type jsonValue struct {
	Text   *string         `json:"text,omitempty"`
	JSON   json.RawMessage `json:"json,omitempty"`
	Base64 string          `json:"base64,omitempty"`
}

func payloadJSON(b []byte) jsonValue {
	if kind := valueKind(b); kind == "JSON" {
		return jsonValue{JSON: json.RawMessage(compactJSON(b))}
	}
	if utf8.Valid(b) {
		s := string(b)
		return jsonValue{Text: &s}
	}
	return jsonValue{Base64: base64.StdEncoding.EncodeToString(b)}
}

// ---- per pane ----------------------------------------------------------

type edgeExport struct {
	chaski.EdgeInfo
	State string `json:"state"`
	// Latency is the dashboard's own record of the peer (it survives
	// reconnects): the chart's statistics with p95 and σ, its points and
	// outages.
	LatencyView *latencyExport `json:"latency_view,omitempty"`
}

func (p *edgesPane) exportData() any {
	out := make([]edgeExport, 0, len(p.sh.edges))
	for _, e := range p.sh.edges {
		out = append(out, edgeExport{EdgeInfo: e, State: e.State.String(), LatencyView: p.latencyExportOf(e.PeerID)})
	}
	return out
}

type messageExport struct {
	At      time.Time `json:"at"`
	Topic   string    `json:"topic"`
	From    string    `json:"from"`
	FromID  string    `json:"from_id,omitempty"`
	Self    bool      `json:"self,omitempty"`
	Failed  string    `json:"failed,omitempty"`
	History bool      `json:"history,omitempty"` // from the node's stored scrollback (an earlier run)
	jsonValue
}

func (p *topicsPane) exportData() any {
	r := p.all
	if t := p.currentTopic(); t != "" && p.topics[t] != nil {
		r = p.topics[t]
	}
	out := make([]messageExport, 0, r.Len())
	for i := 0; i < r.Len(); i++ {
		e := r.At(i)
		out = append(out, messageExport{At: e.at, Topic: e.topic, From: e.from, FromID: e.fromID, Self: e.self, Failed: e.failed, History: e.hist, jsonValue: payloadJSON(e.data)})
	}
	return out
}

func (p *discoveryPane) exportData() any { return p.sh.pairings }

type transferExport struct {
	xferRecord
	Rate    float64 `json:"rate_bytes_per_s"`
	Elapsed float64 `json:"elapsed_s"`
	Earlier bool    `json:"earlier_run,omitempty"`
}

func (p *transfersPane) exportData() any {
	sh := p.sh
	now := sh.now()
	out := []transferExport{}
	for _, r := range p.rows() {
		if r.t == nil {
			out = append(out, transferExport{xferRecord: xferRecord{Name: r.drop.name, Topic: r.drop.topic, Outgoing: true,
				State: r.drop.state, Source: r.drop.path, Err: r.drop.err, Started: r.drop.at}})
			continue
		}
		t := r.t
		algo, sum := xferHash(t)
		hash := ""
		if sum != "" {
			hash = algo + ":" + sum
		}
		out = append(out, transferExport{
			xferRecord: xferRecord{ID: t.ID, Name: t.Name, Topic: t.Topic, Peer: t.Peer, PeerID: t.PeerID, Outgoing: t.Outgoing,
				Size: t.Size, Done: t.Done, State: t.State.String(), Hash: hash, Path: t.Path, Source: sh.sourceOf(t),
				Err: t.Err, Started: t.Started, FirstByte: t.FirstByte, Ended: t.Ended},
			Rate: transferRate(t, now), Elapsed: transferElapsed(t, now).Seconds(), Earlier: sh.xhist.loaded[t.ID],
		})
	}
	return out
}

type keyExport struct {
	Key        string     `json:"key"`
	Size       int        `json:"size"`
	Updated    time.Time  `json:"updated"`
	Expires    *time.Time `json:"expires,omitempty"`
	TTLSeconds *float64   `json:"ttl_s,omitempty"`
	Origin     string     `json:"origin"` // "local" or the peer's name
	OriginID   string     `json:"origin_id,omitempty"`
	jsonValue
}

func (p *storePane) exportData() any {
	now := p.sh.now()
	out := []keyExport{}
	for _, e := range p.rows() {
		k := keyExport{Key: e.Key, Size: entrySize(e), Updated: e.Updated, Origin: "local", OriginID: e.FromID, jsonValue: payloadJSON(e.Value)}
		if e.FromID != "" {
			k.Origin = e.From
			if k.Origin == "" {
				k.Origin = e.FromID
			}
		}
		if !e.Expires.IsZero() {
			exp := e.Expires
			ttl := max(0, exp.Sub(now)).Seconds()
			k.Expires, k.TTLSeconds = &exp, &ttl
		}
		out = append(out, k)
	}
	return out
}

type logExport struct {
	At    time.Time `json:"at"`
	Level string    `json:"level"`
	Text  string    `json:"text"`
}

func (p *logPane) exportData() any {
	out := make([]logExport, 0, p.lines.Len())
	for i := 0; i < p.lines.Len(); i++ {
		e := p.lines.At(i)
		lvl := "info"
		switch {
		case e.level >= 8:
			lvl = "error"
		case e.level >= 4:
			lvl = "warn"
		case e.level < 0:
			lvl = "debug"
		}
		out = append(out, logExport{At: e.at, Level: lvl, Text: e.text})
	}
	return out
}

// ---- clipboard ---------------------------------------------------------

// copyToClipboard asks the terminal to put text on the clipboard (OSC 52)
// with the next frame; terminals that do not support it ignore it.
func (m *model) copyToClipboard(text string) {
	m.clip = "\x1b]52;c;" + base64.StdEncoding.EncodeToString([]byte(text)) + "\x07"
	m.viewDirty = true
}

// takeClipboard returns the pending OSC 52 sequence once.
func (m *model) takeClipboard() string {
	s := m.clip
	m.clip = ""
	return s
}
