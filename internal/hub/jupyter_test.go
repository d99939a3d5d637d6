package hub

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/ohtkhub/ohtkhub/internal/config"
	"github.com/ohtkhub/ohtkhub/internal/djangopeer"
	"github.com/ohtkhub/ohtkhub/internal/spawner"
	"github.com/ohtkhub/ohtkhub/internal/store"
	"github.com/ohtkhub/ohtkhub/internal/web"
)

// requireJupyter fails the test (it does not skip) when Debian's jupyterhub-singleuser is
// missing: CI installs it.
func requireJupyter(t testing.TB) {
	t.Helper()
	if _, err := lookJupyter(); err != nil {
		t.Fatal(err)
	}
}

func lookJupyter() (string, error) {
	p, err := exec.LookPath("jupyterhub-singleuser")
	if err != nil {
		return "", errors.New("jupyterhub-singleuser is missing; install it with: apt-get install -y jupyterhub jupyter-notebook python3-jupyter-server")
	}
	return p, nil
}

var anyHiddenInput = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)"`)

// peerTenant configures a hub tenant for a Django OAuth Toolkit peer the way an OHTK tenant
// is configured.
func peerTenant(key string, p *djangopeer.Peer) config.Tenant {
	return config.Tenant{Key: key, Label: p.TenantName, ClientID: p.ClientID, ClientSecret: p.ClientSecret,
		AuthorizeURL: p.URL + "/o/authorize/", TokenURL: p.URL + "/o/token/", UserinfoURL: p.URL + "/api/userinfo/",
		APIURL: p.URL, Scopes: []string{"read"}, UsernameStripPrefix: p.TenantName + "_", AllowAll: true, AdminIfSuperuser: true}
}

// loginDjango signs the browser in to the hub through the peer's real login page.
func loginDjango(t testing.TB, b *browser, h *testHub, key string, p *djangopeer.Peer, username string) {
	t.Helper()
	loginForm(t, b, h, key, username, p.Users[username])
}

// loginForm signs the browser in to the hub with a tenant whose provider shows a
// Django-style login form (DOT, or the api's built-in provider).
func loginForm(t testing.TB, b *browser, h *testHub, key, username, password string) {
	t.Helper()
	resp, page, at := b.follow(h.URL + "hub/" + key + "/oauth_login")
	if resp.StatusCode != http.StatusOK || !strings.Contains(at, "/accounts/login/") {
		t.Fatalf("expected the tenant's login page, got %s at %s", resp.Status, at)
	}
	form := url.Values{}
	for _, m := range anyHiddenInput.FindAllStringSubmatch(page, -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	form.Set("username", username)
	form.Set("password", password)
	resp, page = b.post(at, form)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("tenant login as %s: %s\n%s", username, resp.Status, page)
	}
	next, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	resp, page, at = b.follow(next.String())
	if resp.StatusCode != http.StatusOK || at != h.URL+"hub/home" {
		t.Fatalf("after tenant login: %s at %s\n%s", resp.Status, at, page)
	}
}

// spawn starts the browser's user's server and follows the progress events until ready.
func spawn(t testing.TB, b *browser, h *testHub, name string) []spawner.Event {
	t.Helper()
	resp, _ := b.get(h.URL + "hub/spawn")
	wantPending := "/hub/spawn-pending/" + web.PathEscape(name)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != wantPending {
		t.Fatalf("GET /hub/spawn: %s to %q, want %s", resp.Status, resp.Header.Get("Location"), wantPending)
	}
	resp, page := b.get(h.Host + wantPending)
	eventsURL := "/hub/api/users/" + web.PathEscape(name) + "/server/progress"
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `data-events="`+eventsURL+`"`) {
		t.Fatalf("spawn-pending page: %s\n%s", resp.Status, page)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 120*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.Host+eventsURL, nil)
	stream := &http.Client{Jar: b.client.Jar}
	resp, err := stream.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("progress Content-Type %q", ct)
	}
	var events []spawner.Event
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var e spawner.Event
		if err := json.Unmarshal([]byte(data), &e); err != nil {
			t.Fatalf("bad event %q", data)
		}
		events = append(events, e)
		if e.Failed {
			t.Fatalf("spawn failed: %+v", events)
		}
		if e.Ready {
			break
		}
	}
	last := events[len(events)-1]
	wantURL := "/user/" + web.PathEscape(name) + "/"
	if !last.Ready || last.URL != wantURL || last.Progress != 100 {
		t.Fatalf("last event %+v, want ready at %s", last, wantURL)
	}
	return events
}

