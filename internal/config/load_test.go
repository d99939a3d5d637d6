package config

import (
	"errors"
	"strings"
	"testing"
)

// TestLoadErrorsAreOneLine: YAML type errors, unknown fields and empty files are reported in
// one line naming the file, the field with its line, and the problem.
func TestLoadErrorsAreOneLine(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"duration", strings.Replace(validYAML, "tenants:\n", "session_max_age: forever\ntenants:\n", 1),
			`: session_max_age (line 5): invalid configuration: "forever" is not a duration (such as 90s, 10m or 336h)`},
		{"nested bool", strings.Replace(validYAML, "    allow_all: true\n", "    allow_all: everyone\n", 1),
			`: tenants[0].allow_all (line 15): invalid configuration: "everyone" is not true or false`},
		{"list for a string", strings.Replace(validYAML, "listen: 127.0.0.1:8000", "listen: [a, b]", 1),
			`: listen (line 2): invalid configuration: a list is not a string`},
		{"integer", strings.Replace(validYAML, "tenants:\n", "callback_rate: lots\ntenants:\n", 1),
			`: callback_rate (line 5): invalid configuration: "lots" is not a whole number`},
		{"first field of a mapping", strings.Replace(validYAML, "spawner:\n", "spawner:\n  start_timeout: soon\n", 1),
			`: spawner.start_timeout (line 18): invalid configuration: "soon" is not a duration (such as 90s, 10m or 336h)`},
		{"unknown nested field", strings.Replace(validYAML, "    label: Bunny Province", "    lable: Bunny Province", 1),
			`: tenants[0].lable (line 7): invalid configuration: unknown field`},
		{"empty", "", `: invalid configuration: the file is empty (or holds only comments)`},
		{"only comments", "# hub.yaml\n\n", `: invalid configuration: the file is empty (or holds only comments)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := write(t, tc.body)
			_, err := Load(p)
			if err == nil || !errors.Is(err, ErrInvalid) || err.Error() != p+tc.want {
				t.Fatalf("error %q\nwant  %q", err, p+tc.want)
			}
		})
	}
}

func TestTenantKeysThatCollide(t *testing.T) {
	h, err := Load(write(t, validYAML))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		keys []string
		ok   bool
	}{
		{[]string{"a", "a_b"}, false},
		{[]string{"a_b", "a"}, false},
		{[]string{"bunny", "bunny_north"}, false},
		{[]string{"a", "ab"}, true},
		{[]string{"a", "a-b"}, true},
		{[]string{"a_b", "a_c"}, true},
	} {
		c := h
		c.Tenants = nil
		for _, k := range tc.keys {
			tn := h.Tenants[0]
			tn.Key = k
			c.Tenants = append(c.Tenants, tn)
		}
		err := c.Validate()
		if tc.ok != (err == nil) {
			t.Errorf("keys %v: %v", tc.keys, err)
		}
		if !tc.ok && err != nil && !strings.Contains(err.Error(), `tenants[1].key: invalid configuration: tenant keys "`+tc.keys[0]+`" and "`+tc.keys[1]+`" clash`) {
			t.Errorf("keys %v: %v", tc.keys, err)
		}
	}
}
