package chaski

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/chaski-dev/chaski/chaski/wire"
)

// FuzzFileTreeAssembly feeds a receiver's tree state any sequence of
// FileTree bodies for an offer of any size and group: it never panics,
// never holds more leaves than the offer implies, and accepts a tree only
// when its leaves combine into the offered root.
//
// Input: size u32, group exponent u8 (1 KiB << e), whether the root is the
// true one u8, then bodies each preceded by a u16 length.
func FuzzFileTreeAssembly(f *testing.F) {
	seed := func(size int, e uint8, trueRoot bool, mangle func([]byte)) {
		data := bytes.Repeat([]byte("chaski"), size/6+1)[:size]
		tr, _ := hashTree(bytes.NewReader(data), int64(size), minGroup<<e)
		in := binary.BigEndian.AppendUint32(nil, uint32(size))
		in = append(in, e, b2u(trueRoot))
		leaves := bytes.Clone(tr.leaves)
		if mangle != nil {
			mangle(leaves)
		}
		for i := 0; i < len(leaves); i += 3 * cvLen {
			fr, _ := wire.AppendFileTreeFrame(nil, &wire.FileTree{First: uint64(i / cvLen), Leaves: leaves[i:min(len(leaves), i+3*cvLen)]})
			body := fr[wire.HeaderLen:]
			in = binary.BigEndian.AppendUint16(in, uint16(len(body)))
			in = append(in, body...)
		}
		f.Add(in)
	}
	seed(10<<10, 0, true, nil)
	seed(10<<10+5, 1, true, nil)
	seed(10<<10, 0, true, func(l []byte) { l[40] ^= 1 })
	seed(7<<10, 0, false, nil)
	seed(100, 0, true, nil)
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < 6 {
			return
		}
		size := int64(binary.BigEndian.Uint32(in))
		group := int64(minGroup) << (in[4] % 8)
		if size > 1<<20 {
			return // the real data is built only for small sizes
		}
		data := bytes.Repeat([]byte("chaski"), int(size/6+1))[:size]
		tr, _ := hashTree(bytes.NewReader(data), size, int(group))
		root := tr.root
		if in[5]&1 == 0 {
			root[0] ^= 1
		}
		o := &wire.FileOffer{Size: size, Hash: HashBLAKE3, Group: group, Root: root[:]}
		x := &inXfer{}
		if x.negotiate(o) != "" {
			return
		}
		in = in[6:]
		for len(in) >= 2 {
			k := int(binary.BigEndian.Uint16(in))
			in = in[2:]
			if k > len(in) {
				return
			}
			body := in[:k]
			in = in[k:]
			ft, err := wire.ParseFileTree(body)
			if err != nil || x.placeTree(&ft) != "" {
				return
			}
			why := x.addTree(ft.Leaves)
			if int64(len(x.tree)) > x.treeWant*cvLen {
				t.Fatalf("%d leaf bytes held for %d leaves", len(x.tree), x.treeWant)
			}
			if why != "" {
				return
			}
			if x.checker != nil && (treeRoot(x.tree) != root || root != tr.root) {
				t.Fatal("a tree that does not combine into the root was accepted")
			}
		}
	})
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}