// runCode starts a kernel through the proxy with the browser's cookies and runs code over
// the kernel's WebSocket, returning what it printed.
func runCode(t testing.TB, b *browser, h *testHub, name, code string) string {
	t.Helper()
	prefix := h.Host + "/user/" + web.PathEscape(name) + "/"
	xsrf := b.cookie(prefix, "_xsrf")
	if xsrf == "" {
		t.Fatalf("no _xsrf cookie from the server at %s", prefix)
	}
	req, _ := http.NewRequest(http.MethodPost, prefix+"api/kernels", strings.NewReader(`{"name":"python3"}`))
	req.Header.Set("X-XSRFToken", xsrf)
	req.Header.Set("Content-Type", "application/json")
	resp, body := b.do(req)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST api/kernels: %s %s", resp.Status, body)
	}
	var kernel struct{ ID string }
	json.Unmarshal([]byte(body), &kernel)

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	wsURL := "ws" + strings.TrimPrefix(prefix, "http") + "api/kernels/" + kernel.ID + "/channels"
	conn, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{
		HTTPClient: &http.Client{Jar: b.client.Jar},
		HTTPHeader: http.Header{"Origin": {h.Host}},
	})
	if err != nil {
		t.Fatalf("kernel WebSocket: %v", err)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(1 << 22)
	msgID := "exec-" + store.NewSecret()[:8]
	msg := map[string]any{
		"header":        map[string]any{"msg_id": msgID, "username": name, "session": "test-session", "msg_type": "execute_request", "version": "5.3", "date": time.Now().UTC().Format(time.RFC3339)},
		"parent_header": map[string]any{}, "metadata": map[string]any{}, "channel": "shell", "buffers": []any{},
		"content": map[string]any{"code": code, "silent": false, "store_history": false, "user_expressions": map[string]any{}, "allow_stdin": false, "stop_on_error": true},
	}
	out, _ := json.Marshal(msg)
	if err := conn.Write(ctx, websocket.MessageText, out); err != nil {
		t.Fatal(err)
	}
	var printed strings.Builder
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("reading kernel messages: %v (printed so far %q)", err, printed.String())
		}
		var m struct {
			Header struct {
				MsgType string `json:"msg_type"`
			} `json:"header"`
			ParentHeader struct {
				MsgID string `json:"msg_id"`
			} `json:"parent_header"`
			Content map[string]any `json:"content"`
		}
		if json.Unmarshal(data, &m) != nil || m.ParentHeader.MsgID != msgID {
			continue
		}
		switch m.Header.MsgType {
		case "stream":
			s, _ := m.Content["text"].(string)
			printed.WriteString(s)
		case "error":
			t.Fatalf("kernel error: %v", m.Content)
		case "status":
			if m.Content["execution_state"] == "idle" {
				conn.Close(websocket.StatusNormalClosure, "")
				return printed.String()
			}
		}
	}
}

