package rotate

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Numbered backups
//
// With `name_format numbered`, backups of app.log are named as logrotate
// and Python's RotatingFileHandler name them: app.log.1 is the newest,
// then app.log.2, ..., each compressed in its turn (app.log.2.gz). Every
// rotation shifts them all by one.
//
// The write path cannot do the shifting: it would race the archiver,
// which may be compressing app.log.1 into app.log.1.gz at that moment
// and would then remove the plain file, by then a different backup. So a
// rotation only renames the live file to a pending name,
// app.log.pending-<seq>, and queues a job; the archiver's goroutine,
// which alone compresses and prunes, shifts the numbered backups and
// renames the pending ones to app.log.1, then compresses. Nothing else
// touches those names (and lockBackups keeps two archivers from working on
// one file at once), so no rename ever races a compression.
//
// Sequence numbers of pending backups grow with each rotation while any
// is waiting (nextPendingPath takes one above the highest on disk), so
// that the order of rotations survives a crash that leaves several.
//
// Every job reconciles the file's backups with what is on disk rather
// than assuming the state the last job left, so that a crash at any step
// is repaired by the next job or start: leftover `.tmp` archives are
// removed, a plain backup beside its complete archive is removed, gaps
// in the numbers are closed (the lowest numbers first), and pending
// backups are shifted in, oldest first. Shifting renames the oldest
// backup first, and never onto an existing name, so a crash in the
// middle leaves a gap rather than a lost backup.

// NumberedFormat is the name_format that numbers backups.
const NumberedFormat = "numbered"

// pendingInfix is between a live file's name and the sequence number of
// a backup waiting to be numbered: app.log.pending-1.
const pendingInfix = ".pending-"

// numberedMatcher matches the numbered and pending backups of set's live
// file (or, with anyHost, of the main file and every per_host file),
// capturing the live file's name, and the number and suffix of a
// numbered backup or the sequence of a pending one. Numbers have no
// leading zeros, so that app.log.01 is not taken for app.log.1.
func numberedMatcher(set fileSet, anyHost bool) *regexp.Regexp {
	if anyHost {
		return numberedRE("(?:" + hostChars + "+-)?" + regexp.QuoteMeta(set.base+set.ext))
	}
	return numberedRE(regexp.QuoteMeta(set.liveName()))
}

// numberedRE is numberedMatcher for live file names that live matches.
func numberedRE(live string) *regexp.Regexp {
	return regexp.MustCompile(`^(?P<live>` + live + `)\.(?:(?P<n>[1-9][0-9]{0,8})(?P<suffix>(?:\.gz|\.zst)(?:\.tmp)?)?|pending-(?P<seq>[0-9]{1,18}))$`)
}

// nextPendingPath returns the name for a backup of set waiting to be
// numbered: one sequence number above any pending backup of set.
func nextPendingPath(set fileSet) (string, error) {
	entries, err := os.ReadDir(set.dir)
	if err != nil {
		return "", err
	}
	prefix := set.liveName() + pendingInfix
	var last uint64
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok {
			continue
		}
		if seq, err := strconv.ParseUint(rest, 10, 63); err == nil && seq > last {
			last = seq
		}
	}
	return filepath.Join(set.dir, prefix+strconv.FormatUint(last+1, 10)), nil
}

// numberedSet is what is on disk of one live file's numbered backups.
type numberedSet struct {
	dir, live string
	backups   map[int][]string // suffixes present by number: "", ".gz", ".zst.tmp"...
	pending   []pendingFile    // oldest first
}

type pendingFile struct {
	seq  uint64
	path string
}

func (ns *numberedSet) path(n int, suffix string) string {
	return filepath.Join(ns.dir, ns.live+"."+strconv.Itoa(n)+suffix)
}

