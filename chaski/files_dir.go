package chaski

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/chaski-dev/chaski/chaski/wire"
)

// DirOptions tunes SendDir.
type DirOptions struct {
	Meta map[string]string // sent with every file
	// Progress, if set, is called at most every 100 ms, and once at the end,
	// with the progress of the whole directory (from the sending goroutine:
	// it must not block).
	Progress func(DirProgress)
}

// DirProgress is the progress of a whole directory send.
type DirProgress struct {
	Files     int    // regular files to send
	FilesDone int    // files that ended (sent or failed)
	Failed    int    // of which failed
	Bytes     int64  // their total size
	Done      int64  // bytes read and queued so far (resumed prefixes included)
	Current   string // the file being sent (relative path), "" at the end
}

// DirFile is the verdict on one file of a directory send.
type DirFile struct {
	Path      string         // relative, slash-separated, starting with the directory's name
	Size      int64          // bytes
	Transfers []TransferInfo // one per receiver (empty when the file was skipped)
	Err       error          // nil when every receiver confirmed the file

	local string // where the bytes are read from
}

// Local is where the file's bytes were read from on this machine.
func (f *DirFile) Local() string { return f.local }

// SendDir sends every regular file under dir, one after the other, to
// every connected subscriber of topic that accepts files, each under its
// path relative to dir's parent ("photos/2024/a.jpg"), so that the
// receivers rebuild the tree in their download directory. It returns when
// every file has ended, with a verdict per file; the error is nil only if
// every file reached every receiver. Each file is an ordinary transfer:
// verified on its own and resumed on its own when the send is repeated.
//
// Paths are checked as strictly as file names: a name that is not a valid
// file name, a path deeper than 32 or longer than 1024 bytes, and a
// symbolic link whose target lies outside dir (or is not a regular file)
// are skipped with an error in their DirFile; links inside the tree are
// sent as the files they point to. Empty directories are not sent.
func (n *Node) SendDir(ctx context.Context, topic, dir string, opts DirOptions) ([]DirFile, error) {
	if n.closing.Load() {
		return nil, ErrClosed
	}
	files, err := listTree(dir)
	if err != nil {
		return nil, fmt.Errorf("chaski: send directory: %w", err)
	}
	var prog DirProgress
	for _, f := range files {
		if f.Err == nil {
			prog.Files++
			prog.Bytes += f.Size
		}
	}
	var done atomic.Int64
	var last time.Time
	report := func(force bool) {
		if opts.Progress == nil || (!force && time.Since(last) < progressEvery) {
			return
		}
		last = time.Now()
		p := prog
		p.Done = done.Load()
		opts.Progress(p)
	}
	report(true)
	failed := 0
	var base int64
	for i := range files {
		f := &files[i]
		if f.Err != nil {
			failed++
			continue
		}
		prog.Current = f.Path
		report(true)
		f.Transfers, f.Err = n.pushPath(ctx, topic, f, opts.Meta, func(k int64) {
			done.Store(base + k)
			report(false)
		})
		base += f.Size
		done.Store(base)
		prog.FilesDone++
		if f.Err != nil {
			prog.Failed++
			failed++
		}
		if ctx.Err() != nil {
			break
		}
	}
	prog.Current = ""
	report(true)
	if failed > 0 {
		var first error
		for _, f := range files {
			if f.Err != nil {
				first = f.Err
				break
			}
		}
		return files, fmt.Errorf("chaski: send directory %s: %d of %d files failed: %w", filepath.Base(dir), failed, len(files), first)
	}
	return files, ctx.Err()
}

// sendDirAsync is SendFile for a directory.
func (n *Node) sendDirAsync(topic, dir string, meta map[string]string) (string, error) {
	if _, err := listTree(dir); err != nil {
		return "", fmt.Errorf("chaski: send directory: %w", err)
	}
	if !wire.ValidName(topic, wire.MaxTopicLen) {
		return "", fmt.Errorf("%w: %q", ErrInvalidTopic, topic)
	}
	id := newXferID().String()
	ctx, cancel := context.WithCancelCause(n.ctx)
	f := &n.files
	f.mu.Lock()
	f.dirs[id] = cancel
	f.mu.Unlock()
	n.goSafe(func() {
		defer func() {
			f.mu.Lock()
			delete(f.dirs, id)
			f.mu.Unlock()
			cancel(nil)
		}()
		if _, err := n.SendDir(ctx, topic, dir, DirOptions{Meta: meta}); err != nil {
			n.logf(slog.LevelInfo, "directory not sent whole", "dir", filepath.Base(dir), "topic", topic, "err", err.Error())
		}
	})
	return id, nil
}

