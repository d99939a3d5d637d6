package hub

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ohtkhub/ohtkhub/internal/config"
	"github.com/ohtkhub/ohtkhub/internal/store"
)

func TestAPIVersion(t *testing.T) {
	h, _, _ := loginHub(t, "/")
	for _, p := range []string{"hub/api", "hub/api/"} {
		resp, err := http.Get(h.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != `{"version":"3.1.1"}` || resp.Header.Get("X-JupyterHub-Version") != "3.1.1" {
			t.Errorf("GET %s: %s %s header %q", p, resp.Status, body, resp.Header.Get("X-JupyterHub-Version"))
		}
	}
	var e map[string]any
	if code := apiJSON(t, "GET", h.URL+"hub/api/nothing-here", "", nil, &e); code != 404 || e["message"] != "No such API endpoint." || e["status"] != float64(404) {
		t.Errorf("unknown endpoint: %d %v", code, e)
	}
}

// serverToken makes the API token a spawned server of user would get.
func serverToken(t testing.TB, h *testHub, user string) string {
	t.Helper()
	tok, err := h.Hub.store.CreateToken(t.Context(), store.Token{User: user, Kind: store.TokenServer, ClientID: "jupyterhub-user-" + user}, 0)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestAPIUserForServerToken(t *testing.T) {
	h, bunny, _ := loginHub(t, "/")
	loginFake(t, newBrowser(t), h, bunny, "bunny", 1, "alice")
	tok := serverToken(t, h, "bunny_alice")
	var m map[string]any
	if code := apiJSON(t, "GET", h.URL+"hub/api/user", tok, nil, &m); code != 200 {
		t.Fatalf("GET /hub/api/user: %d %v", code, m)
	}
	if m["name"] != "bunny_alice" || m["kind"] != "user" || m["admin"] != false || m["session_id"] != "" || m["server"] != nil {
		t.Errorf("user model %v", m)
	}
	scopes := map[string]bool{}
	for _, s := range m["scopes"].([]any) {
		scopes[s.(string)] = true
	}
	for _, want := range []string{"access:servers!server=bunny_alice/", "access:servers!user=bunny_alice", "users:activity!user=bunny_alice"} {
		if !scopes[want] {
			t.Errorf("scopes %v lack %s", m["scopes"], want)
		}
	}
	// Bearer works too; a made-up token is a 403, which jupyterhub-singleuser reads as "nobody".
	req, _ := http.NewRequest("GET", h.URL+"hub/api/user", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, _ := http.DefaultClient.Do(req)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("Bearer: %s", resp.Status)
	}
	if code := apiJSON(t, "GET", h.URL+"hub/api/user", "made-up", nil, nil); code != 403 {
		t.Errorf("made-up token: %d", code)
	}
}

func TestAPIActivity(t *testing.T) {
	h, bunny, _ := loginHub(t, "/")
	loginFake(t, newBrowser(t), h, bunny, "bunny", 1, "alice")
	loginFake(t, newBrowser(t), h, bunny, "bunny", 2, "eve")
	tok := serverToken(t, h, "bunny_alice")
	body := `{"servers":{"":{"last_activity":"2026-12-03T10:00:00.000000Z"}},"last_activity":"2026-12-03T10:00:00.000000Z"}`
	if code := apiJSON(t, "POST", h.URL+"hub/api/users/bunny_alice/activity", tok, strings.NewReader(body), nil); code != 204 {
		t.Fatalf("activity: %d", code)
	}
	u, _ := h.Hub.store.User(t.Context(), "bunny_alice")
	if got := u.LastActivity.UTC().Format("2006-01-02T15:04:05Z"); got != "2026-12-03T10:00:00Z" {
		t.Errorf("last activity %s", got)
	}
	var e map[string]any
	if code := apiJSON(t, "POST", h.URL+"hub/api/users/bunny_eve/activity", tok, strings.NewReader(body), &e); code != 403 {
		t.Errorf("activity for another user: %d %v", code, e)
	}
	if code := apiJSON(t, "POST", h.URL+"hub/api/users/bunny_alice/activity", tok, strings.NewReader("nope"), &e); code != 400 || !strings.Contains(e["message"].(string), "last_activity") {
		t.Errorf("bad body: %d %v", code, e)
	}
}

func TestServersOAuthProvider(t *testing.T) {
	h, bunny, _ := loginHub(t, "/")
	alice := newBrowser(t)
	loginFake(t, alice, h, bunny, "bunny", 1, "alice")
	secret := serverToken(t, h, "bunny_alice")
	authorize := h.URL + "hub/api/oauth2/authorize?" + url.Values{"client_id": {"jupyterhub-user-bunny_alice"},
		"redirect_uri": {"/user/bunny_alice/oauth_callback"}, "response_type": {"code"}, "state": {"st"}}.Encode()

	// Not signed in: to the login page and back.
	resp, _ := newBrowser(t).get(authorize)
	if resp.StatusCode != 302 || resp.Header.Get("Location") != "/hub/login?next="+url.QueryEscape(strings.TrimPrefix(authorize, h.Host)) {
		t.Fatalf("anonymous authorize: %s %s", resp.Status, resp.Header.Get("Location"))
	}
	// A redirect URI of another path is refused.
	resp, body := alice.get(strings.Replace(authorize, "oauth_callback", "elsewhere", 1))
	if resp.StatusCode != 400 || !strings.Contains(body, "The redirect_uri does not belong to this client.") {
		t.Fatalf("foreign redirect_uri: %s %s", resp.Status, body)
	}
	resp, _ = alice.get(authorize)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != 302 || loc.Path != "/user/bunny_alice/oauth_callback" || loc.Query().Get("state") != "st" {
		t.Fatalf("authorize: %s %s", resp.Status, loc)
	}
	code := loc.Query().Get("code")
	exchange := func(secret, code string) (int, map[string]any) {
		var out map[string]any
		form := url.Values{"client_id": {"jupyterhub-user-bunny_alice"}, "client_secret": {secret}, "grant_type": {"authorization_code"},
			"code": {code}, "redirect_uri": {"/user/bunny_alice/oauth_callback"}}
		resp, err := http.PostForm(h.URL+"hub/api/oauth2/token", form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	if status, out := exchange("wrong", code); status != 401 || out["error"] != "invalid_client" {
		t.Fatalf("wrong client secret: %d %v", status, out)
	}
	status, out := exchange(secret, code)
	if status != 200 || out["token_type"] != "Bearer" {
		t.Fatalf("exchange: %d %v", status, out)
	}
	var m map[string]any
	if apiJSON(t, "GET", h.URL+"hub/api/user", out["access_token"].(string), nil, &m); m["name"] != "bunny_alice" || m["session_id"] == "" {
		t.Fatalf("user for the browser's token: %v", m)
	}
	if status, out := exchange(secret, code); status != 400 || out["error"] != "invalid_grant" {
		t.Fatalf("code used twice: %d %v", status, out)
	}
	// Signing out of the hub revokes the token the server got for this browser.
	alice.follow(h.URL + "hub/logout")
	if code := apiJSON(t, "GET", h.URL+"hub/api/user", out["access_token"].(string), nil, nil); code != 403 {
		t.Fatalf("browser token after logout: %d", code)
	}
}

func TestCSRF(t *testing.T) {
	h, bunny, _ := loginHub(t, "/")
	alice := newBrowser(t)
	loginFake(t, alice, h, bunny, "bunny", 1, "alice")

	// A cross-site form post is refused before it reaches the handler.
	req, _ := http.NewRequest("POST", h.URL+"hub/token", strings.NewReader(url.Values{"_xsrf": {alice.xsrf(h)}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, _ := alice.do(req)
	if resp.StatusCode != 403 {
		t.Errorf("cross-site POST: %s", resp.Status)
	}
	// A same-origin form without the XSRF token is refused too.
	resp, body := alice.post(h.URL+"hub/token", url.Values{"note": {"x"}})
	if resp.StatusCode != 403 || !strings.Contains(body, "The form has expired") {
		t.Errorf("POST without _xsrf: %s", resp.Status)
	}
	// Cookie-authenticated API calls that change state need the X-XSRFToken header.
	req, _ = http.NewRequest("DELETE", h.URL+"hub/api/users/bunny_alice/server", nil)
	resp, body = alice.do(req)
	if resp.StatusCode != 403 || !strings.Contains(body, "XSRF token missing or invalid") {
		t.Errorf("DELETE without XSRF header: %s %s", resp.Status, body)
	}
	req, _ = http.NewRequest("DELETE", h.URL+"hub/api/users/bunny_alice/server", nil)
	req.Header.Set("X-XSRFToken", alice.xsrf(h))
	resp, body = alice.do(req)
	if resp.StatusCode != 204 {
		t.Errorf("DELETE with XSRF header: %s %s", resp.Status, body)
	}
}

func TestCallbackRateLimit(t *testing.T) {
	bunny := newFakeProvider(t, "Bunny Province")
	h := startHub(t, listen(t), "/", config.Hub{CallbackRate: 3, Tenants: []config.Tenant{bunny.tenant("bunny")}})
	b := newBrowser(t)
	var last *http.Response
	for range 5 {
		last, _ = b.get(h.URL + "hub/bunny/oauth_callback?state=x&code=y")
	}
	if last.StatusCode != http.StatusTooManyRequests || last.Header.Get("Retry-After") == "" {
		t.Fatalf("sixth callback: %s", last.Status)
	}
}

func TestAdminPageAndUsersAPI(t *testing.T) {
	h, bunny, _ := loginHub(t, "/")
	alice := newBrowser(t)
	loginFake(t, alice, h, bunny, "bunny", 1, "alice")
	root := newBrowser(t)
	bunny.loginAs(2, "root", true)
	root.follow(h.URL + "hub/bunny/oauth_login")

	resp, _ := alice.get(h.URL + "hub/admin")
	if resp.StatusCode != 403 {
		t.Errorf("non-admin /hub/admin: %s", resp.Status)
	}
	resp, body := alice.get(h.URL + "hub/api/users")
	if resp.StatusCode != 403 {
		t.Errorf("non-admin /hub/api/users: %s %s", resp.Status, body)
	}
	resp, body = root.get(h.URL + "hub/admin")
	if resp.StatusCode != 200 || !strings.Contains(body, "<td>bunny_alice</td>") || !strings.Contains(body, "<td>bunny_root</td><td>bunny</td><td>yes</td>") {
		t.Errorf("admin page: %s\n%s", resp.Status, body)
	}
	resp, body = root.get(h.URL + "hub/api/users")
	var users []map[string]any
	json.Unmarshal([]byte(body), &users)
	if resp.StatusCode != 200 || len(users) != 2 || users[0]["name"] != "bunny_alice" {
		t.Errorf("users API: %s %s", resp.Status, body)
	}
}

// TestHealthAndMetrics: /hub/health is open; /hub/metrics needs a global admin's session or
// API token, unless metrics_public is set.
func TestHealthAndMetrics(t *testing.T) {
	bunny := newFakeProvider(t, "Bunny Province")
	h := startHub(t, listen(t), "/", config.Hub{Tenants: []config.Tenant{bunny.tenant("bunny")}, GlobalAdminUsers: []string{"bunny_ops"}})
	resp, body := newBrowser(t).get(h.URL + "hub/health")
	if resp.StatusCode != 200 || strings.TrimSpace(body) != `{"status":"ok"}` {
		t.Errorf("health: %s %s", resp.Status, body)
	}
	resp, body = newBrowser(t).get(h.URL + "hub/metrics")
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" || strings.Contains(body, "ohtkhub_users") {
		t.Errorf("anonymous metrics: %s %s", resp.Status, body)
	}
	root := newBrowser(t)
	bunny.loginAs(2, "root", true)
	root.follow(h.URL + "hub/bunny/oauth_login")
	if resp, body := root.get(h.URL + "hub/metrics"); resp.StatusCode != 403 {
		t.Errorf("a tenant admin's metrics: %s %s", resp.Status, body)
	}
	if code := apiJSON(t, "GET", h.URL+"hub/metrics", serverToken(t, h, "bunny_root"), nil, nil); code != 403 {
		t.Errorf("metrics with a server token: %d", code)
	}
	ops := newBrowser(t)
	loginFake(t, ops, h, bunny, "bunny", 3, "ops")
	if resp, body := ops.get(h.URL + "hub/metrics"); resp.StatusCode != 200 || !strings.Contains(body, "ohtkhub_users 2\n") {
		t.Errorf("a global admin's metrics: %s %s", resp.Status, body)
	}
	// What Prometheus does: Authorization: token <the global admin's API token>.
	req, _ := http.NewRequest("GET", h.URL+"hub/metrics", nil)
	req.Header.Set("Authorization", "token "+createToken(t, ops, h))
	resp, body = newBrowser(t).do(req)
	if resp.StatusCode != 200 || !strings.Contains(body, "ohtkhub_users 2\n") || !strings.Contains(body, `ohtkhub_servers{state="running"} 0`) {
		t.Errorf("metrics with a global admin's token: %s %s", resp.Status, body)
	}

	open := startHub(t, listen(t), "/", config.Hub{Tenants: []config.Tenant{bunny.tenant("bunny")}, MetricsPublic: true})
	if resp, body := newBrowser(t).get(open.URL + "hub/metrics"); resp.StatusCode != 200 || !strings.Contains(body, "ohtkhub_users 0\n") {
		t.Errorf("public metrics: %s %s", resp.Status, body)
	}
}

func TestTokensAPI(t *testing.T) {
	h, bunny, _ := loginHub(t, "/")
	alice := newBrowser(t)
	loginFake(t, alice, h, bunny, "bunny", 1, "alice")
	first := createToken(t, alice, h)
	var created map[string]any
	if code := apiJSON(t, "POST", h.URL+"hub/api/users/bunny_alice/tokens", first, strings.NewReader(`{"note":"ci","expires_in":3600}`), &created); code != 201 || created["token"] == "" || created["note"] != "ci" || created["expires_at"] == nil {
		t.Fatalf("create: %d %v", code, created)
	}
	var list map[string][]map[string]any
	if code := apiJSON(t, "GET", h.URL+"hub/api/users/bunny_alice/tokens", created["token"].(string), nil, &list); code != 200 || len(list["api_tokens"]) != 2 {
		t.Fatalf("list: %d %v", code, list)
	}
	for _, tok := range list["api_tokens"] {
		if _, leaked := tok["token"]; leaked {
			t.Fatalf("list shows a secret: %v", tok)
		}
	}
	if code := apiJSON(t, "DELETE", h.URL+"hub/api/users/bunny_alice/tokens/"+created["id"].(string), first, nil, nil); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	if code := apiJSON(t, "GET", h.URL+"hub/api/user", created["token"].(string), nil, nil); code != 403 {
		t.Fatalf("deleted token still works: %d", code)
	}
	// A server's token cannot mint tokens.
	var e map[string]any
	if code := apiJSON(t, "POST", h.URL+"hub/api/users/bunny_alice/tokens", serverToken(t, h, "bunny_alice"), strings.NewReader(`{}`), &e); code != 403 {
		t.Fatalf("server token minting: %d %v", code, e)
	}
}
