package tui

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/chaski-dev/chaski/chaski"
)

// stateFake is the fake with the node's state records (SaveState).
type stateFake struct {
	*fakeBackend
	smu   sync.Mutex
	state map[string][]byte
	saves int
}

func newStateFake() *stateFake { return &stateFake{fakeBackend: newFake(), state: map[string][]byte{}} }

func (f *stateFake) SaveState(name string, v []byte) error {
	f.smu.Lock()
	defer f.smu.Unlock()
	f.state[name] = append([]byte(nil), v...)
	f.saves++
	return nil
}

func (f *stateFake) LoadState(name string) ([]byte, error) {
	f.smu.Lock()
	defer f.smu.Unlock()
	v, ok := f.state[name]
	if !ok {
		return nil, chaski.ErrNotFound
	}
	return v, nil
}

// frameSave runs one frame tick and the save it schedules.
func frameSave(m Model) {
	cmd := send(m, frameMsg{at: testStart})
	if cmd == nil {
		return
	}
	if b, ok := cmd().(tea.BatchMsg); ok {
		for _, c := range b[1:] { // b[0] is the next frame tick
			if msg := c(); msg != nil { // waited for: a store write may be slow
				send(m, msg)
			}
		}
	}
}

func doneTransfers() []chaski.TransferInfo {
	return []chaski.TransferInfo{
		{ID: "in-1", Name: "notes.txt", Topic: "chat", Peer: "bravo", Size: 2048, Done: 2048, State: chaski.TransferDone,
			SHA256: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", Path: "/home/u/Downloads/notes.txt",
			Started: testStart.Add(-time.Minute), FirstByte: testStart.Add(-50 * time.Second), Ended: testStart.Add(-40 * time.Second)},
		{ID: "out-1", Name: "movie.mkv", Topic: "chat", Peer: "bravo", Outgoing: true, Size: 100 << 20, Done: 100 << 20,
			State: chaski.TransferDone, SHA256: "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210",
			Started: testStart.Add(-2 * time.Minute), FirstByte: testStart.Add(-2 * time.Minute), Ended: testStart.Add(-100 * time.Second)},
		{ID: "act-1", Name: "big.iso", Topic: "chat", Peer: "charlie", Size: 100 << 20, Done: 25 << 20,
			State: chaski.TransferActive, Started: testStart.Add(-30 * time.Second), FirstByte: testStart.Add(-25 * time.Second)},
	}
}

