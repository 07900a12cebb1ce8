package chaski

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Partial-file budget (issue 20, item 5). The bytes a receiver holds in
// partial files are bounded per sender (its resume key) and in total, so
// that senders cannot fill the download folder with files they never
// finish. What counts:
//
//   - a partial kept on disk from an earlier transfer (or an earlier run)
//     counts the bytes it holds on disk (data and BLAKE3 leaves);
//   - a transfer in progress counts its declared size (what it may still
//     grow to), an unknown size counting unknownSizeReserve (at most the
//     maximum file size); its partial on disk is not counted twice.
//
// A new file is refused when it would take its sender past
// Config.MaxPartialBytesPerSender or everybody past Config.MaxPartialBytes.
// Resuming a partial of the same sender is never refused: that file is
// already held. Expired partials (cleanStalePartials) are removed before
// the count, so expiry frees the budget.

// budgetCharge is what a transfer in progress counts against the budget.
func (x *inXfer) budgetCharge() int64 {
	if x.size >= 0 {
		return x.size
	}
	return min(unknownSizeReserve, x.n.cfg.MaxFileSize)
}

// chargeBudget checks (unless resumed) and takes the budget of x's partial
// file in download directory dir; it returns a refusal reason or "". The
// charge is released when the transfer is forgotten.
func (x *inXfer) chargeBudget(dir string, resumed bool) string {
	f := &x.n.files
	f.budgetMu.Lock() // one count at a time, so two offers cannot both fit
	defer f.budgetMu.Unlock()
	charge := x.budgetCharge()
	if !resumed {
		f.mu.Lock()
		inUse := make(map[string]bool, len(f.in))
		var total, mine int64
		for _, y := range f.in {
			if y.budgeted {
				inUse[y.pkey] = true
				total += y.charged
				if y.e.resumeKey == x.e.resumeKey {
					mine += y.charged
				}
			}
		}
		f.mu.Unlock()
		diskTotal, diskBySender := heldPartials(dir, inUse)
		total += diskTotal
		mine += diskBySender[x.e.resumeKey]
		cfg := &x.n.cfg
		switch {
		case mine+charge > cfg.MaxPartialBytesPerSender:
			return fmt.Sprintf("%s: this sender's partial files would hold %d bytes, limit %d", reasonPartialBudget, mine+charge, cfg.MaxPartialBytesPerSender)
		case total+charge > cfg.MaxPartialBytes:
			return fmt.Sprintf("%s: partial files would hold %d bytes, limit %d", reasonPartialBudget, total+charge, cfg.MaxPartialBytes)
		}
	}
	f.mu.Lock()
	x.charged, x.budgeted = charge, true
	f.mu.Unlock()
	return ""
}

// heldPartials sums the bytes of the partial files in dir, in total and by
// sender (from their sidecars), leaving out those whose keys are in use by
// a charged transfer. A partial without a readable sidecar counts in the
// total only.
func heldPartials(dir string, inUse map[string]bool) (int64, map[string]int64) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, nil
	}
	bytesOf := make(map[string]int64)
	var sidecars []string
	for _, de := range entries {
		name := de.Name()
		if !strings.HasPrefix(name, partialPrefix) || !de.Type().IsRegular() {
			continue
		}
		key := strings.TrimPrefix(name, partialPrefix)
		if k, ok := strings.CutSuffix(key, ".json"); ok {
			sidecars = append(sidecars, k)
			continue
		}
		key = strings.TrimSuffix(key, leavesSuffix)
		if inUse[key] {
			continue
		}
		if fi, err := de.Info(); err == nil {
			bytesOf[key] += fi.Size()
		}
	}
	var total int64
	for _, b := range bytesOf {
		total += b
	}
	bySender := make(map[string]int64)
	for _, key := range sidecars {
		b, ok := bytesOf[key]
		if !ok {
			continue
		}
		if sender, ok := sidecarSender(filepath.Join(dir, partialPrefix+key+".json")); ok {
			bySender[sender] += b
		}
	}
	return total, bySender
}

func sidecarSender(path string) (string, bool) {
	f, err := os.OpenFile(path, os.O_RDONLY|oNoFollow, 0)
	if err != nil {
		return "", false
	}
	raw, err := io.ReadAll(io.LimitReader(f, 64<<10))
	f.Close()
	var sc sidecar
	if err != nil || json.Unmarshal(raw, &sc) != nil {
		return "", false
	}
	return sc.Sender, true
}