// TestIntegrationJupyter drives real parts end to end: two Django OAuth Toolkit tenants whose
// display names have spaces, real jupyterhub-singleuser servers spawned by the local spawner,
// reached through the proxy, a kernel running code over the WebSocket with the ohtk module and
// the tenant's token, and one user unable to reach the other's server.
func TestIntegrationJupyter(t *testing.T) {
	requireJupyter(t)
	ln := listen(t)
	host := "http://" + ln.Addr().String()
	bunnyPeer := djangopeer.Start(t, djangopeer.Options{RedirectURI: host + "/hub/bunny/oauth_callback", SkipAuthorization: true, TenantName: "Bunny Province"})
	bonPeer := djangopeer.Start(t, djangopeer.Options{RedirectURI: host + "/hub/bon/oauth_callback", SkipAuthorization: true, TenantName: "Bon District"})
	h := startHub(t, ln, "/", config.Hub{Tenants: []config.Tenant{peerTenant("bunny", bunnyPeer), peerTenant("bon", bonPeer)}})

	alice := newBrowser(t)
	loginDjango(t, alice, h, "bunny", bunnyPeer, "alice")
	events := spawn(t, alice, h, "bunny_alice")
	if len(events) < 3 {
		t.Errorf("few progress events: %+v", events)
	}

	// The server's own OAuth with the hub, through the proxy, ends on the classic UI.
	resp, page, at := alice.follow(h.URL + "user/bunny_alice/")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(at, h.URL+"user/bunny_alice/tree") {
		t.Fatalf("opening the server: %s at %s\n%.500s", resp.Status, at, page)
	}

	stored, err := h.Hub.store.GetTenantToken(t.Context(), "bunny_alice")
	if err != nil {
		t.Fatal(err)
	}
	got := runCode(t, alice, h, "bunny_alice", "import os, ohtk\nprint(6 * 7, os.environ['JUPYTERHUB_USER'], ohtk.tenant(), ohtk.token() == os.environ['OHTK_ACCESS_TOKEN'], ohtk.api_url())")
	want := "42 bunny_alice bunny True " + bunnyPeer.URL + "\n"
	if got != want {
		t.Fatalf("kernel printed %q, want %q", got, want)
	}
	_ = stored

	// bon_alice (same username, other tenant) cannot reach bunny_alice's server.
	bob := newBrowser(t)
	loginDjango(t, bob, h, "bon", bonPeer, "alice")
	resp, page = bob.get(h.URL + "user/bunny_alice/tree")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "This server belongs to another user.") {
		t.Errorf("bon_alice opening bunny_alice's server: %s\n%.300s", resp.Status, page)
	}
	resp, page = bob.get(h.URL + "user/bunny_alice/api/kernels")
	if resp.StatusCode != http.StatusForbidden || strings.TrimSpace(page) != `{"message":"This server belongs to another user.","status":403}` {
		t.Errorf("bon_alice calling bunny_alice's API: %s %s", resp.Status, page)
	}
	resp, page = bob.get(h.URL + "hub/api/oauth2/authorize?client_id=jupyterhub-user-bunny_alice&redirect_uri=%2Fuser%2Fbunny_alice%2Foauth_callback&response_type=code&state=x")
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("bon_alice authorizing at bunny_alice's server: %s %s", resp.Status, page)
	}
	// With an API token of bon_alice, the proxy lets the request through and the server itself
	// refuses it after asking the hub.
	bobToken := createToken(t, bob, h)
	req, _ := http.NewRequest(http.MethodGet, h.URL+"user/bunny_alice/api/kernels", nil)
	req.Header.Set("Authorization", "token "+bobToken)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("bon_alice's token at bunny_alice's server: %s", resp.Status)
	}
	var errBody map[string]any
	if code := apiJSON(t, "GET", h.URL+"hub/api/users/bunny_alice/tenant-token", bobToken, nil, &errBody); code != http.StatusForbidden {
		t.Errorf("bon_alice reading bunny_alice's tenant token: %d %v", code, errBody)
	}

	// Stop: the server is gone, the pages say so without redirect loops.
	resp, page = alice.post(h.URL+"hub/stop", url.Values{"_xsrf": {alice.xsrf(h)}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST /hub/stop: %s %s", resp.Status, page)
	}
	if st := h.Hub.servers.Status("bunny_alice"); st.State != spawner.StateStopped {
		t.Fatalf("after stop: %+v", st)
	}
	resp, page = alice.get(h.URL + "user/bunny_alice/tree")
	if resp.StatusCode != http.StatusFailedDependency || !strings.Contains(page, `<button id="start" type="submit">Start my server</button>`) {
		t.Errorf("stopped server page: %s\n%.500s", resp.Status, page)
	}
	resp, page = alice.get(h.URL + "user/bunny_alice/api/status")
	if resp.StatusCode != http.StatusFailedDependency || strings.TrimSpace(page) != `{"message":"The server of bunny_alice is not running.","status":424}` {
		t.Errorf("stopped server API: %s %s", resp.Status, page)
	}
}