// Both directions show percent, rate, ETA and elapsed while running; a
// finished one its hash (12 hex digits) and, received, where it was saved;
// Enter shows the full hash.
func TestTransferRowsShowHashAndSavedPath(t *testing.T) {
	for _, sz := range [][2]int{{120, 40}, {200, 60}} {
		f := newFake()
		f.transfers = doneTransfers()
		m := newTestModel(t, f, sz[0], sz[1])
		keys(m, "esc", "4", "z")
		s := frame(m)
		// The receiver's row: where the file is first, then the hash.
		wantIn(t, s, "notes.txt", "✓ saved to /home/u/Downloads/note", "✓ done sha256 fedcba987654",
			"movie.mkv", "sha256 fedcba987654", "receiving 25%", "TIME", "25s", "10s", "20s")
		wantNot(t, s, "0123456789abcdef0123") // only 12 digits in the row
		if sz[0] >= 200 {
			wantIn(t, s, "✓ saved to /home/u/Downloads/notes.txt · sha256 0123456789ab")
		}
		// The active row: 25 MiB in 25 s is 1 MiB/s, 75 MiB to go: 1:15.
		wantIn(t, s, "1.0 MiB/s", "1:15", "▸ big.iso · receiving 25% · 1.0 MiB/s · ETA 1:15")
		// Selected, the received file's line at the bottom says where it
		// was saved; Enter shows the full hash.
		keys(m, "j")
		wantIn(t, frame(m), "▸ notes.txt · sha256 0123456789ab · saved to /home/u/Downloads/notes.txt")
		keys(m, "enter")
		s = frame(m)
		if m.m.overlay != "detail" {
			t.Fatalf("%v: Enter opened no detail view:\n%s", sz, s)
		}
		wantIn(t, s, "sha256: 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "saved to: /home/u/Downloads/notes.txt", "elapsed: 10s")
		keys(m, "esc")
	}
}

// o on a received file shows its folder and copies it with OSC 52 in the
// next frame only.
func TestTransferOpenCopiesFolder(t *testing.T) {
	f := newFake()
	f.transfers = doneTransfers()[:1]
	m := newTestModel(t, f, 120, 40)
	keys(m, "esc", "4", "o")
	raw := m.View()
	want := "\x1b]52;c;" + base64.StdEncoding.EncodeToString([]byte("/home/u/Downloads")) + "\x07"
	if !strings.Contains(raw, want) {
		t.Fatalf("no OSC 52 copy of the folder in the frame:\n%q", raw[:min(len(raw), 200)])
	}
	wantIn(t, frame(m), "folder /home/u/Downloads (copied to the clipboard)")
	send(m, tea.KeyMsg{Type: tea.KeyDown}) // any change re-renders
	if strings.Contains(m.View(), "\x1b]52;") {
		t.Error("the OSC 52 copy is sent again with a later frame")
	}
}

// A send that failed is retried with r from the same file to the same
// topic; c clears a finished row for good (a later snapshot does not bring
// it back), C clears every finished one.
func TestTransferRetryAndClear(t *testing.T) {
	f := newFake()
	f.pushFail = "receiver aborted: disk full"
	m := newTestModel(t, f, 120, 40)
	path := filepath.Join(t.TempDir(), "report.pdf")
	if err := os.WriteFile(path, []byte("pdf"), 0o600); err != nil {
		t.Fatal(err)
	}
	keys(m, "esc", "4", "z")
	run(m, send(m, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(path), Paste: true}))
	wantIn(t, frame(m), "report.pdf", "✗ failed: receiver aborted", "▸ report.pdf · failed: receiver aborted: disk full · from "+path)
	f.mu.Lock()
	f.pushFail = ""
	f.mu.Unlock()
	keys(m, "g")
	runAll(m, keys(m, "r"))
	if _, sent := f.snapshot(); len(sent) != 2 || sent[1] != "report.pdf" {
		t.Fatalf("retry sent %v, want report.pdf twice", sent)
	}
	s := frame(m)
	wantIn(t, s, "✓ done")
	// Clear the finished send: gone, and a snapshot of the node that still
	// lists it does not bring it back.
	var doneCopy chaski.TransferInfo
	for i, r := range m.m.xfers.rows() {
		if r.t != nil && r.t.State == chaski.TransferDone {
			doneCopy = *r.t
			m.m.xfers.sel = i
		}
	}
	if doneCopy.ID == "" {
		t.Fatal("no finished transfer after the retry")
	}
	keys(m, "c")
	if m.m.sh.transfers[doneCopy.ID] != nil {
		t.Fatal("c did not clear the finished row")
	}
	send(m, snapshotMsg{transfers: []chaski.TransferInfo{doneCopy}})
	if m.m.sh.transfers[doneCopy.ID] != nil {
		t.Error("a snapshot brought back a cleared transfer")
	}
	// C clears the rest (the failed one).
	keys(m, "C")
	if n := len(m.m.sh.transfers) + len(m.m.sh.drops); n != 0 {
		t.Errorf("%d rows left after C", n)
	}
	wantIn(t, frame(m), "no transfers")
	// An incoming failure cannot be retried from here: it says who can.
	send(m, events(&chaski.TransferEvent{Transfer: chaski.TransferInfo{ID: "in-x", Name: "x.bin", Peer: "charlie", State: chaski.TransferFailed, Err: "lost"}}))
	keys(m, "g", "r")
	wantIn(t, frame(m), "only the sender can retry x.bin: ask charlie")
}

