package caddyapplog_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-applog/caddy-applog"
)

// The manual's rules, checked so that it cannot rot: README stays short,
// no paragraph runs on, every relative link resolves, every ```caddy
// block is a whole Caddyfile that adapts with this plugin, and every
// ```json block is JSON. (```caddy-d blocks are syntax outlines with
// <placeholders> and are not adapted.)
const (
	maxReadme    = 12 * 1024
	maxParagraph = 600
)

// docFiles lists README.md and every page under docs/.
func docFiles(t *testing.T) []string {
	t.Helper()
	pages, err := filepath.Glob("docs/*.md")
	if err != nil || len(pages) == 0 {
		t.Fatalf("no pages under docs/: %v", err)
	}
	return append([]string{"README.md"}, pages...)
}

func TestDocsReadmeSize(t *testing.T) {
	fi, err := os.Stat("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > maxReadme {
		t.Errorf("README.md is %d bytes; keep it under %d (the manual belongs in docs/)", fi.Size(), maxReadme)
	}
}

// block is a fenced code block of a page.
type block struct {
	lang, text string
	line       int // of the opening fence
}

// parse splits a page into its fenced blocks and its prose chunks: a
// paragraph, a list item with its continuation lines, a table row or a
// heading, each with the line it starts on.
func parse(src string) (blocks []block, chunks []block) {
	lines := strings.Split(src, "\n")
	var cur *block
	var fence *block
	flush := func() {
		if cur != nil {
			chunks = append(chunks, *cur)
			cur = nil
		}
	}
	for i, l := range lines {
		trimmed := strings.TrimSpace(l)
		if fence != nil {
			if strings.HasPrefix(trimmed, "```") {
				blocks = append(blocks, *fence)
				fence = nil
				continue
			}
			fence.text += l + "\n"
			continue
		}
		if strings.HasPrefix(trimmed, "```") {
			flush()
			fence = &block{lang: strings.TrimSpace(strings.TrimPrefix(trimmed, "```")), line: i + 1}
			continue
		}
		starts := trimmed == "" || strings.HasPrefix(trimmed, "#") || strings.HasPrefix(trimmed, "|") ||
			listItem.MatchString(trimmed)
		if starts {
			flush()
		}
		if trimmed == "" {
			continue
		}
		if cur == nil {
			cur = &block{line: i + 1}
		} else {
			cur.text += " "
		}
		cur.text += trimmed
		if strings.HasPrefix(trimmed, "#") || strings.HasPrefix(trimmed, "|") {
			flush()
		}
	}
	flush()
	return blocks, chunks
}

var (
	listItem = regexp.MustCompile(`^([-*+]|\d+[.)])\s`)
	link     = regexp.MustCompile(`\]\(([^)#\s]*)(#[^)]*)?\)`)
)

// eachChunk runs check on every prose chunk of every page, in a subtest
// per page.
func eachChunk(t *testing.T, check func(t *testing.T, file string, c block)) {
	for _, file := range docFiles(t) {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		_, chunks := parse(string(src))
		t.Run(file, func(t *testing.T) {
			for _, c := range chunks {
				check(t, file, c)
			}
		})
	}
}

func TestDocsParagraphs(t *testing.T) {
	eachChunk(t, func(t *testing.T, file string, c block) {
		if n := len([]rune(c.text)); n > maxParagraph {
			t.Errorf("%s:%d: a paragraph of %d characters (at most %d): %.80s…", file, c.line, n, maxParagraph, c.text)
		}
	})
}

func TestDocsLinks(t *testing.T) {
	eachChunk(t, func(t *testing.T, file string, c block) {
		for _, m := range link.FindAllStringSubmatch(c.text, -1) {
			target, anchor := m[1], strings.TrimPrefix(m[2], "#")
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path := filepath.Join(filepath.Dir(file), target)
			if target == "" {
				path = file
			}
			if _, err := os.Stat(path); err != nil {
				t.Errorf("%s:%d: link to %s, which does not exist", file, c.line, target)
				continue
			}
			if anchor != "" && !slices.Contains(anchors(t, path), anchor) {
				t.Errorf("%s:%d: link to %s#%s: %s has no such heading", file, c.line, target, anchor, path)
			}
		}
	})
}

// anchors lists the anchors GitHub gives the headings of a Markdown
// file: lower case, spaces as hyphens, other punctuation dropped.
func anchors(t *testing.T, path string) []string {
	t.Helper()
	if !strings.HasSuffix(path, ".md") {
		return nil
	}
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, chunks := parse(string(src))
	var list []string
	for _, c := range chunks {
		if !strings.HasPrefix(c.text, "#") {
			continue
		}
		title := strings.ToLower(strings.TrimSpace(strings.TrimLeft(c.text, "#")))
		var b strings.Builder
		for _, r := range title {
			switch {
			case r == ' ':
				b.WriteByte('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				b.WriteRune(r)
			}
		}
		list = append(list, b.String())
	}
	return list
}

func TestDocsExamples(t *testing.T) {
	adapter := caddyconfig.GetAdapter("caddyfile")
	n := 0
	for _, file := range append(docFiles(t), "examples/Caddyfile") {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		blocks := []block{{lang: "caddy", text: string(src), line: 1}}
		if strings.HasSuffix(file, ".md") {
			blocks, _ = parse(string(src))
		}
		t.Run(file, func(t *testing.T) {
			for _, b := range blocks {
				switch b.lang {
				case "caddy":
					n++
					_, warnings, err := adapter.Adapt([]byte(b.text), map[string]any{"filename": file})
					if err != nil {
						t.Errorf("%s:%d: the Caddyfile does not adapt: %v", file, b.line, err)
					}
					for _, w := range warnings {
						t.Errorf("%s:%d: adapting warns: %s", file, b.line, w.String())
					}
				case "json":
					n++
					if !json.Valid([]byte(b.text)) {
						t.Errorf("%s:%d: the JSON block is not valid JSON", file, b.line)
					}
				}
			}
		})
	}
	t.Logf("%d examples adapted or parsed", n)
}