// numbers returns the backups' numbers, lowest (newest) first.
func (ns *numberedSet) numbers() []int {
	out := make([]int, 0, len(ns.backups))
	for n := range ns.backups {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// listNumbered returns the numbered sets in dir whose names re (from
// numberedMatcher) matches, by live file name.
func listNumbered(dir string, re *regexp.Regexp) (map[string]*numberedSet, error) {
	iLive, iN, iSuffix, iSeq := re.SubexpIndex("live"), re.SubexpIndex("n"), re.SubexpIndex("suffix"), re.SubexpIndex("seq")
	sets := map[string]*numberedSet{}
	err := eachMatch(dir, re, func(name string, m []string) {
		ns := sets[m[iLive]]
		if ns == nil {
			ns = &numberedSet{dir: dir, live: m[iLive], backups: map[int][]string{}}
			sets[m[iLive]] = ns
		}
		if m[iSeq] != "" {
			seq, _ := strconv.ParseUint(m[iSeq], 10, 63)
			ns.pending = append(ns.pending, pendingFile{seq: seq, path: filepath.Join(dir, name)})
			return
		}
		n, _ := strconv.Atoi(m[iN])
		ns.backups[n] = append(ns.backups[n], m[iSuffix])
	})
	if err != nil {
		return nil, err
	}
	for _, ns := range sets {
		slices.SortFunc(ns.pending, func(a, b pendingFile) int {
			switch {
			case a.seq < b.seq:
				return -1
			case a.seq > b.seq:
				return 1
			}
			return strings.Compare(a.path, b.path)
		})
	}
	return sets, nil
}

// numbered runs a job of a numbered file set: it reconciles the backups
// of the set (with anyHost, of every host's set too) with what is on
// disk, which it reads with the set locked.
func (a *archiver) numbered(j job) {
	lives := []string{j.set.liveName()}
	if j.anyHost {
		sets, err := listNumbered(j.set.dir, numberedMatcher(j.set, true))
		if err != nil {
			a.logf("looking for backups", err)
			return
		}
		lives = slices.Sorted(maps.Keys(sets))
	}
	for _, live := range lives {
		unlock := lockBackups(filepath.Join(j.set.dir, live))
		sets, err := listNumbered(j.set.dir, numberedRE(regexp.QuoteMeta(live)))
		if ns := sets[live]; ns != nil {
			err = a.reconcile(ns, j.comp, j.ret)
		}
		unlock()
		if err != nil {
			a.logf("numbering backups", err)
		}
	}
}

// reconcile tidies what a crash left, numbers the pending backups,
// prunes, and compresses the plain backups. It stops at the first rename
// or removal that fails, leaving the rest to the next job, which starts
// again from what is on disk.
func (a *archiver) reconcile(ns *numberedSet, comp compression, ret retention) error {
	ns.tidy(a.logf)
	if err := ns.compact(); err != nil {
		return err
	}
	for _, p := range ns.pending {
		if err := ns.shiftIn(p.path, ret.keep); err != nil {
			return err
		}
	}
	ns.pending = nil
	// The renames must be on disk before the archives made from them.
	syncDir(ns.dir)
	if err := ns.prune(ret, a.clock.Now()); err != nil {
		return err
	}
	if err := ns.compact(); err != nil {
		return err
	}
	if comp.algo == "none" || comp.algo == "" {
		return nil
	}
	for _, n := range ns.numbers() {
		if slices.Equal(ns.backups[n], []string{""}) {
			if err := compressFile(ns.path(n, ""), comp); err != nil {
				a.logf("compressing backup", err)
			}
		}
	}
	return nil
}

// tidy removes archives in progress (only this goroutine writes them,
// so any present was cut short by a crash) and plain backups whose
// archive is complete (compressFile was about to remove them).
func (ns *numberedSet) tidy(logf func(string, error)) {
	for n, suffixes := range ns.backups {
		var kept []string
		archived := slices.ContainsFunc(suffixes, func(s string) bool { return s != "" && !strings.HasSuffix(s, tmpSuffix) })
		for _, s := range suffixes {
			if strings.HasSuffix(s, tmpSuffix) || (s == "" && archived) {
				if err := os.Remove(ns.path(n, s)); err != nil && !errors.Is(err, fs.ErrNotExist) {
					logf("removing unfinished archive", err)
					kept = append(kept, s)
				}
				continue
			}
			kept = append(kept, s)
		}
		if len(kept) == 0 {
			delete(ns.backups, n)
		} else {
			ns.backups[n] = kept
		}
	}
}

// compact closes gaps in the numbers (left by a crash in the middle of
// a shift, or by backups removed for their age), keeping the order:
// the lowest numbers are renamed first, each onto a free lower one.
func (ns *numberedSet) compact() error {
	for i, n := range ns.numbers() {
		if want := i + 1; n != want {
			if err := ns.move(n, want); err != nil {
				return err
			}
		}
	}
	return nil
}

// shiftIn makes the pending backup number 1: the backups that would go
// beyond keep are removed, the others shifted up by one, the highest
// number first, so that every rename is onto a free name.
func (ns *numberedSet) shiftIn(pending string, keep int) error {
	nums := ns.numbers() // 1..k after compact
	if keep > 0 {
		for i := len(nums) - 1; i >= 0 && nums[i] >= keep; i-- {
			if err := ns.remove(nums[i]); err != nil {
				return err
			}
			nums = nums[:i]
		}
	}
	for i := len(nums) - 1; i >= 0; i-- {
		if err := ns.move(nums[i], nums[i]+1); err != nil {
			return err
		}
	}
	if err := renameNoReplace(pending, ns.path(1, "")); err != nil {
		return err
	}
	ns.backups[1] = []string{""}
	return nil
}

// prune removes the backups beyond ret.keep and those last written
// longer than ret.maxAge ago (by their files' modification time, as
// logrotate's maxage; compressFile keeps the plain file's).
func (ns *numberedSet) prune(ret retention, now time.Time) error {
	for _, n := range ns.numbers() {
		old := ret.keep > 0 && n > ret.keep
		if !old && ret.maxAge > 0 {
			info, err := os.Stat(ns.path(n, ns.backups[n][0]))
			old = err == nil && now.Sub(info.ModTime()) > ret.maxAge
		}
		if old {
			if err := ns.remove(n); err != nil {
				return err
			}
		}
	}
	return nil
}

// move renames every file of backup from to number to.
func (ns *numberedSet) move(from, to int) error {
	if _, taken := ns.backups[to]; taken {
		return fmt.Errorf("numbering %s: backup %d is in the way of backup %d", ns.live, to, from)
	}
	suffixes := ns.backups[from]
	for i, s := range suffixes {
		if err := renameNoReplace(ns.path(from, s), ns.path(to, s)); err != nil {
			// What moved is a backup of its own now; the next job
			// starts from the names on disk.
			if i > 0 {
				ns.backups[to] = suffixes[:i]
			}
			ns.backups[from] = suffixes[i:]
			return err
		}
	}
	delete(ns.backups, from)
	ns.backups[to] = suffixes
	return nil
}

// remove removes every file of backup n.
func (ns *numberedSet) remove(n int) error {
	for _, s := range ns.backups[n] {
		if err := os.Remove(ns.path(n, s)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	delete(ns.backups, n)
	return nil
}

// renameNoReplace renames from to to unless to exists: a backup never
// overwrites a file, even one that appeared behind the writer's back.
func renameNoReplace(from, to string) error {
	if _, err := os.Lstat(to); err == nil {
		return fmt.Errorf("renaming %s: %s: %w", filepath.Base(from), to, fs.ErrExist)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return os.Rename(from, to)
}