// createToken requests an API token on /hub/token.
func createToken(t testing.TB, b *browser, h *testHub) string {
	t.Helper()
	resp, page := b.post(h.URL+"hub/token", url.Values{"_xsrf": {b.xsrf(h)}, "note": {"test"}})
	m := regexp.MustCompile(`<code id="new-token">([^<]+)</code>`).FindStringSubmatch(page)
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("POST /hub/token: %s\n%s", resp.Status, page)
	}
	return m[1]
}

// TestIntegrationPrefixAndThaiUser: behind a path prefix, a user whose name has Thai
// characters and a space signs in at a DOT tenant, spawns a real server and runs code; every
// URL is under the prefix with the name percent-encoded.
func TestIntegrationPrefixAndThaiUser(t *testing.T) {
	requireJupyter(t)
	ln := listen(t)
	host := "http://" + ln.Addr().String()
	peer := djangopeer.Start(t, djangopeer.Options{RedirectURI: host + "/notebooks/hub/bunny/oauth_callback", SkipAuthorization: true, TenantName: "Bunny Province"})
	h := startHub(t, ln, "/notebooks/", config.Hub{Tenants: []config.Tenant{peerTenant("bunny", peer)}})

	b := newBrowser(t)
	loginDjango(t, b, h, "bunny", peer, "สมชาย ใจดี")
	name := "bunny_สมชาย ใจดี"
	escaped := "bunny_%E0%B8%AA%E0%B8%A1%E0%B8%8A%E0%B8%B2%E0%B8%A2%20%E0%B9%83%E0%B8%88%E0%B8%94%E0%B8%B5"
	if web.PathEscape(name) != escaped {
		t.Fatalf("PathEscape(%q) = %q", name, web.PathEscape(name))
	}
	u, err := h.Hub.store.User(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^bunny-[0-9a-f]{8}$`).MatchString(u.Slug) {
		t.Errorf("slug %q", u.Slug)
	}

	resp, _ := b.get(h.URL + "hub/spawn")
	if loc := resp.Header.Get("Location"); loc != "/notebooks/hub/spawn-pending/"+escaped {
		t.Fatalf("spawn redirected to %q", loc)
	}
	h.Host += "/notebooks" // spawn and runCode build URLs from Host
	spawnPrefixed(t, b, h, name, escaped)

	resp, page, at := b.follow(h.URL + "user/" + escaped + "/")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(at, h.URL+"user/"+escaped+"/tree") {
		t.Fatalf("opening the server: %s at %s\n%.500s", resp.Status, at, page)
	}
	got := runCode(t, b, h, name, "import os\nprint(os.environ['JUPYTERHUB_USER'], os.environ['JUPYTERHUB_SERVICE_PREFIX'], os.getcwd().endswith('/users/"+u.Slug+"'))")
	want := name + " /notebooks/user/" + escaped + "/ True\n"
	if got != want {
		t.Fatalf("kernel printed %q, want %q", got, want)
	}
	// The hub answers under the prefix only.
	var v map[string]string
	if code := apiJSON(t, "GET", h.URL+"hub/api", "", nil, &v); code != 200 || v["version"] != "3.1.1" {
		t.Errorf("GET /notebooks/hub/api: %d %v", code, v)
	}
	if code := apiJSON(t, "GET", strings.TrimSuffix(h.URL, "notebooks/")+"hub/api", "", nil, nil); code != http.StatusNotFound {
		t.Errorf("GET /hub/api outside the prefix: %d", code)
	}
}

// spawnPrefixed is spawn for a hub with a base path (h.Host ends with it).
func spawnPrefixed(t testing.TB, b *browser, h *testHub, name, escaped string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 120*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.URL+"hub/api/users/"+escaped+"/server/progress", nil)
	resp, err := (&http.Client{Jar: b.client.Jar}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var e spawner.Event
		json.Unmarshal([]byte(data), &e)
		if e.Failed {
			t.Fatalf("spawn failed: %+v", e)
		}
		if e.Ready {
			if e.URL != "/notebooks/user/"+escaped+"/" {
				t.Fatalf("ready URL %q", e.URL)
			}
			return
		}
	}
	t.Fatalf("progress stream ended without ready: %v", sc.Err())
}

// TestIntegrationJupyterIsolation: as root, the real servers of bunny_alice and bon_alice (the
// same username in two tenants) run under uids of their own; code in bunny_alice's kernel
// cannot read bon_alice's environment (her hub API and tenant tokens), list her directory,
// read the hub's database or list the data directory, while bunny_alice saves notebooks in
// her own directory through the server and her starter files are hers.
func TestIntegrationJupyterIsolation(t *testing.T) {
	requireJupyter(t)
	if os.Geteuid() != 0 {
		t.Skip("isolating users' servers needs the hub to run as root")
	}
	ln := listen(t)
	host := "http://" + ln.Addr().String()
	bunnyPeer := djangopeer.Start(t, djangopeer.Options{RedirectURI: host + "/hub/bunny/oauth_callback", SkipAuthorization: true, TenantName: "Bunny Province"})
	bonPeer := djangopeer.Start(t, djangopeer.Options{RedirectURI: host + "/hub/bon/oauth_callback", SkipAuthorization: true, TenantName: "Bon District"})
	skel := t.TempDir()
	os.WriteFile(filepath.Join(skel, "starter.ipynb"), []byte(`{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}`), 0o644)
	cfg := config.Hub{Tenants: []config.Tenant{peerTenant("bunny", bunnyPeer), peerTenant("bon", bonPeer)}}
	cfg.Spawner.Local.SkeletonDir = skel
	h := startHub(t, ln, "/", cfg)

	alice := newBrowser(t)
	loginDjango(t, alice, h, "bunny", bunnyPeer, "alice")
	spawn(t, alice, h, "bunny_alice")
	bon := newBrowser(t)
	loginDjango(t, bon, h, "bon", bonPeer, "alice")
	spawn(t, bon, h, "bon_alice")
	if resp, page, at := alice.follow(h.URL + "user/bunny_alice/"); resp.StatusCode != http.StatusOK || !strings.HasPrefix(at, h.URL+"user/bunny_alice/tree") {
		t.Fatalf("opening the server: %s at %s\n%.500s", resp.Status, at, page)
	}

	ua, err := h.Hub.store.User(t.Context(), "bunny_alice")
	if err != nil {
		t.Fatal(err)
	}
	ub, err := h.Hub.store.User(t.Context(), "bon_alice")
	if err != nil {
		t.Fatal(err)
	}
	base := h.Hub.cfg.Spawner.Local.UIDBase
	uidA, uidB := base+ua.Number, base+ub.Number
	if uidA == uidB {
		t.Fatalf("both users have uid %d", uidA)
	}
	pidB := serverProcess(t, h, "bon_alice")
	if st, err := os.Stat("/proc/" + strconv.Itoa(pidB)); err != nil || st.Sys().(*syscall.Stat_t).Uid != uint32(uidB) {
		t.Fatalf("bon_alice's server %d: %v, want uid %d", pidB, err, uidB)
	}
	users := filepath.Join(h.Hub.cfg.DataDir, "users")
	code := fmt.Sprintf(`import os
def probe(p):
    try:
        os.listdir(p) if os.path.isdir(p) else open(p, 'rb').read()
        return 'ok'
    except OSError as e:
        return type(e).__name__
print(os.getuid(), os.getgid(), os.getgroups(), os.environ['HOME'] == os.getcwd() == %q, os.environ['USER'])
for p in [%q, %q, %q, %q, %q, %q]:
    print(probe(p))
`, filepath.Join(users, ua.Slug),
		"/proc/"+strconv.Itoa(pidB)+"/environ", filepath.Join(users, ub.Slug), filepath.Join(h.Hub.cfg.DataDir, "hub.db"),
		h.Hub.cfg.DataDir, filepath.Join(h.Hub.cfg.DataDir, "logs", ub.Slug+".log"), filepath.Join(users, ua.Slug, "starter.ipynb"))
	got := runCode(t, alice, h, "bunny_alice", code)
	want := fmt.Sprintf("%d %d [] True %s\nPermissionError\nPermissionError\nPermissionError\nPermissionError\nPermissionError\nok\n", uidA, uidA, ua.Slug)
	if got != want {
		t.Errorf("bunny_alice's kernel printed\n%s\nwant\n%s", got, want)
	}

	// Saving a notebook through the server writes it into her directory as her.
	prefix := h.URL + "user/bunny_alice/"
	nb := `{"type": "notebook", "content": {"cells": [{"cell_type": "code", "source": "print('mine')", "metadata": {}, "outputs": [], "execution_count": null}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}}`
	req, _ := http.NewRequest(http.MethodPut, prefix+"api/contents/saved.ipynb", strings.NewReader(nb))
	req.Header.Set("X-XSRFToken", alice.cookie(prefix, "_xsrf"))
	req.Header.Set("Content-Type", "application/json")
	if resp, body := alice.do(req); resp.StatusCode != http.StatusCreated {
		t.Fatalf("save a notebook: %s %s", resp.Status, body)
	}
	for _, f := range []string{"saved.ipynb", "starter.ipynb"} {
		fi, err := os.Stat(filepath.Join(users, ua.Slug, f))
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != uint32(uidA) || st.Gid != uint32(uidA) {
			t.Errorf("%s owned by %d:%d, want %d", f, st.Uid, st.Gid, uidA)
		}
	}
}

// serverProcess returns the process id of a user's running server.
func serverProcess(t *testing.T, h *testHub, name string) int {
	t.Helper()
	pid, err := strconv.Atoi(h.Hub.servers.Status(name).ID)
	if err != nil || pid <= 0 {
		t.Fatalf("%s has no running server process", name)
	}
	return pid
}

// TestIntegrationJupyterSquatter: another user's code that binds the port of a starting real
// jupyterhub-singleuser before the server does (the server takes a second to start) and
// answers HTTP is not taken for the server: the spawn fails with the reason, and the proxy
// never sends the user's browser to it.
func TestIntegrationJupyterSquatter(t *testing.T) {
	requireJupyter(t)
	if os.Geteuid() != 0 {
		t.Skip("isolating users' servers needs the hub to run as root")
	}
	bunny := newFakeProvider(t, "Bunny Province")
	h := startHub(t, listen(t), "/", config.Hub{Tenants: []config.Tenant{bunny.tenant("bunny")}})
	br := newBrowser(t)
	loginFake(t, br, h, bunny, "bunny", 1, "alice")
	br.get(h.URL + "hub/spawn")

	// As root, read the starting server's address from its environment (no other uid can).
	var port string
	for deadline := time.Now().Add(10 * time.Second); port == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		id := h.Hub.servers.Status("bunny_alice").ID
		environ, _ := os.ReadFile("/proc/" + id + "/environ")
		for _, v := range strings.Split(string(environ), "\x00") {
			if s, ok := strings.CutPrefix(v, "JUPYTERHUB_SERVICE_URL="); ok {
				if u, err := url.Parse(s); err == nil {
					port = u.Port()
				}
			}
		}
	}
	if port == "" {
		t.Fatal("no starting server of bunny_alice")
	}
	// Passed as -c: the other uid need not be able to read the repository.
	code, err := os.ReadFile("../../testdata/squatter.py")
	if err != nil {
		t.Fatal(err)
	}
	squatter := exec.Command("/usr/bin/python3", "-c", string(code), port)
	squatter.Dir = "/"
	squatter.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: testUIDBase + 99, Gid: testUIDBase + 99, Groups: []uint32{}}}
	out, _ := squatter.StdoutPipe()
	if err := squatter.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { squatter.Process.Kill(); squatter.Wait() })
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "bound\n" {
		t.Fatalf("the squatter could not bind port %s before the server: %q %v", port, line, err)
	}

	var st spawner.Status
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if st = h.Hub.servers.Status("bunny_alice"); st.State != spawner.StatePending {
			break
		}
	}
	if st.State == spawner.StateRunning || !strings.Contains(st.LastError, "another process listens at the server's address") {
		t.Fatalf("server %s, last error %q: the squatter was taken for bunny_alice's server", st.State, st.LastError)
	}
	if resp, body := br.get(h.URL + "user/bunny_alice/api/status"); strings.Contains(body, "squatter") {
		t.Fatalf("the proxy sent bunny_alice to the squatter: %s %s", resp.Status, body)
	}
}