// The list is kept in the node's state records: a new dashboard on the
// same store shows the finished rows of the last one, marked "earlier",
// with what a retry needs; at most the newest 100.
func TestTransferListPersisted(t *testing.T) {
	f := newStateFake()
	m := New(f, Options{Now: func() time.Time { return testStart }})
	send(m, tea.WindowSizeMsg{Width: 160, Height: 40})
	for i := 0; i < 105; i++ {
		tr := chaski.TransferInfo{ID: "old-" + string(rune('A'+i/26)) + string(rune('a'+i%26)), Name: "f.txt", Peer: "bravo",
			Size: 10, Done: 10, State: chaski.TransferDone, Started: testStart.Add(time.Duration(i-200) * time.Second)}
		send(m, events(&chaski.TransferEvent{Transfer: tr}))
	}
	for _, tr := range doneTransfers() {
		send(m, events(&chaski.TransferEvent{Transfer: tr}))
	}
	m.m.sh.xhist.sources["out-1"] = "/home/u/movie.mkv"
	m.m.sh.xhist.dirty = true
	frameSave(m)
	m.Close()
	var saved xferFile
	if err := json.Unmarshal(f.state[xferStateName], &saved); err != nil {
		t.Fatal(err)
	}
	if len(saved.Transfers) != maxXferHistory {
		t.Fatalf("saved %d transfers, want %d", len(saved.Transfers), maxXferHistory)
	}
	for _, r := range saved.Transfers {
		if r.ID == "act-1" {
			t.Error("a running transfer was saved")
		}
	}

	m3 := New(f, Options{Now: func() time.Time { return testStart }})
	defer m3.Close()
	send(m3, tea.WindowSizeMsg{Width: 160, Height: 40})
	keys(m3, "esc", "4", "z")
	s := frame(m3)
	wantIn(t, s, "notes.txt", "✓ (earlier run) saved to /home/u/Downloads/notes.txt", "movie.mkv", "done (earlier run) sha256 fedcba987654")
	if got := m3.m.sh.xhist.sources["out-1"]; got != "/home/u/movie.mkv" {
		t.Errorf("the sent file's source after a restart = %q", got)
	}
	if n := len(m3.m.sh.transfers); n != maxXferHistory {
		t.Errorf("%d rows after a restart, want %d", n, maxXferHistory)
	}
	// The oldest five did not survive.
	if m3.m.sh.transfers["old-Aa"] != nil {
		t.Error("the oldest transfer was kept beyond the 100")
	}
}

// A dropped directory and a dropped path that does not exist are rows that
// say why; neither lands in the input as text.
func TestDroppedDirectoryAndMissingPath(t *testing.T) {
	f := newFake()
	m := newTestModel(t, f, 160, 40)
	dir := t.TempDir()
	gone := filepath.Join(dir, "gone.txt") // its folder exists: a file moved away
	run(m, send(m, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(dir), Paste: true}))
	run(m, send(m, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(gone), Paste: true}))
	if v := m.m.chat.input.Value(); v != "" {
		t.Errorf("input holds %q after the drops", v)
	}
	keys(m, "esc", "4", "z")
	wantIn(t, frame(m), "directories are not supported by this node", gone+" does not exist")
	keys(m, "z", "2")
	if _, sent := f.snapshot(); len(sent) != 0 {
		t.Errorf("sent %v", sent)
	}
	// Ordinary text is still text, and so are commands and URL paths.
	for _, text := range []string{"see /etc/hosts please", "/help", "/api/v1/users"} {
		m.m.chat.input.SetValue("")
		send(m, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(text), Paste: true})
		if v := m.m.chat.input.Value(); v != text {
			t.Errorf("text paste %q became %q", text, v)
		}
	}
}

// Read-only viewers (SSH) cannot retry, clear, write, delete, fetch or
// export; each refusal says so.
func TestReadOnlyDeniesPaneActions(t *testing.T) {
	f := newFake()
	f.populate()
	f.transfers = append(f.transfers, doneTransfers()...)
	dir := t.TempDir()
	m := newTestModelOpts(t, f, 160, 40, Options{ReadOnly: true, DataDir: dir})
	before := len(m.m.sh.transfers)
	keys(m, "4")
	for _, k := range []string{"c", "C", "r", "e"} {
		runAll(m, keys(m, "G", k))
		wantIn(t, frame(m), "read-only")
	}
	if len(m.m.sh.transfers) != before {
		t.Error("a read-only viewer cleared a transfer")
	}
	keys(m, "5")
	for _, k := range []string{"a", "E", "x", "f", "e"} {
		runAll(m, keys(m, k))
		if m.m.prompt != nil || m.m.confirm != nil {
			t.Fatalf("%s opened a question in read-only mode", k)
		}
		wantIn(t, frame(m), "read-only")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("read-only export wrote %v", ents)
	}
	if len(f.deleted) != 0 {
		t.Errorf("read-only deleted %v", f.deleted)
	}
}

