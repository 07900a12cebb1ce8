package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A send through a root says that files go to direct neighbours and how to
// reach the receiver; with --discover it pairs with a receiver that is
// paired for the topic, through the root, and the file arrives.
func TestSendThroughRootExplainsAndDiscoverReaches(t *testing.T) {
	_, rootAddr := startNode(t, "--root", "--name", "root")
	recv, _ := startNode(t, "--sub", "files", "--accept-files", "--download-dir", t.TempDir(),
		"--name", "receiver", "--discover", "--discover-timeout", "1s", "--connect", rootAddr)
	recv.waitLine(1, waitFor, "the receiver paired", isEvent("paired"))
	src := filepath.Join(t.TempDir(), "f.txt")
	if err := os.WriteFile(src, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := runCmd(t, "", "send", "--connect", rootAddr, "files", src)
	if code != 2 || strings.Count(errOut, "\n") != 1 {
		t.Fatalf("send through a root: exit %d, %q", code, errOut)
	}
	for _, want := range []string{"files go only to direct neighbours", "not through a root (root)", "--connect ITS-ADDRESS", "--discover"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("message lacks %q: %q", want, errOut)
		}
	}
	out, errOut, code := runCmd(t, "", "send", "--json", "--connect", rootAddr, "--discover", "files", src)
	if code != 0 || !strings.Contains(out, `"to":"receiver"`) {
		t.Fatalf("send --discover through the root: exit %d\n%s\n%s", code, out, errOut)
	}
}

// A refused send is one sentence: no repeated "accepts files".
func TestSendRefusedIsOneSentence(t *testing.T) {
	_, addr := startNode(t, "--sub", "files", "--name", "nofiles")
	src := filepath.Join(t.TempDir(), "f.txt")
	if err := os.WriteFile(src, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := runCmd(t, "", "send", "--connect", addr, "files", src)
	if code != 2 || strings.Count(errOut, "accepts files") != 1 || strings.Contains(errOut, "refused by peer") ||
		strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "--accept-files") {
		t.Fatalf("refused send: exit %d, %q", code, errOut)
	}
}
