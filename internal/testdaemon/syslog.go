package testdaemon

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"

	"github.com/caddy-applog/caddy-applog/internal/testtool"
)

// Rsyslog is how to run rsyslogd.
type Rsyslog struct{ Bin string }

// FindRsyslog finds rsyslogd (testtool.Find: PATH or /usr/sbin).
func FindRsyslog() (*Rsyslog, error) {
	bin, err := testtool.Find("rsyslogd")
	if err != nil {
		return nil, err
	}
	return &Rsyslog{Bin: bin}, nil
}

// Start writes conf to dir/rsyslog.conf and runs rsyslogd on it in the
// foreground (-n), its pid file in dir, until every port accepts.
func (r *Rsyslog) Start(ctx context.Context, dir, conf string, ports ...int) (*Daemon, error) {
	path := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	return Start(ctx, "rsyslog", r.Command(dir), ports...)
}

// Command is the rsyslogd command line that Start runs for dir, for a
// caller that starts the same configuration more than once.
func (r *Rsyslog) Command(dir string) *exec.Cmd {
	return exec.Command(r.Bin, "-n", "-f", filepath.Join(dir, "rsyslog.conf"), "-i", filepath.Join(dir, "rsyslog.pid"))
}

// RsyslogGnuTLS reports whether rsyslog's gtls stream driver (Debian
// package rsyslog-gnutls) is installed.
func RsyslogGnuTLS() bool {
	for _, pattern := range []string{"/usr/lib/*/rsyslog/lmnsd_gtls.so", "/usr/lib/rsyslog/lmnsd_gtls.so", "/usr/lib64/rsyslog/lmnsd_gtls.so"} {
		if m, _ := filepath.Glob(pattern); len(m) > 0 {
			return true
		}
	}
	return false
}

// SyslogNG is how to run syslog-ng: its binary, the environment and
// module path it needs, and the configuration version (@version) it
// reads.
type SyslogNG struct {
	Bin, ModulePath, Version string
	Env                      []string
	root                     string // of the unpacked package, or ""
}

// FindSyslogNG finds syslog-ng in the syslog-ng-core package unpacked
// at root (Debian's syslog-ng-core conflicts with rsyslog, so
// .ci/install unpacks it into a private folder; see
// testtool.SyslogNGRoot), or on PATH when root is "".
func FindSyslogNG(root string) (*SyslogNG, error) {
	if root != "" {
		s := &SyslogNG{Bin: filepath.Join(root, "usr/sbin/syslog-ng"), root: root}
		mods, _ := filepath.Glob(filepath.Join(root, "usr/lib/syslog-ng/[0-9]*.[0-9]*"))
		if _, err := os.Stat(s.Bin); err != nil || len(mods) != 1 {
			return nil, fmt.Errorf("no syslog-ng under %s (want usr/sbin/syslog-ng and one usr/lib/syslog-ng/<version>)", root)
		}
		s.ModulePath, s.Version = mods[0], filepath.Base(mods[0])
		s.Env = []string{"LD_LIBRARY_PATH=" + filepath.Join(root, "usr/lib/syslog-ng")}
		return s, nil
	}
	bin, err := testtool.Find("syslog-ng")
	if err != nil {
		return nil, err
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --version: %w", bin, err)
	}
	m := regexp.MustCompile(`\((\d+\.\d+)`).FindSubmatch(out)
	if m == nil {
		return nil, fmt.Errorf("%s --version: no version in %q", bin, out)
	}
	return &SyslogNG{Bin: bin, Version: string(m[1])}, nil
}

// Loggen finds syslog-ng's load generator and the environment it needs:
// in an unpacked package, its libraries and its plugins (found through
// SYSLOGNG_PREFIX) are in the same tree; otherwise it is on PATH.
func (s *SyslogNG) Loggen() (bin string, env []string, err error) {
	if s.root == "" {
		bin, err = testtool.Find("loggen")
		return bin, nil, err
	}
	bin = filepath.Join(s.root, "usr/bin/loggen")
	if _, err := os.Stat(bin); err != nil {
		return "", nil, fmt.Errorf("%s is missing (syslog-ng-core ships it): %w", bin, err)
	}
	return bin, append(append([]string(nil), s.Env...), "SYSLOGNG_PREFIX="+filepath.Join(s.root, "usr")), nil
}

// Start writes conf to dir/syslog-ng.conf and runs syslog-ng on it in
// the foreground with flags, its pid, persist and control files in dir
// too, until every port accepts.
func (s *SyslogNG) Start(ctx context.Context, dir, conf string, ports []int, flags ...string) (*Daemon, error) {
	if err := os.WriteFile(filepath.Join(dir, "syslog-ng.conf"), []byte(conf), 0o644); err != nil {
		return nil, err
	}
	return Start(ctx, "syslog-ng", s.Command(dir, flags...), ports...)
}

// Command is the syslog-ng command line that Start runs for dir.
func (s *SyslogNG) Command(dir string, flags ...string) *exec.Cmd {
	args := append([]string{"-F"}, flags...)
	args = append(args, "--no-caps", "-f", filepath.Join(dir, "syslog-ng.conf"), "-p", filepath.Join(dir, "pid"),
		"-R", filepath.Join(dir, "persist"), "-c", filepath.Join(dir, "ctl"))
	if s.ModulePath != "" {
		args = append(args, "--module-path="+s.ModulePath)
	}
	cmd := exec.Command(s.Bin, args...)
	cmd.Env = append(os.Environ(), s.Env...)
	return cmd
}
