package intake

import "testing"

func TestFacilityFromLogger(t *testing.T) {
	for in, want := range map[string]string{
		"":                  "",
		"root":              "",
		"django.request":    "django.request",
		"__main__":          "__main__",
		"a..b.":             "a.b",
		".lead":             "lead",
		"my app/views.x y":  "my_app_views.x_y",
		"héllo.wörld":       "h__llo.w__rld",
		"../../etc/passwd":  "_._etc_passwd",
		"web.requests-v2_1": "web.requests-v2_1",
	} {
		if got := FacilityFromLogger(in); got != want {
			t.Errorf("FacilityFromLogger(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestValidApp(t *testing.T) {
	for in, want := range map[string]bool{"myapp": true, "my-app_2": true, "": false, "my.app": false, "a b": false, "ä": false} {
		if ValidApp(in) != want {
			t.Errorf("ValidApp(%q) = %v", in, !want)
		}
	}
}

func TestCutUTF8(t *testing.T) {
	for _, tc := range []struct {
		s    string
		n    int
		want string
	}{
		{"abc", 5, "abc"},
		{"abc", 3, "abc"},
		{"abc", 0, ""},
		{"ab€cd", 4, "ab"},                // € is 3 bytes: not half of it
		{"ab€cd", 5, "ab€"},               // exactly after it
		{"a\x80\x80\x80", 3, "a\x80\x80"}, // stray continuation bytes are cut as they come
	} {
		if got := CutUTF8(tc.s, tc.n); got != tc.want {
			t.Errorf("CutUTF8(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
		}
	}
}