// A teatest flow: the Transfers pane as a user drives it — the hash in
// the row, the full hash on Enter, c clears the row.
func TestFlowTransfersHashAndClear(t *testing.T) {
	f := newFake()
	f.transfers = doneTransfers()[:1]
	tm := startFlow(t, f, 160, 40, Options{})
	waitText(t, tm, "chaski-test", "TYPING")
	tm.Send(tea.KeyMsg{Type: tea.KeyEsc})
	tm.Type("4z")
	waitText(t, tm, "zoomed", "saved to /home/u/Downloads/notes.txt · sha256 0123456789ab")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitText(t, tm, "sha256: 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	tm.Send(tea.KeyMsg{Type: tea.KeyEsc})
	tm.Type("c")
	waitText(t, tm, "cleared notes.txt from the list", "no transfers")
	quitFlow(t, tm)
}

func TestFmtElapsed(t *testing.T) {
	for d, want := range map[time.Duration]string{3 * time.Millisecond: "<0.1s", 300 * time.Millisecond: "0.3s", 9500 * time.Millisecond: "9.5s", 75 * time.Second: "1m15s"} {
		if got := fmtElapsed(d); got != want {
			t.Errorf("fmtElapsed(%v) = %q, want %q", d, got, want)
		}
	}
}

// With NoLocalFiles (SSH) a pasted folder or missing path stays text: the
// viewer learns nothing about the server's files.
func TestNoLocalFilesPastedPathsAreText(t *testing.T) {
	f := newFake()
	m := newTestModelOpts(t, f, 160, 40, Options{NoLocalFiles: true})
	dir := t.TempDir()
	for _, p := range []string{dir, filepath.Join(dir, "gone.txt")} {
		m.m.chat.input.SetValue("")
		run(m, send(m, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(p), Paste: true}))
		if v := m.m.chat.input.Value(); v != p {
			t.Errorf("paste of %s became %q", p, v)
		}
	}
	if len(m.m.sh.drops) != 0 {
		t.Errorf("drop rows %v", m.m.sh.drops)
	}
}

// dirFake sends folders like a node (SendFile), counting them.
type dirFake struct {
	*fakeBackend
	dirs *[]string
}

func (f dirFake) SendFile(ctx context.Context, topic, path string, meta map[string]string) (string, error) {
	*f.dirs = append(*f.dirs, path)
	return "dir-1", nil
}

// A folder goes to the node's SendFile only when a connected peer takes
// files on the topic; otherwise its row says nobody would (the node's
// background send would fail unseen).
func TestDroppedFolderNeedsAReceiver(t *testing.T) {
	var dirs []string
	f := newFake()
	m := newTestModel(t, f, 200, 50)
	m.m.sh.b = dirFake{f, &dirs}
	dir := t.TempDir()
	run(m, send(m, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(dir), Paste: true}))
	if len(dirs) != 0 {
		t.Fatalf("sent %v with nobody to take it", dirs)
	}
	keys(m, "esc", "4", "z")
	wantIn(t, frame(m), "failed: no connected peer subscribes to the topic")
	f.mu.Lock()
	f.edges = []chaski.EdgeInfo{{PeerID: "p-b", Name: "bravo", State: chaski.StateUp, AcceptsFiles: true, Subscriptions: []string{"chat"}}}
	f.mu.Unlock()
	run(m, send(m, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(dir), Paste: true}))
	if len(dirs) != 1 || dirs[0] != dir {
		t.Fatalf("folder sends %v, want %s", dirs, dir)
	}
	wantIn(t, frame(m), "sending the folder "+filepath.Base(dir))
}
