package kafka

import (
	"errors"
	"fmt"
	"strings"

	"github.com/caddy-applog/caddy-applog/internal/entrytmpl"
)

// topicRoute names the topic of each entry: a fixed topic, or a
// template (`logs.{app}`) with a fallback topic for the entries it
// cannot place.
type topicRoute struct {
	fixed    string
	tmpl     *entrytmpl.Template
	fallback string
}

// maxTopicLen is the longest topic name Kafka takes.
const maxTopicLen = 249

func newTopicRoute(topic, fallback string) (topicRoute, error) {
	if !entrytmpl.HasPlaceholder(topic) {
		if err := checkTopic(topic); err != nil {
			return topicRoute{}, fmt.Errorf("topic %q: %w", topic, err)
		}
		if fallback != "" {
			return topicRoute{}, fmt.Errorf("fallback_topic %q: only a topic template has a fallback", fallback)
		}
		return topicRoute{fixed: topic}, nil
	}
	tmpl, err := entrytmpl.Parse(topic, func(def string) error {
		if checkTopicPart(def) != "" {
			return errors.New("a default must be a part of a topic name: letters, digits, '.', '_' and '-'")
		}
		return nil
	})
	if err != nil {
		return topicRoute{}, fmt.Errorf("topic %q: %w", topic, err)
	}
	// Literals must be legal too: `logs/{app}` is a typo, not a topic.
	lit := replacePlaceholders(topic, func(string) string { return "" })
	if why := checkTopicPart(lit); why != "" {
		return topicRoute{}, fmt.Errorf("topic %q: %s", topic, why)
	}
	if fallback == "" {
		fallback = defaultFallback(topic)
	}
	if err := checkTopic(fallback); err != nil {
		return topicRoute{}, fmt.Errorf("fallback_topic %q: %w", fallback, err)
	}
	return topicRoute{tmpl: tmpl, fallback: fallback}, nil
}

// defaultFallback is the template with each placeholder replaced by its
// default, or by `unplaced`: `logs.{app}` falls back to `logs.unplaced`.
func defaultFallback(topic string) string {
	return replacePlaceholders(topic, func(inner string) string {
		if _, def, ok := strings.Cut(inner, ":"); ok {
			return def
		}
		return "unplaced"
	})
}

// replacePlaceholders returns topic with each placeholder `{inner}`
// replaced by with(inner).
func replacePlaceholders(topic string, with func(inner string) string) string {
	var b strings.Builder
	for rest := topic; rest != ""; {
		open := strings.IndexByte(rest, '{')
		end := strings.IndexByte(rest, '}')
		if open < 0 || end < open {
			b.WriteString(rest)
			break
		}
		b.WriteString(rest[:open])
		b.WriteString(with(rest[open+1 : end]))
		rest = rest[end+1:]
	}
	return b.String()
}

// checkTopic says why Kafka would refuse name as a topic.
func checkTopic(name string) error {
	switch {
	case name == "":
		return errors.New("a topic is required")
	case name == "." || name == "..":
		return errors.New("'.' and '..' are not topics")
	case len(name) > maxTopicLen:
		return fmt.Errorf("longer than Kafka's %d bytes", maxTopicLen)
	}
	if why := checkTopicPart(name); why != "" {
		return errors.New(why)
	}
	return nil
}

func checkTopicPart(s string) string {
	for _, c := range []byte(s) {
		if !topicByte(c) {
			return fmt.Sprintf("%q is not allowed in a topic name: letters, digits, '.', '_' and '-'", c)
		}
	}
	return ""
}

func topicByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

// appendTopicValue writes a value into a topic name: every byte Kafka
// does not allow becomes '_', at most maxValueLen bytes of it, a host
// name lower-cased.
func appendTopicValue(dst, v []byte, host bool) []byte {
	if len(v) > maxValueLen {
		v = v[:maxValueLen]
	}
	for _, c := range v {
		switch {
		case host && c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		case !topicByte(c):
			c = '_'
		}
		dst = append(dst, c)
	}
	return dst
}

// appendTopic appends the topic of entry p to dst, and reports whether
// the template could not place it (the fallback topic is used then).
func (r *topicRoute) appendTopic(dst, p []byte) ([]byte, bool) {
	if r.tmpl == nil {
		return append(dst, r.fixed...), false
	}
	start := len(dst)
	dst, err := r.tmpl.Append(dst, p, appendTopicValue)
	if err == nil {
		if name := dst[start:]; len(name) <= maxTopicLen && string(name) != "." && string(name) != ".." {
			return dst, false
		}
	}
	return append(dst[:start], r.fallback...), true
}
