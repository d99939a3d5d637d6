package config

import (
	"strings"
	"testing"
)

func TestGlobalAdminUsers(t *testing.T) {
	body := strings.Replace(validYAML, "tenants:\n", "global_admin_users: [bunny_ops]\ntenants:\n", 1)
	h, err := Load(write(t, body))
	if err != nil {
		t.Fatal(err)
	}
	if !h.GlobalAdmin("bunny_ops") || h.GlobalAdmin("bunny_alice") {
		t.Errorf("global admins %v", h.GlobalAdminUsers)
	}
	for _, name := range []string{"ops", "bon_ops", "bunny_", "bunny"} {
		body := strings.Replace(validYAML, "tenants:\n", "global_admin_users: [bunny_ops, \""+name+"\"]\ntenants:\n", 1)
		p := write(t, body)
		_, err := Load(p)
		want := p + `: global_admin_users[1]: invalid configuration: "` + name + `" is not a hub user name: {tenant key}_{username} with a configured tenant key`
		if err == nil || err.Error() != want {
			t.Errorf("global_admin_users %q: error %v, want %s", name, err, want)
		}
	}
}
