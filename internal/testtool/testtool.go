// Package testtool finds the programs that tests drive as real peers and
// clients (python3, rsyslogd, syslog-ng, gunicorn, chromium, ...). A
// missing program skips the test, or fails it under CI=true, where a skip
// would hide a broken setup; either way the message names the command
// that installs it.
package testtool

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Install is the command that installs every tool the tests need:
// Debian packages through apt-get, so it runs as root.
const Install = "sudo .ci/install"

// CI reports whether tests run under CI=true.
func CI() bool { return os.Getenv("CI") == "true" }

// Missing skips tb, or fails it under CI=true, saying what is missing
// and how to install it.
func Missing(tb testing.TB, format string, args ...any) {
	tb.Helper()
	msg := fmt.Sprintf(format, args...) + "; install the test tools with: " + Install
	if CI() {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
}

// Require returns the path of the program name: on PATH, or in the
// system folders a non-root PATH may lack (rsyslogd is in /usr/sbin).
func Require(tb testing.TB, name string) string {
	tb.Helper()
	if path, err := Find(name); err == nil {
		return path
	}
	Missing(tb, "%s not found on PATH or in /usr/sbin", name)
	return ""
}

// Find is Require for code outside tests (the benchmark driver).
func Find(name string) (string, error) {
	if path, err := exec.LookPath(name); err == nil {
		return path, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		path := filepath.Join(dir, name)
		if fi, err := os.Stat(path); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return path, nil
		}
	}
	return "", fmt.Errorf("%s not found on PATH or in /usr/sbin", name)
}

// SyslogNGRoot is the root of the syslog-ng-core package that .ci/install
// unpacks (Debian's syslog-ng-core conflicts with rsyslog, so it is not
// installed): $APPLOG_SYSLOG_NG if set, else
// ${XDG_CACHE_HOME:-~/.cache}/caddy-applog/syslog-ng-core when it holds
// syslog-ng, else "".
func SyslogNGRoot() string {
	if root := os.Getenv("APPLOG_SYSLOG_NG"); root != "" {
		return root
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	root := filepath.Join(cache, "caddy-applog", "syslog-ng-core")
	if _, err := os.Stat(filepath.Join(root, "usr/sbin/syslog-ng")); err != nil {
		return ""
	}
	return root
}
