package safeurl

import "testing"

func TestLocalPath(t *testing.T) {
	for _, tc := range []struct {
		next, base string
		want       bool
	}{
		{"/hub/home", "/", true},
		{"/hub/spawn?x=1#f", "", true},
		{"/notebooks/user/bunny_%E0%B8%AA/tree", "/notebooks/", true},
		{"/notebooks", "/notebooks/", true},
		{"/t/bunny/o/authorize/?client_id=x", "/t/bunny", true},

		{"", "/", false},
		{"hub/home", "/", false},
		{"https://evil.example/", "/", false},
		{"//evil.example/x", "/", false},
		{"/\\evil.example", "/", false},
		{"/\t/evil.example/x", "/", false},
		{"/\n/evil.example", "/", false},
		{"/\r/evil.example", "/", false},
		{"/\x7f/evil.example", "/", false},
		{"/\x00x", "/", false},
		{"/other/app", "/notebooks/", false},
		{"/notebooksx/", "/notebooks/", false},
		{"/t/bunny/../../x", "/t/bunny", false},
		{"/t/bunny/%2e%2e/bon/", "/t/bunny", false},
		{"/t/bunny/./x", "/t/bunny", false},
		{"/t/bunnyx/", "/t/bunny", false},
		{"/%zz", "/", false},
	} {
		if got := LocalPath(tc.next, tc.base); got != tc.want {
			t.Errorf("LocalPath(%q, %q) = %v, want %v", tc.next, tc.base, got, tc.want)
		}
	}
}
