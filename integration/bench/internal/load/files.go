package load

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// FilesVerifier checks a load written to several files, one per app or
// facility: the sequence numbers 0 to Want-1 each exactly once over all
// of them (its Verifier), and each in the file Place names.
type FilesVerifier struct {
	*Verifier
	Paths []string
	// Place returns the index in Paths of the file sequence number seq
	// belongs in.
	Place          func(seq int) int
	Misplaced      int    // lines in another file than Place names
	FirstMisplaced string // the first of them, and where it was
	files          []*os.File
	tails          []tail
	lines          []func([]byte)
}

// NewFilesVerifier expects sequence numbers 0 to want-1, each in
// paths[place(seq)]. Close it when done.
func NewFilesVerifier(want int, paths []string, place func(seq int) int) *FilesVerifier {
	v := &FilesVerifier{Verifier: NewVerifier(want), Paths: paths, Place: place,
		files: make([]*os.File, len(paths)), tails: make([]tail, len(paths))}
	for i := range paths {
		v.lines = append(v.lines, func(line []byte) { v.line(i, line) })
	}
	return v
}

func (v *FilesVerifier) line(file int, line []byte) {
	v.Verifier.Line(line)
	if seq, ok := FindSeq(line); ok && seq < v.Want && v.Place(seq) != file {
		v.Misplaced++
		if v.FirstMisplaced == "" {
			v.FirstMisplaced = fmt.Sprintf("seq=%d in %s, not %s", seq, v.Paths[file], v.Paths[v.Place(seq)])
		}
	}
}

// read feeds v what was appended to each file since the last call; a
// file that does not exist yet is skipped.
func (v *FilesVerifier) read(buf []byte) error {
	for i, path := range v.Paths {
		if v.files[i] == nil {
			f, err := os.Open(path)
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				return err
			}
			v.files[i] = f
		}
		if err := v.tails[i].read(v.files[i], buf, v.lines[i]); err != nil {
			return fmt.Errorf("reading %s: %w", path, err)
		}
	}
	return nil
}

// Follow reads the files as a daemon appends to them until every line is
// there, no new line has come for stall, or ctx ends, as
// Verifier.Follow does for one file.
func (v *FilesVerifier) Follow(ctx context.Context, stall time.Duration) (time.Time, error) {
	buf := make([]byte, 1<<20)
	end, err := v.follow(ctx, v.where(), stall, func() error { return v.read(buf) })
	if err == nil {
		err = v.misplaced()
	}
	return end, err
}

// Settle reads whatever else arrives within d, as Verifier.Settle does.
func (v *FilesVerifier) Settle(d time.Duration) error {
	time.Sleep(d)
	if err := v.read(make([]byte, 1<<20)); err != nil {
		return err
	}
	for i := range v.tails {
		v.tails[i].end(v.lines[i])
	}
	if err := v.Verifier.Err(); err != nil {
		return err
	}
	return v.misplaced()
}

func (v *FilesVerifier) misplaced() error {
	if v.Misplaced == 0 {
		return nil
	}
	return fmt.Errorf("%d lines in the wrong file; first: %s", v.Misplaced, v.FirstMisplaced)
}

// where names the files in errors: their common folder.
func (v *FilesVerifier) where() string {
	if len(v.Paths) == 1 {
		return v.Paths[0]
	}
	dir := filepath.Dir(v.Paths[0])
	for _, p := range v.Paths[1:] {
		for !strings.HasPrefix(p, dir+string(filepath.Separator)) && dir != filepath.Dir(dir) {
			dir = filepath.Dir(dir)
		}
	}
	return fmt.Sprintf("the %d files under %s", len(v.Paths), dir)
}

// Close closes the files.
func (v *FilesVerifier) Close() {
	for _, f := range v.files {
		if f != nil {
			f.Close()
		}
	}
}
