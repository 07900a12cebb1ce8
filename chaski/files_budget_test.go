package chaski

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// plantPartial leaves in dir the partial file of (sender, name, size) that
// an interrupted transfer would have kept, holding held.
func plantPartial(t *testing.T, dir, sender, name string, size int64, held []byte, algo string) {
	t.Helper()
	base := filepath.Join(dir, partialPrefix+partialKey(sender, name, size))
	raw, _ := json.Marshal(sidecar{Sender: sender, Name: name, Size: size, Updated: time.Now(), Hash: algo})
	if err := os.WriteFile(base, held, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(base+".json", raw, 0o600); err != nil {
		t.Fatal(err)
	}
}

func senderKey(resumeID []byte) string { return "r:" + hex.EncodeToString(resumeID) }

// wantBudgetRefusal checks that a send was refused for the partial-file
// budget, with the reason the sender sees.
func wantBudgetRefusal(t *testing.T, what string, err error, detail string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), reasonPartialBudget) || !strings.Contains(err.Error(), detail) {
		t.Fatalf("%s: got %v, want a refusal %q (%s)", what, err, reasonPartialBudget, detail)
	}
}

// A sender whose kept partials fill its budget is refused a new file, with
// the reason; another sender still gets in; once the kept partials expire,
// the first sender's file is accepted. Before the budget, kept partials
// were bounded only by the free space of each offer.
func TestAttackPartialBudgetPerSender(t *testing.T) {
	dir := t.TempDir()
	r := fileReceiver(t, Config{AcceptFiles: true, DownloadDir: dir, MaxPartialBytesPerSender: 1 << 20, MaxPartialBytes: 64 << 20})
	idA, idB := randomBytes(t, 16), randomBytes(t, 16)
	plantPartial(t, dir, senderKey(idA), "kept.bin", 2<<20, randomBytes(t, 800<<10), HashBLAKE3)
	a := fileSender(t, Config{Name: "hog", ResumeID: idA}, r)
	b := fileSender(t, Config{Name: "honest", ResumeID: idB}, r)
	data := randomBytes(t, 512<<10)
	_, err := push(t, a, "new.bin", data, nil)
	wantBudgetRefusal(t, "a sender over its budget", err, "this sender's partial files")
	if _, err := push(t, b, "new.bin", data, nil); err != nil {
		t.Fatalf("another sender while the first is over its budget: %v", err)
	}
	// Expiry frees the budget.
	old := time.Now().Add(-partialMaxAge - time.Hour)
	base := filepath.Join(dir, partialPrefix+partialKey(senderKey(idA), "kept.bin", 2<<20))
	for _, p := range []string{base, base + ".json"} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := push(t, a, "after-expiry.bin", data, nil); err != nil {
		t.Fatalf("after its partials expired: %v", err)
	}
}

// Partials of other senders that fill the total budget refuse a newcomer
// whose own budget is untouched.
func TestAttackPartialBudgetTotal(t *testing.T) {
	dir := t.TempDir()
	r := fileReceiver(t, Config{AcceptFiles: true, DownloadDir: dir, MaxPartialBytesPerSender: 1 << 20, MaxPartialBytes: 2 << 20})
	for i := 0; i < 2; i++ {
		plantPartial(t, dir, senderKey(randomBytes(t, 16)), "kept.bin", 1<<20, randomBytes(t, 800<<10), HashBLAKE3)
	}
	c := fileSender(t, Config{Name: "newcomer", ResumeID: randomBytes(t, 16)}, r)
	_, err := push(t, c, "new.bin", randomBytes(t, 512<<10), nil)
	wantBudgetRefusal(t, "a new sender past the total budget", err, "partial files would hold")
	if _, err := push(t, c, "small.bin", randomBytes(t, 64<<10), nil); err != nil {
		t.Fatalf("a file that fits the total budget: %v", err)
	}
}

// A sender at its budget may still resume its own partial (it is already
// held), while a fresh file of the same sender is refused.
func TestPartialBudgetAllowsResume(t *testing.T) {
	dir := t.TempDir()
	r := fileReceiver(t, Config{AcceptFiles: true, DownloadDir: dir, MaxPartialBytesPerSender: 1 << 20, MaxPartialBytes: 64 << 20})
	id := randomBytes(t, 16)
	data := randomBytes(t, 512<<10)
	plantPartial(t, dir, senderKey(id), "other.bin", 4<<20, randomBytes(t, 800<<10), HashSHA256)
	plantPartial(t, dir, senderKey(id), "resume.bin", int64(len(data)), data[:256<<10], HashSHA256)
	a := fileSender(t, Config{ResumeID: id, FileHash: HashSHA256}, r)
	_, err := push(t, a, "fresh.bin", randomBytes(t, 64<<10), nil)
	wantBudgetRefusal(t, "a fresh file of a sender at its budget", err, "this sender's partial files")
	infos, err := push(t, a, "resume.bin", data, nil)
	if err != nil {
		t.Fatalf("resuming its own partial: %v", err)
	}
	if infos[0].Resumed != 256<<10 || infos[0].State != TransferDone {
		t.Fatalf("not resumed: %+v", infos[0])
	}
	if got, err := os.ReadFile(filepath.Join(dir, "resume.bin")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("resumed file differs (%v)", err)
	}
}
