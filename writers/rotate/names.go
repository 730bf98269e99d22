package rotate

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// DefaultNameFormat names backups `app-2026-11-21T00-00-00.log.gz`
// for `app.log`, and `app-2026-11-21T00-00-00_001.log.gz` for a second
// backup made within the same second.
const DefaultNameFormat = "{name}-{time}{n}{ext}"

// timeLayout is the {time} token: sortable, and free of ':' so that the
// names are valid on every file system.
const timeLayout = "2006-01-02T15-04-05"

// nameFormat is a parsed name_format. Tokens:
//
//	{name}  the live file's name without its extension: `app`, or
//	        `example.com-app` for a per_host file
//	{base}  the configured file's name without its extension (`app`)
//	{host}  the sanitised host of a per_host file, empty for the main file
//	{ext}   the configured file's extension, with its dot (`.log`)
//	{time}  the time of rotation, 2006-01-02T15-04-05
//	{n}     empty, or `_001`, `_002`... when the name is already taken
//
// The compression suffix (`.gz`, `.zst`) is appended after the pattern.
//
// The pattern `numbered` names backups as logrotate and Python's
// RotatingFileHandler do instead (`app.log.1` newest); see numbered.go.
type nameFormat struct {
	pattern  string
	parts    []namePart
	numbered bool
}

type namePart struct {
	token string // one of the tokens, or "" for lit
	lit   string
}

var nameTokens = map[string]bool{"name": true, "base": true, "host": true, "ext": true, "time": true, "n": true}

