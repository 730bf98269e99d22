package applog

import (
	"fmt"
	"strings"

	"github.com/caddyserver/caddy/v2"
)

// secretValue returns the secret a configured value stands for. Only a
// whole-value placeholder is replaced: `{env.NAME}` by the environment
// variable, `{file.PATH}` by the file's contents (without a final
// newline), as Caddy's replacer does. Any other value with braces is an
// error rather than a literal: a secret half made of a placeholder
// (`key-{env.X}`) or a placeholder the replacer would quietly expand to
// a public value (`{system.hostname}`) or drop (`abc{def}` became `abc`)
// is weaker than its operator thinks. To use a secret with braces, put
// it in a file or a variable.
func secretValue(s string) (string, error) {
	key, err := secretPlaceholder(s)
	if err != nil || key == "" {
		return s, err
	}
	v, _ := caddy.NewReplacer().GetString(key)
	if v == "" {
		return "", fmt.Errorf("secret is empty: %s is unset, or names a missing or empty file", s)
	}
	return v, nil
}

// secretPlaceholder returns the placeholder s is ("env.X", "file.X"), or
// "" for a literal secret, or why s is neither.
func secretPlaceholder(s string) (string, error) {
	if s == "" {
		return "", fmt.Errorf("secret is empty")
	}
	if inner, ok := strings.CutPrefix(s, "{"); ok && strings.HasSuffix(inner, "}") && !strings.ContainsAny(inner[:len(inner)-1], "{}") {
		key := inner[:len(inner)-1]
		if strings.HasPrefix(key, "env.") && len(key) > len("env.") || strings.HasPrefix(key, "file.") && len(key) > len("file.") {
			return key, nil
		}
	}
	if i := strings.IndexByte(s, '{'); i >= 0 && strings.IndexByte(s[i:], '}') > 0 {
		// The value is not quoted: it may be the secret itself.
		return "", fmt.Errorf("a secret has braces like a placeholder: only a whole-value {env.NAME} or {file.PATH} is replaced, and other braces are refused rather than taken literally; put a secret with braces in a file or an environment variable")
	}
	return "", nil
}
