package rotate

import (
	"errors"
	"path/filepath"
	"strings"
	"sync"

	"go.uber.org/zap"
)

// Routed files
//
// A writer whose file name is a template (or that has per_host) writes
// each entry to the file the entry's fields name: a routed file, opened
// on first use, kept open while used (at most max_open_files per writer,
// the least recently written closed beyond that), and rotated,
// compressed and pruned on its own. Entries the template cannot place go
// to the fallback file, and are counted.
//
// One path must have one owner, or two writers would rotate it under
// each other: a reload that changes a template has the old and the new
// writer live together, and their templates may name the same files. So
// a sink claims every file it opens; an entry for a file another sink
// has claimed is handed to that sink.

// claims maps each open file to its sink. Its lock is a leaf: nothing
// is locked while holding it, and it may be taken under a sink's lock.
var claims = struct {
	sync.Mutex
	m map[string]*sink
}{m: map[string]*sink{}}

// claim makes s the owner of path, unless another sink owns it: then it
// returns that sink.
func claim(path string, s *sink) *sink {
	claims.Lock()
	defer claims.Unlock()
	if o := claims.m[path]; o != nil && o != s {
		return o
	}
	claims.m[path] = s
	return nil
}

func unclaim(path string, s *sink) {
	claims.Lock()
	defer claims.Unlock()
	if claims.m[path] == s {
		delete(claims.m, path)
	}
}

// errElsewhere: the entry's file belongs to another sink, which would
// not take it either (it hands files on only once).
var errElsewhere = errors.New("rotate: file owned by another writer")

// DefaultMaxOpenFiles is max_open_files when not set.
const DefaultMaxOpenFiles = 256

// routedFile returns the open routed file at path, opening it (as its
// owner) if needed; mu is held and no batch is being written. It returns
// the sink that owns the path instead if that is another one.
func (s *sink) routedFile(path []byte) (*logFile, *sink, error) {
	if lf := s.routed[string(path)]; lf != nil {
		return lf, nil, nil
	}
	p := string(path)
	if owner := claim(p, s); owner != nil {
		return nil, owner, nil
	}
	if len(s.routed) >= s.opts.maxOpen {
		s.closeIdlest()
	}
	lf := &logFile{set: s.routedSet(p), path: p, meter: s.meter}
	if err := s.openLive(lf); err != nil {
		unclaim(p, s)
		return nil, nil, err
	}
	s.routed[p] = lf
	if s.opts.tmpl != nil && !s.opts.perHost {
		// Leftovers of an earlier run in this file's folder (a backup
		// not yet compressed, an archive half written) are dealt with
		// the first time the sink opens the file; per_host files are
		// covered by the main file's recovery.
		if !s.recovered[p] {
			if len(s.recovered) >= 4*DefaultMaxOpenFiles {
				clear(s.recovered)
			}
			s.recovered[p] = true
			s.arch.add(job{kind: jobRecover, comp: s.opts.comp, set: lf.set, ret: s.opts.ret})
		}
	}
	return lf, nil, nil
}

// routedSet returns how the backups of the routed file at path are named.
func (s *sink) routedSet(path string) fileSet {
	dir := filepath.Dir(path)
	name, ext := splitExt(filepath.Base(path))
	if s.opts.perHost && s.main != nil {
		// `<host>-<file>`: the backups keep per_host's names.
		m := s.main.set
		host := strings.TrimSuffix(filepath.Base(path), "-"+m.base+m.ext)
		return fileSet{dir: dir, name: host + "-" + m.base, base: m.base, host: host, ext: m.ext}
	}
	return fileSet{dir: dir, name: name, base: name, ext: ext}
}

// closeIdlest closes the least recently written routed file.
func (s *sink) closeIdlest() {
	var idlest *logFile
	for _, lf := range s.routed {
		if idlest == nil || lf.used < idlest.used {
			idlest = lf
		}
	}
	if idlest != nil {
		s.closeRouted(idlest)
	}
}

// closeRouted flushes and closes a routed file and gives up its claim.
func (s *sink) closeRouted(lf *logFile) {
	if err := lf.flush(); err != nil {
		s.logLater("flushing log file", err)
	}
	lf.close()
	delete(s.routed, lf.path)
	unclaim(lf.path, s)
}

// place returns the file that entry p goes to under o: nil for the main
// file. An entry the template cannot place is counted and goes to the
// fallback file.
func (s *sink) place(o *options, dst, p []byte) []byte {
	if o == nil || o.tmpl == nil {
		return nil
	}
	path, why := o.tmpl.resolve(dst, p)
	if why == "" {
		return path
	}
	s.meter.Unplaced.Add(1)
	if s.warned.CompareAndSwap(false, true) {
		s.log.Warn("an entry could not be placed by the file name template, so it went to the fallback file; the count is the writer's `unplaced` on the status page",
			zap.String("reason", why), zap.String("fallback", o.fallback))
	}
	if s.main != nil {
		return nil
	}
	return append(path[:len(dst)], o.fallback...)
}
