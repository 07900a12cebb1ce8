package chaski

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chaski-dev/chaski/chaski/wire"
)

// verifiedOffer sends a BLAKE3 offer with the true root of data and returns
// the transfer id and the tree.
func (p *fileRawPeer) verifiedOffer(name string, data []byte, group int) ([]byte, *b3Tree) {
	p.t.Helper()
	tr, err := hashTree(bytes.NewReader(data), int64(len(data)), group)
	if err != nil {
		p.t.Fatal(err)
	}
	id := make([]byte, 16)
	copy(id, randomBytes(p.t, 16))
	p.send(wire.KindFileOffer, fileTopic, &wire.FileOffer{Transfer: id, Name: name, Size: int64(len(data)),
		Hash: HashBLAKE3, Root: tr.root[:], Group: int64(group)})
	return id, tr
}

func (p *fileRawPeer) tree(id []byte, first int, leaves []byte) {
	t := &wire.FileTree{First: uint64(first), Leaves: leaves}
	copy(t.Transfer[:], id)
	b, err := wire.AppendFileTreeFrame(nil, t)
	if err != nil {
		p.t.Fatal(err)
	}
	p.write(b)
}

// abortReason waits for the receiver's FileAbort and returns its reason.
func (p *fileRawPeer) abortReason() string {
	p.t.Helper()
	a, aborted := p.ackOrAbort()
	if !aborted {
		p.t.Fatalf("got an ack %+v, want an abort", a)
	}
	return a.Reason
}

