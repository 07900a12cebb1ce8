package cli

import (
	"context"
	"errors"

	"github.com/chaski-dev/chaski/chaski"
)

func newHashCmd() (*command, runner) {
	c := newCommand("hash", "[--algo blake3|sha256|sha1|md5] FILE [FILE ...]",
		"Print the hash of each FILE as 'HEX  FILE', like b3sum and sha256sum.",
		`The default, blake3, is the hash that verifies transfers (the same digest
as b3sum). Exits 1 when a file cannot be read (the others are still
printed), 2 on a usage error.`)
	algo := c.fs.String("algo", chaski.HashBLAKE3, "the hash: blake3, sha256, sha1 or md5")
	c.placeholder("algo", "ALGO")
	return c, func(ctx context.Context, e *env, pos []string) error {
		if len(pos) == 0 {
			return usageErrorf("hash needs at least one FILE (see 'chaski help hash')")
		}
		return runHash(ctx, e, *algo, pos)
	}
}

func runHash(ctx context.Context, e *env, algo string, files []string) error {
	out := newPrinter(e.stdout)
	errOut := newPrinter(e.stderr)
	failed := 0
	for _, f := range files {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		sum, err := chaski.FileHash(f, algo)
		if errors.Is(err, chaski.ErrUnknownHash) {
			return usageErrorf("--algo must be blake3, sha256, sha1 or md5, not %q", algo)
		}
		if err != nil {
			failed++
			errOut.linef("chaski: %s: %s", f, describeFileErr(err))
			continue
		}
		out.linef("%s  %s", sum, f)
	}
	out.flush()
	errOut.flush()
	if failed > 0 {
		return &exitError{code: 1} // each failure is printed above
	}
	return nil
}
