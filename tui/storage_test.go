package tui

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/chaski-dev/chaski/chaski"
)

func storeFake() *fakeBackend {
	f := newFake()
	f.store = []chaski.StoreEntry{
		{Key: "blob", Value: []byte{0x00, 0x01, 0xfe, 0xff, 'A', 'B'}, Size: 6, Updated: testStart.Add(-time.Hour)},
		{Key: "config", Value: []byte(`{"name":"alpha","ports":[8511,8512],"tls":false}`), Size: 48, Updated: testStart.Add(-time.Minute),
			Expires: testStart.Add(90 * time.Second), From: "bravo", FromID: "p-bravo"},
		{Key: "greeting", Value: []byte("hello world"), Size: 11, Updated: testStart.Add(-time.Minute), Expires: testStart.Add(time.Hour)},
	}
	return f
}

// The list shows size, the TTL left, and where each value came from; the
// viewer shows JSON pretty-printed, text as text and binary as hex.
func TestStorageViewerTextJSONHex(t *testing.T) {
	for _, sz := range [][2]int{{120, 40}, {200, 60}} {
		m := newTestModel(t, storeFake(), sz[0], sz[1])
		keys(m, "esc", "5", "z")
		s := frame(m)
		wantIn(t, s, "KEY", "TTL", "ORIGIN", "config", "← bravo", "local", "1m30s", "never", "48 B")
		keys(m, "j", "enter") // config
		s = frame(m)
		wantIn(t, s, "config · fetched from bravo", "JSON · 48 B", `  "name": "alpha",`, `  "ports": [`, `    8511,`)
		keys(m, "esc", "g", "enter") // blob
		s = frame(m)
		wantIn(t, s, "binary (hex)", "00000000  00 01 fe ff 41 42", "....AB")
		keys(m, "esc", "G", "enter") // greeting
		s = frame(m)
		wantIn(t, s, "text · 11 B", "hello world")
		wantNot(t, s, "00000000")
	}
}

// The TTL counts down once a second and turns to "expired".
func TestStorageTTLCountsDown(t *testing.T) {
	now := testStart
	f := storeFake()
	m := newTestModelOpts(t, f, 160, 40, Options{Now: func() time.Time { return now }})
	keys(m, "esc", "5", "z")
	wantIn(t, frame(m), "1m30s")
	now = now.Add(31 * time.Second)
	send(m, frameMsg{at: now})
	s := frame(m)
	wantIn(t, s, "59s")
	wantNot(t, s, "1m30s")
	now = now.Add(59 * time.Second)
	send(m, frameMsg{at: now})
	wantIn(t, frame(m), "expired")
}

// Delete asks first; n keeps the key, y deletes it.
func TestStorageConfirmDelete(t *testing.T) {
	f := storeFake()
	m := newTestModel(t, f, 120, 40)
	keys(m, "esc", "5", "G", "x")
	wantIn(t, frame(m), "delete key greeting (11 B, local)?", "ANSWER y/n")
	keys(m, "n")
	if len(f.deleted) != 0 || m.m.confirm != nil {
		t.Fatalf("n deleted %v", f.deleted)
	}
	runAll(m, keys(m, "x", "y"))
	if len(f.deleted) != 1 || f.deleted[0] != "greeting" {
		t.Fatalf("deleted %v, want greeting", f.deleted)
	}
	wantIn(t, frame(m), "deleted greeting")
}

// Put asks key, value, lifetime, then confirms; edit starts from the value
// and lifetime the key has, and says it replaces it; binary values are not
// edited as text.
func TestStoragePutAndEditConfirm(t *testing.T) {
	f := storeFake()
	m := newTestModel(t, f, 160, 40)
	keys(m, "esc", "5", "a", "color", "enter", "blue", "enter", "enter")
	wantIn(t, frame(m), "store color (4 B, expires in 1h0m0s)?")
	runAll(m, keys(m, "y"))
	if n := len(f.store); n != 4 || f.store[3].Key != "color" || string(f.store[3].Value) != "blue" {
		t.Fatalf("store after put: %+v", f.store)
	}
	// Edit greeting (last row): the prompt holds its value.
	keys(m, "G", "E")
	if m.m.prompt == nil || m.m.prompt.input.Value() != "hello world" {
		t.Fatalf("edit prompt = %+v", m.m.prompt)
	}
	keys(m, "!", "enter")
	if m.m.prompt == nil || m.m.prompt.input.Value() != "1h0m0s" {
		t.Fatalf("ttl prompt holds %q, want the time left", m.m.prompt.input.Value())
	}
	keys(m, "enter")
	wantIn(t, frame(m), "replace greeting (12 B, expires in 1h0m0s)?")
	runAll(m, keys(m, "y"))
	if last := f.store[len(f.store)-1]; last.Key != "greeting" || string(last.Value) != "hello world!" {
		t.Fatalf("edit stored %+v", last)
	}
	keys(m, "g", "E") // blob
	if m.m.prompt != nil {
		t.Fatal("a binary value opened a text prompt")
	}
	wantIn(t, frame(m), "binary data: it cannot be edited as text")
}

// fetchFake answers fetches like a node: which peer answered.
type fetchFake struct{ *fakeBackend }

func (f fetchFake) FetchWith(ctx context.Context, key string, opts chaski.FetchOptions) (chaski.FetchResult, error) {
	return chaski.FetchResult{Value: []byte(`{"v":1}`), From: "charlie", FromID: "p-charlie"}, nil
}

