package hub

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ohtkhub/ohtkhub/internal/config"
	"github.com/ohtkhub/ohtkhub/internal/spawner"
)

// httpServerCommand stands in for jupyterhub-singleuser: a Python HTTP server on the port of
// the JUPYTERHUB_SERVICE_URL the local spawner gives it, ready as soon as it answers.
var httpServerCommand = []string{"/usr/bin/python3", "-c",
	"import os, urllib.parse as u, http.server as s; p = u.urlparse(os.environ['JUPYTERHUB_SERVICE_URL']).port; s.HTTPServer(('127.0.0.1', p), s.SimpleHTTPRequestHandler).serve_forever()"}

func waitState(t *testing.T, h *testHub, user, want string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for h.Hub.servers.Status(user).State != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s: state %s, want %s", user, h.Hub.servers.Status(user).State, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func userNames(t *testing.T, body string) []string {
	t.Helper()
	var users []map[string]any
	if err := json.Unmarshal([]byte(body), &users); err != nil {
		t.Fatalf("users: %v: %s", err, body)
	}
	var names []string
	for _, u := range users {
		names = append(names, u["name"].(string))
	}
	return names
}

// TestTenantAdminAdministersOnlyTheirTenant: a tenant's superuser is an admin of that
// tenant's users only; global_admin_users administer everyone.
func TestTenantAdminAdministersOnlyTheirTenant(t *testing.T) {
	bunny := newFakeProvider(t, "Bunny Province")
	bon := newFakeProvider(t, "Bon District")
	cfg := config.Hub{Tenants: []config.Tenant{bunny.tenant("bunny"), bon.tenant("bon")}, GlobalAdminUsers: []string{"bon_ops"}}
	cfg.Spawner.Local.Command = httpServerCommand
	h := startHub(t, listen(t), "/", cfg)

	loginFake(t, newBrowser(t), h, bunny, "bunny", 1, "alice")
	bonAlice := newBrowser(t)
	loginFake(t, bonAlice, h, bon, "bon", 1, "alice")
	root := newBrowser(t)
	bunny.loginAs(2, "root", true)
	root.follow(h.URL + "hub/bunny/oauth_login")
	ops := newBrowser(t)
	loginFake(t, ops, h, bon, "bon", 3, "ops")
	rootToken := createToken(t, root, h)

	bonAlice.get(h.URL + "hub/spawn")
	waitState(t, h, "bon_alice", spawner.StateRunning)

	// The admin page and the users API show bunny's users only, and count only them.
	resp, body := root.get(h.URL + "hub/admin")
	if resp.StatusCode != 200 || !strings.Contains(body, "<td>bunny_alice</td>") || strings.Contains(body, "bon_") {
		t.Errorf("tenant admin's admin page: %s\n%s", resp.Status, body)
	}
	resp, body = root.get(h.URL + "hub/api/users")
	if got := userNames(t, body); resp.StatusCode != 200 || !slices.Equal(got, []string{"bunny_alice", "bunny_root"}) {
		t.Errorf("tenant admin's users: %s %v", resp.Status, got)
	}
	req, _ := http.NewRequest("GET", h.URL+"hub/api/users?offset=1&limit=1", nil)
	req.Header.Set("Accept", "application/jupyterhub-pagination+json")
	req.Header.Set("Authorization", "token "+rootToken)
	resp, body = root.do(req)
	var page struct {
		Items      []map[string]any `json:"items"`
		Pagination struct {
			Offset, Limit, Total int
			Next                 any
		} `json:"_pagination"`
	}
	json.Unmarshal([]byte(body), &page)
	if resp.StatusCode != 200 || len(page.Items) != 1 || page.Items[0]["name"] != "bunny_root" || page.Pagination.Total != 2 || page.Pagination.Next != nil {
		t.Errorf("tenant admin's page 2: %s %s", resp.Status, body)
	}

	// Another tenant's user is as absent as a user that does not exist, with the session and
	// with the admin's own token.
	for _, tc := range []struct{ method, path string }{
		{"GET", "hub/api/users/bon_alice"},
		{"GET", "hub/api/users/bon_alice/server/progress"},
		{"POST", "hub/api/users/bon_alice/server"},
		{"DELETE", "hub/api/users/bon_alice/server"},
	} {
		var e map[string]any
		if code := apiJSON(t, tc.method, h.URL+tc.path, rootToken, nil, &e); code != 404 || e["message"] != "No such user." {
			t.Errorf("token: %s %s: %d %v", tc.method, tc.path, code, e)
		}
		req, _ := http.NewRequest(tc.method, h.URL+tc.path, nil)
		req.Header.Set("X-XSRFToken", root.xsrf(h))
		if resp, body := root.do(req); resp.StatusCode != 404 {
			t.Errorf("session: %s %s: %s %s", tc.method, tc.path, resp.Status, body)
		}
	}
	if code := apiJSON(t, "GET", h.URL+"hub/api/users/bunny_alice", rootToken, nil, nil); code != 200 {
		t.Errorf("tenant admin reading their tenant's user: %d", code)
	}
	resp, body = root.post(h.URL+"hub/admin/stop", url.Values{"_xsrf": {root.xsrf(h)}, "user": {"bon_alice"}})
	if resp.StatusCode != 404 {
		t.Errorf("tenant admin stopping another tenant's server: %s\n%s", resp.Status, body)
	}
	if st := h.Hub.servers.Status("bon_alice").State; st != spawner.StateRunning {
		t.Fatalf("bon_alice's server is %s after bunny's admin tried to stop it", st)
	}
	var me map[string]any
	apiJSON(t, "GET", h.URL+"hub/api/user", rootToken, nil, &me)
	if me["admin"] != true || slices.Contains(me["scopes"].([]any), any("admin:users")) {
		t.Errorf("tenant admin's model: %v", me)
	}

	// A global admin sees and stops everyone's servers.
	resp, body = ops.get(h.URL + "hub/api/users")
	if got := userNames(t, body); resp.StatusCode != 200 || !slices.Equal(got, []string{"bon_alice", "bon_ops", "bunny_alice", "bunny_root"}) {
		t.Errorf("global admin's users: %s %v", resp.Status, got)
	}
	resp, body = ops.get(h.URL + "hub/admin")
	if resp.StatusCode != 200 || !strings.Contains(body, "<td>bon_alice</td>") || !strings.Contains(body, "<td>bunny_alice</td>") {
		t.Errorf("global admin's admin page: %s\n%s", resp.Status, body)
	}
	resp, _ = ops.post(h.URL+"hub/admin/stop", url.Values{"_xsrf": {ops.xsrf(h)}, "user": {"bon_alice"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("global admin stopping a server: %s", resp.Status)
	}
	waitState(t, h, "bon_alice", spawner.StateStopped)
}