// parseNameFormat parses and checks a name_format. It needs {time} and
// {n} (so that names sort and never collide) and {name} or {base} (so
// that they belong to this file); per_host needs the host in the name.
func parseNameFormat(pattern string, perHost bool) (*nameFormat, error) {
	if pattern == "" {
		pattern = DefaultNameFormat
	}
	if pattern == NumberedFormat {
		// The live file's name, host included, is in every backup's.
		return &nameFormat{pattern: pattern, numbered: true}, nil
	}
	if strings.ContainsAny(pattern, `/\`) || pattern == "." || pattern == ".." {
		return nil, fmt.Errorf("name_format %q: backups stay next to the log file, so it cannot contain a path separator", pattern)
	}
	f := &nameFormat{pattern: pattern}
	seen := map[string]bool{}
	rest := pattern
	for rest != "" {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			f.parts = append(f.parts, namePart{lit: rest})
			break
		}
		if open > 0 {
			f.parts = append(f.parts, namePart{lit: rest[:open]})
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return nil, fmt.Errorf("name_format %q: unclosed '{'", pattern)
		}
		tok := rest[open+1 : open+end]
		if tok == "http.request.host" {
			// In a site block, the Caddyfile rewrites the shorthand {host}
			// to this before the writer sees it.
			tok = "host"
		}
		if !nameTokens[tok] {
			return nil, fmt.Errorf("name_format %q: unknown token {%s}; known: {name} {base} {host} {ext} {time} {n}", pattern, tok)
		}
		seen[tok] = true
		f.parts = append(f.parts, namePart{token: tok})
		rest = rest[open+end+1:]
	}
	switch {
	case !seen["time"] || !seen["n"]:
		return nil, fmt.Errorf("name_format %q: needs {time} and {n}, so that backups sort by time and never overwrite each other (or name_format numbered: app.log.1, app.log.2...)", pattern)
	case !seen["name"] && !seen["base"]:
		return nil, fmt.Errorf("name_format %q: needs {name} or {base}, so that backups can be told from other files", pattern)
	case perHost && !seen["name"] && !seen["host"]:
		return nil, fmt.Errorf("name_format %q: with per_host, needs {name} or {host}, or the backups of different hosts would mix", pattern)
	}
	return f, nil
}

// fileSet describes one live file and how its backups are named: the
// main file, or the file of one host.
type fileSet struct {
	dir  string
	name string // live file's name without extension (host prefix included)
	base string // configured name without extension
	host string // sanitised host, "" for the main file
	ext  string
}

// splitExt splits a file name into base and extension: `app.log` gives
// `app` and `.log`; a name without a dot, or only a leading one, has no
// extension.
func splitExt(file string) (base, ext string) {
	ext = filepath.Ext(file)
	if ext == file {
		ext = ""
	}
	return strings.TrimSuffix(file, ext), ext
}

// liveName returns the file name of fs's live file.
func (fs fileSet) liveName() string { return fs.name + fs.ext }

// backupName expands the pattern for one backup (without compression suffix).
func (f *nameFormat) backupName(fs fileSet, at time.Time, n int) string {
	var b strings.Builder
	for _, p := range f.parts {
		switch p.token {
		case "":
			b.WriteString(p.lit)
		case "name":
			b.WriteString(fs.name)
		case "base":
			b.WriteString(fs.base)
		case "host":
			b.WriteString(fs.host)
		case "ext":
			b.WriteString(fs.ext)
		case "time":
			b.WriteString(at.Format(timeLayout))
		case "n":
			if n > 0 {
				fmt.Fprintf(&b, "_%03d", n)
			}
		}
	}
	return b.String()
}

// tmpSuffix marks an archive being written.
const tmpSuffix = ".tmp"

// freeBackupPath returns the path for a new backup of fs rotated at at:
// the first counter value for which neither the plain name nor any
// archive or archive in progress exists, so a backup never overwrites
// another one (two size rotations in one second, a wall-clock time
// repeated by a DST change, a restart). With numbered names, it is the
// name the backup waits under until the archiver numbers it.
func (f *nameFormat) freeBackupPath(fs fileSet, at time.Time) (string, error) {
	if f.numbered {
		return nextPendingPath(fs)
	}
	for n := 0; n < 100000; n++ {
		p := filepath.Join(fs.dir, f.backupName(fs, at, n))
		taken, err := anyExists(p, p+".gz", p+".gz"+tmpSuffix, p+".zst", p+".zst"+tmpSuffix)
		if err != nil {
			return "", err
		}
		if !taken {
			return p, nil
		}
	}
	return "", fmt.Errorf("no free backup name for %s at %s", fs.liveName(), at.Format(timeLayout))
}

// anyExists reports whether one of paths exists, or why it cannot tell.
func anyExists(paths ...string) (bool, error) {
	for _, p := range paths {
		_, err := os.Lstat(p)
		if err == nil {
			return true, nil
		}
		if !os.IsNotExist(err) {
			return false, err
		}
	}
	return false, nil
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil || !os.IsNotExist(err)
}

// matcher returns a regexp that matches exactly the names of fs's
// backups, archives and archives in progress, capturing the time, the
// counter, the compression suffix and the tmp suffix. With anyHost, it
// matches the backups of the main file and of every host instead.
func (f *nameFormat) matcher(fs fileSet, anyHost bool) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for _, p := range f.parts {
		switch p.token {
		case "":
			b.WriteString(regexp.QuoteMeta(p.lit))
		case "name":
			if anyHost {
				b.WriteString("(?:" + hostChars + "+-)?" + regexp.QuoteMeta(fs.base))
			} else {
				b.WriteString(regexp.QuoteMeta(fs.name))
			}
		case "base":
			b.WriteString(regexp.QuoteMeta(fs.base))
		case "host":
			if anyHost {
				b.WriteString(hostChars + "*")
			} else {
				b.WriteString(regexp.QuoteMeta(fs.host))
			}
		case "ext":
			b.WriteString(regexp.QuoteMeta(fs.ext))
		case "time":
			b.WriteString(`(?P<time>\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2})`)
		case "n":
			b.WriteString(`(?P<n>_\d{3,})?`)
		}
	}
	b.WriteString(`(?:(?P<comp>\.gz|\.zst)(?P<tmp>\.tmp)?)?$`)
	return regexp.MustCompile(b.String())
}

// hostChars is the character class of sanitised host names.
const hostChars = `[a-z0-9._-]`

// backup is one backup found on disk: its plain name and archives.
type backup struct {
	stem  string // path without compression or tmp suffix
	at    time.Time
	n     int
	files []string // every existing file of this backup (plain, archives, tmp)
	plain bool     // the uncompressed file exists
	done  []string // complete archives
	tmp   []string // archives in progress
}

// listBackups returns the backups in dir whose names re matches, oldest
// first (by time, then counter), reading times in loc.
func listBackups(dir string, re *regexp.Regexp, loc *time.Location) ([]*backup, error) {
	iTime, iN, iComp, iTmp := re.SubexpIndex("time"), re.SubexpIndex("n"), re.SubexpIndex("comp"), re.SubexpIndex("tmp")
	byStem := map[string]*backup{}
	err := eachMatch(dir, re, func(name string, m []string) {
		at, err := time.ParseInLocation(timeLayout, m[iTime], loc)
		if err != nil {
			return // 2026-13-45: not one of ours
		}
		n := 0
		if m[iN] != "" {
			n, _ = strconv.Atoi(m[iN][1:])
		}
		path := filepath.Join(dir, name)
		stem := strings.TrimSuffix(strings.TrimSuffix(path, m[iTmp]), m[iComp])
		b := byStem[stem]
		if b == nil {
			b = &backup{stem: stem, at: at, n: n}
			byStem[stem] = b
		}
		b.files = append(b.files, path)
		switch {
		case m[iTmp] != "":
			b.tmp = append(b.tmp, path)
		case m[iComp] != "":
			b.done = append(b.done, path)
		default:
			b.plain = true
		}
	})
	if err != nil {
		return nil, err
	}
	out := make([]*backup, 0, len(byStem))
	for _, b := range byStem {
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].at.Equal(out[j].at) {
			return out[i].at.Before(out[j].at)
		}
		if out[i].n != out[j].n {
			return out[i].n < out[j].n
		}
		return out[i].stem < out[j].stem
	})
	return out, nil
}

// eachMatch calls f with the name and submatches of every regular file
// in dir whose name re matches.
func eachMatch(dir string, re *regexp.Regexp, f func(name string, m []string)) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		if m := re.FindStringSubmatch(e.Name()); m != nil {
			f(e.Name(), m)
		}
	}
	return nil
}
