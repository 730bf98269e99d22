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