// A flipped byte in chunk k is rejected as chunk k the moment chunk k
// arrives (the sender has sent nothing after it), nothing of it reaches
// the disk, the checked chunks before it are kept, and a retry resumes at
// chunk k and completes.
func TestFileVerifiedRejectsCorruptChunk(t *testing.T) {
	const group, k = 16 << 10, 5
	dir := t.TempDir()
	b := fileReceiver(t, Config{AcceptFiles: true, DownloadDir: dir})
	p := dialFileRaw(t, b)
	data := randomBytes(t, 10*group+123)
	id, tr := p.verifiedOffer("flip.bin", data, group)
	if a := p.ack(); !a.Accept || a.Offset != 0 {
		t.Fatalf("ack %+v", a)
	}
	p.tree(id, 0, tr.leaves[:3*cvLen]) // in two pieces
	p.tree(id, 3, tr.leaves[3*cvLen:])
	for i := 0; i < k; i++ {
		p.chunk(id, int64(i*group), data[i*group:(i+1)*group])
	}
	bad := bytes.Clone(data[k*group : (k+1)*group])
	bad[777] ^= 0x40
	p.chunk(id, k*group, bad)
	reason := p.abortReason()
	if want := fmt.Sprintf("chunk %d (bytes %d-%d) rejected", k, k*group, (k+1)*group-1); !strings.Contains(reason, want) {
		t.Fatalf("abort %q, want %q", reason, want)
	}
	eventually(t, "receiver lists the failure", func() bool {
		tr, ok := incoming(b, "flip.bin")
		return ok && tr.State == TransferFailed && strings.Contains(tr.Err, fmt.Sprintf("chunk %d ", k))
	})
	ps := partials(t, dir)
	if len(ps) != 1 {
		t.Fatalf("partials %v", ps)
	}
	held, err := os.ReadFile(filepath.Join(dir, ps[0]))
	if err != nil || !bytes.Equal(held, data[:k*group]) {
		t.Fatalf("partial holds %d bytes (%v), want the %d checked ones", len(held), err, k*group)
	}

	// The retry resumes at chunk k without hashing the prefix again.
	id, tr = p.verifiedOffer("flip.bin", data, group)
	if a := p.ack(); !a.Accept || a.Offset != k*group {
		t.Fatalf("retry ack %+v, want offset %d", a, k*group)
	}
	p.tree(id, 0, tr.leaves)
	for off := k * group; off < len(data); off += group {
		p.chunk(id, int64(off), data[off:min(off+group, len(data))])
	}
	p.send(wire.KindFileEnd, "", &wire.FileEnd{Transfer: id, Size: int64(len(data)), Hash: tr.root[:]})
	a := p.ack()
	if !a.Final || !a.OK || !bytes.Equal(a.Hash, tr.root[:]) || a.SHA256 != nil {
		t.Fatalf("final ack %+v", a)
	}
	got, err := os.ReadFile(filepath.Join(dir, "flip.bin"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("file differs (%v)", err)
	}
	if fs := dirFiles(t, dir); len(fs) != 1 {
		t.Fatalf("dir holds %v", fs)
	}
}

// A tree whose leaves do not combine into the offered root is refused
// before any data: a forged leaf, a leaf of another file, or a tree that is
// complete but for another root. Malformed tree frames are protocol errors.
func TestFileVerifiedRefusesForgedTree(t *testing.T) {
	const group = 4 << 10
	dir := t.TempDir()
	b := fileReceiver(t, Config{AcceptFiles: true, DownloadDir: dir})
	p := dialFileRaw(t, b)
	data := randomBytes(t, 9*group)
	other := randomBytes(t, 9*group)
	otherTree, _ := hashTree(bytes.NewReader(other), int64(len(other)), group)

	forged := func(name string, mangle func(leaves []byte) []byte, wantReason string) {
		t.Helper()
		id, tr := p.verifiedOffer(name, data, group)
		if a := p.ack(); !a.Accept {
			t.Fatalf("%s: ack %+v", name, a)
		}
		p.tree(id, 0, mangle(bytes.Clone(tr.leaves)))
		if r := p.abortReason(); !strings.Contains(r, wantReason) {
			t.Fatalf("%s: abort %q, want %q", name, r, wantReason)
		}
		if fs := dirFiles(t, dir); len(fs) != 0 {
			t.Fatalf("%s: dir holds %v", name, fs)
		}
	}
	const refused = "hash tree refused"
	forged("leaf.bin", func(l []byte) []byte { l[3*cvLen+7] ^= 1; return l }, refused)
	// The tree of another file, whose chunks would all match it.
	forged("other.bin", func([]byte) []byte { return bytes.Clone(otherTree.leaves) }, refused)
	forged("swap.bin", func(l []byte) []byte {
		copy(l[:cvLen], l[cvLen:2*cvLen])
		return l
	}, refused)
	forged("short.bin", func(l []byte) []byte { return append(l, l[:cvLen]...) }, "protocol error: hash tree leaves")

	// Data before the tree, and a tree for a SHA-256 transfer.
	id, _ := p.verifiedOffer("early.bin", data, group)
	p.ack()
	p.chunk(id, 0, data[:group])
	if r := p.abortReason(); !strings.Contains(r, "data before the hash tree") {
		t.Fatalf("early data: %q", r)
	}
	id = p.offer("sha.bin", int64(len(data)))
	p.ack()
	p.tree(id, 0, make([]byte, cvLen))
	if r := p.abortReason(); !strings.Contains(r, "without a BLAKE3 root") {
		t.Fatalf("tree for sha256: %q", r)
	}
	if fs := dirFiles(t, dir); len(fs) != 0 {
		t.Fatalf("dir holds %v", fs)
	}
}

// Offers with bad hash fields are refused with a reason.
func TestFileOfferHashFields(t *testing.T) {
	b := fileReceiver(t, Config{AcceptFiles: true, DownloadDir: t.TempDir(), MaxFileSize: 1 << 40})
	p := dialFileRaw(t, b)
	for _, c := range []struct {
		o    wire.FileOffer
		want string
	}{
		{wire.FileOffer{Name: "a", Size: 10, Hash: "crc32"}, "unsupported hash: crc32"},
		{wire.FileOffer{Name: "b", Size: 10, Hash: HashBLAKE3}, "BLAKE3 group size"},
		{wire.FileOffer{Name: "c", Size: 10, Hash: HashBLAKE3, Group: 3000}, "BLAKE3 group size"},
		{wire.FileOffer{Name: "d", Size: 10, Hash: HashBLAKE3, Group: 512}, "BLAKE3 group size"},
		{wire.FileOffer{Name: "e", Size: 10, Hash: HashBLAKE3, Group: 1024, Root: make([]byte, 31)}, "BLAKE3 root"},
		{wire.FileOffer{Name: "f", Size: -1, Hash: HashBLAKE3, Group: 1024, Root: make([]byte, 32)}, "BLAKE3 root"},
		{wire.FileOffer{Name: "g", Size: 1 << 30, Hash: HashBLAKE3, Group: 1024, Root: make([]byte, 32)}, "hash tree too large"},
	} {
		o := c.o
		o.Transfer = randomBytes(t, 16)
		p.send(wire.KindFileOffer, fileTopic, &o)
		if a := p.ack(); a.Accept || !strings.Contains(a.Reason, c.want) {
			t.Fatalf("offer %+v: ack %+v, want %q", c.o, a, c.want)
		}
	}
}

// A sender with FileHash sha256 offers SHA-256 and the receiver verifies
// with it; a BLAKE3 sender beside it on the same receiver uses BLAKE3.
func TestFileHashNegotiation(t *testing.T) {
	dir := t.TempDir()
	var log handlerLog
	b := fileReceiver(t, Config{AcceptFiles: true, DownloadDir: dir, FileHandler: log.add})
	s256 := fileSender(t, Config{Name: "sha-sender", FileHash: HashSHA256}, b)
	sb3 := fileSender(t, Config{Name: "b3-sender"}, b)
	data := randomBytes(t, 300<<10)
	for _, c := range []struct {
		n    *Node
		algo string
	}{{s256, HashSHA256}, {sb3, HashBLAKE3}} {
		name := c.algo + ".bin"
		infos, err := push(t, c.n, name, data, nil)
		if err != nil {
			t.Fatal(err)
		}
		wantSHA, wantHash := hashes(c.algo, data)
		in, _ := incoming(b, name)
		for _, info := range []TransferInfo{infos[0], in} {
			if info.HashAlgo != c.algo || info.Hash != wantHash || info.SHA256 != wantSHA {
				t.Fatalf("%s: %+v", c.algo, info)
			}
		}
	}
	if n, err := Start(Config{FileHash: "md5"}); err == nil {
		n.Close(context.Background())
		t.Fatal("Config.FileHash md5 accepted")
	}
}

// Verified streaming over mutual TLS: the tree frames and the chunks go
// through the record layer like every data frame.
func TestFileVerifiedOverTLS(t *testing.T) {
	is := newIssuer(t)
	dir := t.TempDir()
	ida, idb := is.identity(t, "a"), is.identity(t, "b")
	b := startNode(t, "127.0.0.1", Config{Name: "b", Subscriptions: []string{fileTopic}, ServerTLS: idb.ServerConfig(),
		ClientTLS: idb.ClientConfig(), AcceptFiles: true, DownloadDir: dir})
	a := startNode(t, "127.0.0.1", Config{Name: "a", ServerTLS: ida.ServerConfig(), ClientTLS: ida.ClientConfig(), FileChunkSize: 64 << 10})
	linkFiles(t, a, b)
	data := randomBytes(t, 3<<20+17)
	infos, err := push(t, a, "tls.bin", data, nil)
	if err != nil || infos[0].Hash != "blake3:"+b3(data) {
		t.Fatalf("push over TLS: %+v, %v", infos, err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "tls.bin"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("file differs (%v)", err)
	}
}

// One send to two receivers, one of which holds the first half already
// (a partial with its leaves, as a crashed transfer leaves it): that one
// resumes at its offset, the other starts at 0, and both end whole.
func TestFileVerifiedMixedOffsets(t *testing.T) {
	const group = 64 << 10
	dirB, dirC := t.TempDir(), t.TempDir()
	b := fileReceiver(t, Config{AcceptFiles: true, DownloadDir: dirB})
	c := fileReceiver(t, Config{Name: "c", AcceptFiles: true, DownloadDir: dirC})
	a := fileSender(t, Config{FileChunkSize: group}, b, c)
	data := randomBytes(t, 20*group+99)
	tr, err := hashTree(bytes.NewReader(data), int64(len(data)), group)
	if err != nil {
		t.Fatal(err)
	}
	const held = 10 * group
	base := filepath.Join(dirB, partialPrefix+partialKey(a.ID(), "mixed.bin", int64(len(data))))
	sc := fmt.Sprintf(`{"sender":%q,"name":"mixed.bin","size":%d,"hash":"blake3","group":%d,"root":"%x"}`, a.ID(), len(data), group, tr.root)
	for p, content := range map[string][]byte{base: data[:held], base + leavesSuffix: tr.leaves[:held/group*cvLen], base + ".json": []byte(sc)} {
		if err := os.WriteFile(p, content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	infos, err := push(t, a, "mixed.bin", data, nil)
	if err != nil || len(infos) != 2 {
		t.Fatalf("push: %+v, %v", infos, err)
	}
	resumed := map[string]int64{}
	for _, in := range infos {
		resumed[in.Peer] = in.Resumed
	}
	if resumed["receiver"] != held || resumed["c"] != 0 {
		t.Fatalf("resumed at %v, want receiver %d and c 0", resumed, held)
	}
	for _, d := range []string{dirB, dirC} {
		got, err := os.ReadFile(filepath.Join(d, "mixed.bin"))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s: file differs (%v)", d, err)
		}
		if fs := dirFiles(t, d); len(fs) != 1 {
			t.Fatalf("%s holds %v", d, fs)
		}
	}
}
