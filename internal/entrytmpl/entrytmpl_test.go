package entrytmpl

import (
	"errors"
	"strings"
	"testing"
)

func raw(dst, v []byte, _ bool) []byte { return append(dst, v...) }

func TestAppend(t *testing.T) {
	for _, tc := range []struct {
		tmpl, entry, want string
		err               error
	}{
		{"logs.{app}", `{"app":"shop","facility":"web"}`, "logs.shop", nil},
		{"{app}/{facility:root}", `{"app":"shop"}`, "shop/root", nil},
		{"{app}/{facility:root}", `{"app":"shop","facility":""}`, "shop/root", nil},
		{"{host}", `{"host":"Example.com:8443"}`, "Example.com", nil},
		{"{request.host}", `{"request":{"host":"[::1]:443"}}`, "::1", nil},
		{"{http.request.host}", `{"request":{"host":"a.b"}}`, "a.b", nil},
		{"{status}-{app}", `{"status":404,"app":"x"}`, "404-x", nil},
		{"{app}", `{"app":null}`, "", MissingField("app")},
		{"{app}", `{"app":{"x":1}}`, "", MissingField("app")},
		{"{app}", `["app"]`, "", ErrNotObject},
		{"{app}", `{"a\u0070p":"esc"}`, "", MissingField("app")},
		{"{app}", `{"app":"a\u0062"}`, "ab", nil},
	} {
		tp, err := Parse(tc.tmpl, nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.tmpl, err)
		}
		got, err := tp.Append([]byte("keep:"), []byte(tc.entry), raw)
		// On failure dst comes back unchanged: want is "" then.
		if !errors.Is(err, tc.err) || string(got) != "keep:"+tc.want {
			t.Errorf("%s with %s = %q, %v; want %q, %v", tc.tmpl, tc.entry, got, err, tc.want, tc.err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	noDots := func(def string) error {
		if strings.Contains(def, ".") {
			return errors.New("no dots")
		}
		return nil
	}
	for tmpl, want := range map[string]string{
		"plain":                       "no placeholder",
		"{app":                        "unclosed",
		"{a..b}":                      "want a field",
		"{a b}":                       "want a field",
		"{app:x.y}":                   "no dots",
		"{a}{b}{c}{d}{e}{f}{g}{h}{i}": "more than 8",
	} {
		if _, err := Parse(tmpl, noDots); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", tmpl, err, want)
		}
	}
	tp, err := Parse("{app}.{facility}.{app}", nil)
	if err != nil || strings.Join(tp.Fields(), ",") != "app,facility" {
		t.Errorf("fields %v, %v", tp.Fields(), err)
	}
}

func FuzzAppend(f *testing.F) {
	f.Add(`{"app":"x","request":{"host":"h:1"}}`)
	f.Add(`{"app":"\u00e9\"","request":[1,{"host":2}]}`)
	tp, err := Parse("{app}/{request.host:none}", nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, entry string) {
		got, err := tp.Append(nil, []byte(entry), raw)
		if err != nil && len(got) != 0 {
			t.Fatalf("%q: %v with output %q", entry, err, got)
		}
	})
}
