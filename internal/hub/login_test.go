package hub

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ohtkhub/ohtkhub/internal/config"
	"github.com/ohtkhub/ohtkhub/internal/session"
)

// loginHub is a hub with two fake tenants, bunny and bon, whose local spawner command is
// never run by these tests.
func loginHub(t testing.TB, base string) (*testHub, *fakeProvider, *fakeProvider) {
	t.Helper()
	bunny := newFakeProvider(t, "Bunny Province")
	bon := newFakeProvider(t, "Bon <b>District</b>")
	ln := listen(t)
	cfg := config.Hub{Tenants: []config.Tenant{bunny.tenant("bunny"), bon.tenant("bon")}}
	return startHub(t, ln, base, cfg), bunny, bon
}

func TestLoginPageListsTenantsEscaped(t *testing.T) {
	h, _, _ := loginHub(t, "/")
	b := newBrowser(t)
	resp, body := b.get(h.URL + "hub/login?next=%2Fuser%2Fbunny_alice%2Ftree")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /hub/login: %s", resp.Status)
	}
	for _, want := range []string{
		`href="/hub/bunny/oauth_login?next=%2fuser%2fbunny_alice%2ftree">Sign in with Bunny Province</a>`,
		`Sign in with Bon &lt;b&gt;District&lt;/b&gt;</a>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("login page lacks %s:\n%s", want, body)
		}
	}
	if got := resp.Header.Get("Content-Security-Policy"); got != "frame-ancestors 'none'" {
		t.Errorf("CSP = %q", got)
	}
}

func TestLoginFlow(t *testing.T) {
	h, bunny, _ := loginHub(t, "/")
	b := newBrowser(t)
	bunny.loginAs(7, "alice", false)
	resp, _ := b.get(h.URL + "hub/bunny/oauth_login")
	resp, _ = b.get(resp.Header.Get("Location"))
	resp, _ = b.get(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/hub/home" {
		t.Fatalf("callback: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
	var c *http.Cookie
	for _, x := range resp.Cookies() {
		if x.Name == session.CookieName {
			c = x
		}
	}
	resp, body, _ := b.follow(h.URL + "hub/home")
	if !strings.Contains(body, `<span class="who">bunny_alice</span>`) || !strings.Contains(body, "Signed in through Bunny Province.") {
		t.Fatalf("home page does not show the user:\n%s", body)
	}
	if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Secure {
		t.Fatalf("session cookie = %+v", c)
	}

	var me map[string]any
	req, _ := http.NewRequest("GET", h.URL+"hub/api/user", nil)
	req.AddCookie(&http.Cookie{Name: session.CookieName, Value: c.Value})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /hub/api/user with the session: %s", resp.Status)
	}
	_ = me

	// Logout revokes the session server-side: the old cookie no longer works.
	resp, _, final := b.follow(h.URL + "hub/logout")
	if final != h.URL+"hub/login" || resp.StatusCode != 200 {
		t.Fatalf("logout ended at %s (%s)", final, resp.Status)
	}
	req, _ = http.NewRequest("GET", h.URL+"hub/home", nil)
	req.AddCookie(&http.Cookie{Name: session.CookieName, Value: c.Value})
	resp, err = (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), "/hub/login?next=") {
		t.Fatalf("old session after logout: %s %s", resp.Status, resp.Header.Get("Location"))
	}
}

func TestUnauthenticatedGoesToLogin(t *testing.T) {
	h, _, _ := loginHub(t, "/")
	b := newBrowser(t)
	for _, tc := range []struct{ path, location string }{
		{"hub/home", "/hub/login?next=%2Fhub%2Fhome"},
		{"user/bunny_alice/tree", "/hub/login?next=%2Fuser%2Fbunny_alice%2Ftree"},
		{"hub/admin", "/hub/login?next=%2Fhub%2Fadmin"},
	} {
		resp, _ := b.get(h.URL + tc.path)
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != tc.location {
			t.Errorf("GET %s: %s Location %q, want 302 %q", tc.path, resp.Status, resp.Header.Get("Location"), tc.location)
		}
	}
	resp, body := b.get(h.URL + "user/bunny_alice/api/contents")
	if resp.StatusCode != http.StatusForbidden || strings.TrimSpace(body) != `{"message":"Not signed in.","status":403}` {
		t.Errorf("anonymous API request: %s %s", resp.Status, body)
	}
	resp, body = b.get(h.URL + "hub/api/user")
	if resp.StatusCode != http.StatusForbidden || strings.TrimSpace(body) != `{"status":403,"message":"Missing or invalid credentials."}` {
		t.Errorf("anonymous /hub/api/user: %s %s", resp.Status, body)
	}
}

// TestTamperedStateAndReplayRejected: a callback is accepted once, only with the state this
// browser was given.
func TestTamperedStateAndReplayRejected(t *testing.T) {
	h, bunny, _ := loginHub(t, "/")
	b := newBrowser(t)
	bunny.loginAs(1, "alice", false)
	resp, _ := b.get(h.URL + "hub/bunny/oauth_login")
	authURL, _ := url.Parse(resp.Header.Get("Location"))
	if authURL.Query().Get("code_challenge_method") != "S256" || authURL.Query().Get("state") == "" {
		t.Fatalf("authorize URL without PKCE or state: %s", authURL)
	}
	resp, _ = b.get(authURL.String())
	callback, _ := url.Parse(resp.Header.Get("Location"))

	tampered := *callback
	q := tampered.Query()
	q.Set("state", q.Get("state")+"x")
	tampered.RawQuery = q.Encode()
	resp, body := b.get(tampered.String())
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "The sign-in state does not match this browser.") {
		t.Fatalf("tampered state: %s\n%s", resp.Status, body)
	}

	// Another browser replaying the callback URL has no state cookie.
	resp, body = newBrowser(t).get(callback.String())
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("callback in another browser: %s\n%s", resp.Status, body)
	}

	resp, _ = b.get(callback.String())
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/hub/home" {
		t.Fatalf("genuine callback: %s %s", resp.Status, resp.Header.Get("Location"))
	}
	// Replaying it, even with the state cookie put back, is refused.
	b.client.Jar.SetCookies(callback, []*http.Cookie{{Name: stateCookieFor("bunny", callback.Query().Get("state")), Value: callback.Query().Get("state"), Path: "/hub/bunny/"}})
	resp, body = b.get(callback.String())
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "This sign-in has expired or was already used.") {
		t.Fatalf("replayed callback: %s\n%s", resp.Status, body)
	}
}

// TestTwoTenantsInTwoTabs: logins started in parallel in one browser both complete.
func TestTwoTenantsInTwoTabs(t *testing.T) {
	h, bunny, bon := loginHub(t, "/")
	b := newBrowser(t)
	bunny.loginAs(1, "alice", false)
	resp, _ := b.get(h.URL + "hub/bunny/oauth_login")
	tab1 := resp.Header.Get("Location")
	bon.loginAs(2, "alice", false)
	resp, _ = b.get(h.URL + "hub/bon/oauth_login")
	tab2 := resp.Header.Get("Location")

	resp, _ = b.get(tab2)
	resp, _ = b.get(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("bon callback: %s", resp.Status)
	}
	resp, _ = b.get(tab1)
	resp, _ = b.get(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("bunny callback after bon's: %s", resp.Status)
	}
	_, body, _ := b.follow(h.URL + "hub/home")
	if !strings.Contains(body, `<span class="who">bunny_alice</span>`) {
		t.Fatalf("last login should win:\n%s", body)
	}
}

func TestNextCannotLeaveTheHub(t *testing.T) {
	h, bunny, _ := loginHub(t, "/")
	// Browsers drop a tab from a URL: "/\t/evil.example" would be "//evil.example".
	for _, next := range []string{"https://evil.example/", "//evil.example/x", "/\\evil.example", "/\t/evil.example/x", "/hub/../../evil"} {
		b := newBrowser(t)
		bunny.loginAs(1, "alice", false)
		resp, _, final := b.follow(h.URL + "hub/bunny/oauth_login?next=" + url.QueryEscape(next))
		if final != h.URL+"hub/home" || resp.StatusCode != 200 {
			t.Errorf("next=%s ended at %s", next, final)
		}
	}
}

func stateCookieFor(key, state string) string {
	return "ohtkhub-oauth-" + key + "-" + hash12(state)
}