func TestStorageFetchShowsAnsweringPeer(t *testing.T) {
	m := newTestModel(t, fetchFake{storeFake()}.fakeBackend, 160, 40)
	m.m.sh.b = fetchFake{m.m.sh.b.(*fakeBackend)}
	keys(m, "esc", "5", "f", "remote-key")
	runAll(m, keys(m, "enter"))
	s := frame(m)
	wantIn(t, s, "remote-key · fetched from charlie", "JSON", `"v": 1`)
	keys(m, "esc")
	wantIn(t, frame(m), "fetched remote-key (7 B) from charlie")
}

// e writes the focused pane's data as JSON into the data dir and says
// where; the file holds what the pane shows.
func TestExportWritesPaneJSON(t *testing.T) {
	dir := t.TempDir()
	f := storeFake()
	f.transfers = doneTransfers()
	m := newTestModelOpts(t, f, 160, 40, Options{DataDir: dir})
	keys(m, "esc", "5")
	runAll(m, keys(m, "e"))
	s := frame(m)
	wantIn(t, s, "exported storage to "+dir)
	files, _ := filepath.Glob(filepath.Join(dir, "export-storage-*.json"))
	if len(files) != 1 {
		t.Fatalf("export files %v", files)
	}
	var doc struct {
		Pane string
		Node string
		Data []struct {
			Key    string
			Size   int
			Origin string
			TTL    *float64        `json:"ttl_s"`
			Text   *string         `json:"text"`
			JSON   json.RawMessage `json:"json"`
			Base64 string          `json:"base64"`
		}
	}
	raw, _ := os.ReadFile(files[0])
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("%v:\n%s", err, raw)
	}
	if doc.Pane != "storage" || doc.Node != "alpha" || len(doc.Data) != 3 {
		t.Fatalf("export = %+v", doc)
	}
	byKey := map[string]int{}
	for i, d := range doc.Data {
		byKey[d.Key] = i
	}
	if d := doc.Data[byKey["config"]]; d.Origin != "bravo" || d.TTL == nil || *d.TTL != 90 || !strings.Contains(string(d.JSON), `"ports"`) {
		t.Errorf("config exported as %+v", d)
	}
	if d := doc.Data[byKey["blob"]]; d.Base64 != "AAH+/0FC" || d.Origin != "local" {
		t.Errorf("blob exported as %+v", d)
	}
	if d := doc.Data[byKey["greeting"]]; d.Text == nil || *d.Text != "hello world" {
		t.Errorf("greeting exported as %+v", d)
	}
	// Transfers: rows with hash, saved path, rate.
	keys(m, "4")
	runAll(m, keys(m, "e"))
	files, _ = filepath.Glob(filepath.Join(dir, "export-transfers-*.json"))
	if len(files) != 1 {
		t.Fatalf("transfer export files %v", files)
	}
	raw, _ = os.ReadFile(files[0])
	for _, want := range []string{`"hash": "sha256:0123456789abcdef`, `"path": "/home/u/Downloads/notes.txt"`, `"state": "done"`, `"rate_bytes_per_s"`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("transfer export lacks %s:\n%s", want, raw)
		}
	}
	// Every pane exports; a second export of the same second does not
	// overwrite the first.
	for _, p := range []string{"1", "2", "3", "6", "6"} {
		runAll(m, keys(m, "esc", p, "esc", "e")) // Esc: the chat's input takes e as text
	}
	// While typing in the chat, M-e exports it (e is text there).
	runAll(m, keys(m, "esc", "2"))
	if !m.m.chat.typing() {
		t.Fatal("the chat is not typing")
	}
	runAll(m, []tea.Cmd{send(m, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{'e'}, Alt: true})})
	if fs, _ := filepath.Glob(filepath.Join(dir, "export-topics-*.json")); len(fs) != 2 {
		t.Errorf("M-e while typing: topic exports %v", fs)
	}
	if v := m.m.chat.input.Value(); v != "" {
		t.Errorf("M-e typed %q", v)
	}
	for _, name := range []string{"edges", "topics", "discovery", "log"} {
		if fs, _ := filepath.Glob(filepath.Join(dir, "export-"+name+"-*.json")); len(fs) == 0 {
			t.Errorf("no export of %s", name)
		}
	}
	if fs, _ := filepath.Glob(filepath.Join(dir, "export-log-*.json")); len(fs) != 2 {
		t.Errorf("two log exports in one second gave %v", fs)
	}
}

// A teatest flow: the storage viewer and an export, as a user drives it.
func TestFlowStorageAndExport(t *testing.T) {
	dir := t.TempDir()
	f := storeFake()
	tm := startFlow(t, f, 160, 40, Options{DataDir: dir})
	waitText(t, tm, "chaski-test", "TYPING")
	tm.Send(tea.KeyMsg{Type: tea.KeyEsc})
	tm.Type("5z") // zoomed: the pane's lines are drawn anew
	waitText(t, tm, "zoomed", "← bravo", "ORIGIN")
	tm.Type("j")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitText(t, tm, "JSON · 48 B", `"ports": [`)
	tm.Send(tea.KeyMsg{Type: tea.KeyEsc})
	tm.Type("e")
	waitText(t, tm, "exported storage to "+dir)
	quitFlow(t, tm)
}

// The filter matches keys, origins and text values.
func TestStorageFilter(t *testing.T) {
	m := newTestModel(t, storeFake(), 160, 40)
	keys(m, "esc", "5", "/", "bravo", "enter")
	s := frame(m)
	wantIn(t, s, "config")
	wantNot(t, s, "greeting", "blob")
	keys(m, "/")
	send(m, tea.KeyMsg{Type: tea.KeyCtrlU})
	keys(m, "world", "enter")
	s = frame(m)
	wantIn(t, s, "greeting")
	wantNot(t, s, "config")
}
