package demo

import (
	"bytes"
	"strings"
	"testing"
)

func TestDisplayWidth(t *testing.T) {
	for s, want := range map[string]int{
		"":           0,
		"alice":      5,
		"สมชาย ใจดี": 9, // ี (U+0E35) is a nonspacing mark
		"น้ำ":        2, // ้ (U+0E49) is a tone mark; ำ (U+0E33) a spacing vowel
		"e\u0301":    1, // e + combining acute
		"a\u200db":   2, // zero-width joiner
	} {
		if got := displayWidth(s); got != want {
			t.Errorf("displayWidth(%q) = %d, want %d", s, got, want)
		}
	}
}

// TestWelcomeTableIsAligned: the columns after a Thai user name start where they start after
// Latin names, counted in terminal columns.
func TestWelcomeTableIsAligned(t *testing.T) {
	d := &Demo{infoPath: "demo.json", Info: Info{HubURL: "http://127.0.0.1:8000/", APIURL: "http://127.0.0.1:8001", Tenants: []TenantInfo{
		{Key: "bunny", Label: "Bunny Province", Users: []UserInfo{
			{Username: "admin", Password: "ohtk-demo", IsSuperuser: true},
			{Username: "สมชาย ใจดี", Password: "ohtk-demo", Role: "OFC", AuthorityCode: "5002"},
			{Username: "alice", Password: "ohtk-demo", Role: "ADM", AuthorityCode: "5001"},
		}},
		{Key: "bon", Label: "Bon", Users: []UserInfo{
			{Username: "a-much-longer-user-name-than-22", Password: "ohtk-demo", Role: "REP", AuthorityCode: "6001"},
		}},
	}}}
	var b bytes.Buffer
	d.PrintWelcome(&b)
	var cols []int
	for _, line := range strings.Split(b.String(), "\n") {
		i := strings.Index(line, " password ")
		if i < 0 || !strings.HasPrefix(line, "    ") {
			continue
		}
		cols = append(cols, displayWidth(line[:i]))
		// Role and authority columns too.
		if j := strings.Index(line, "ohtk-demo"); displayWidth(line[:j]) != cols[0]+len(" password ") {
			t.Errorf("password column of %q", line)
		}
	}
	if len(cols) != 4 {
		t.Fatalf("%d login lines in\n%s", len(cols), b.String())
	}
	for i, c := range cols {
		if c != cols[0] {
			t.Errorf("login %d: password column at %d, want %d:\n%s", i, c, cols[0], b.String())
		}
	}
	t.Log("\n" + b.String())
}