// pushPath sends one file of a directory, reporting the bytes read.
func (n *Node) pushPath(ctx context.Context, topic string, f *DirFile, meta map[string]string, read func(int64)) ([]TransferInfo, error) {
	src, err := os.Open(f.local)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() || st.Size() != f.Size {
		return nil, fmt.Errorf("chaski: %s changed while the directory was sent", f.Path)
	}
	return n.PushFile(ctx, topic, &countingFile{File: src, read: read}, f.Path, f.Size, meta)
}

// countingFile reports the bytes read through Read (the data sent; ReadAt
// is the hashing pass before the offer).
type countingFile struct {
	*os.File
	n    int64
	read func(int64)
}

// osFile lets the tree cache find the file behind the counter.
func (c *countingFile) osFile() *os.File { return c.File }

func (c *countingFile) Read(p []byte) (int, error) {
	k, err := c.File.Read(p)
	c.n += int64(k)
	c.read(c.n)
	return k, err
}

func (c *countingFile) Seek(off int64, whence int) (int64, error) {
	pos, err := c.File.Seek(off, whence)
	if err == nil {
		c.n = pos
		c.read(pos)
	}
	return pos, err
}

var _ io.ReaderAt = (*countingFile)(nil)

// listTree lists the files of a directory send, in walk order, with the
// skipped entries carrying their reason.
func listTree(dir string) ([]DirFile, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, err
	}
	top := filepath.Base(abs)
	var out []DirFile
	// Walk the resolved directory: a link given as the directory itself is
	// followed once, links inside it are checked below.
	err = filepath.WalkDir(real, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == real {
				return err
			}
			out = append(out, DirFile{Path: relName(top, real, p), Err: err})
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		rel := relName(top, real, p)
		if d.IsDir() {
			if p != real && !validRelPath(rel) {
				out = append(out, DirFile{Path: rel, Err: fmt.Errorf("chaski: %q: not a valid path to send", rel)})
				return fs.SkipDir
			}
			return nil
		}
		f := DirFile{Path: rel, local: p}
		switch {
		case !validRelPath(rel):
			f.Err = fmt.Errorf("chaski: %q: not a valid path to send", rel)
		case d.Type()&fs.ModeSymlink != 0:
			target, err := filepath.EvalSymlinks(p)
			var tst os.FileInfo
			if err == nil {
				tst, err = os.Stat(target)
			}
			switch {
			case err != nil:
				f.Err = fmt.Errorf("chaski: %s: %w", rel, err)
			case !within(real, target):
				f.Err = fmt.Errorf("chaski: %s: a link out of the tree, not sent", rel)
			case !tst.Mode().IsRegular():
				f.Err = fmt.Errorf("chaski: %s: a link to something other than a file, not sent", rel)
			default:
				f.local, f.Size = target, tst.Size()
			}
		case !d.Type().IsRegular():
			f.Err = fmt.Errorf("chaski: %s: not a regular file, not sent", rel)
		default:
			info, err := d.Info()
			if err != nil {
				f.Err = err
			} else {
				f.Size = info.Size()
			}
		}
		out = append(out, f)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errors.New("the directory holds no file")
	}
	return out, nil
}

// relName is p's path under the directory's own name, slash-separated.
func relName(top, abs, p string) string {
	r, err := filepath.Rel(abs, p)
	if err != nil || r == "." {
		return top
	}
	return top + "/" + filepath.ToSlash(r)
}

// within reports whether path lies inside dir (both cleaned, absolute).
func within(dir, path string) bool {
	return strings.HasPrefix(path, dir+string(filepath.Separator))
}
