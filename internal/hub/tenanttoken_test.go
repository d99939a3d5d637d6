package hub

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ohtkhub/ohtkhub/internal/config"
	"github.com/ohtkhub/ohtkhub/internal/djangopeer"
)

type tenantTokenAnswer struct {
	AccessToken string  `json:"access_token"`
	TokenType   string  `json:"token_type"`
	ExpiresAt   *string `json:"expires_at"`
	APIURL      string  `json:"api_url"`
	Tenant      string  `json:"tenant"`
	Message     string  `json:"message"`
}

// peerUserinfo reports whether the peer accepts an access token.
func peerUserinfo(t testing.TB, p *djangopeer.Peer, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, p.URL+"/api/userinfo/", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestIntegrationTenantTokenRefreshDOT: against real Django OAuth Toolkit (which rotates
// refresh tokens), a token expiring within five minutes is refreshed before it is handed out,
// and racing refreshes for one user never lose the rotated refresh token.
func TestIntegrationTenantTokenRefreshDOT(t *testing.T) {
	ln := listen(t)
	host := "http://" + ln.Addr().String()
	// Tokens live one minute, always inside the five-minute refresh window.
	peer := djangopeer.Start(t, djangopeer.Options{RedirectURI: host + "/hub/bunny/oauth_callback", SkipAuthorization: true,
		TenantName: "Bunny Province", AccessTokenLifetime: time.Minute})
	h := startHub(t, ln, "/", config.Hub{Tenants: []config.Tenant{peerTenant("bunny", peer)}})
	b := newBrowser(t)
	loginDjango(t, b, h, "bunny", peer, "alice")
	first, err := h.Hub.store.GetTenantToken(t.Context(), "bunny_alice")
	if err != nil {
		t.Fatal(err)
	}
	token := createToken(t, b, h)

	var got tenantTokenAnswer
	if code := apiJSON(t, "GET", h.URL+"hub/api/users/bunny_alice/tenant-token", token, nil, &got); code != http.StatusOK {
		t.Fatalf("tenant-token: %d %+v", code, got)
	}
	if got.AccessToken == first.AccessToken || got.TokenType != "Bearer" || got.APIURL != peer.URL || got.Tenant != "bunny" || got.ExpiresAt == nil {
		t.Fatalf("tenant-token answer %+v; login token %q should have been refreshed", got, first.AccessToken)
	}
	exp, err := time.Parse(time.RFC3339, *got.ExpiresAt)
	if err != nil || time.Until(exp) < 30*time.Second || time.Until(exp) > 2*time.Minute {
		t.Errorf("expires_at %q, want about a minute from now", *got.ExpiresAt)
	}
	if code, body := peerUserinfo(t, peer, got.AccessToken); code != http.StatusOK || !strings.Contains(body, `"username": "Bunny Province_alice"`) && !strings.Contains(body, `"username":"Bunny Province_alice"`) {
		t.Errorf("refreshed token at the tenant: %d %s", code, body)
	}
	second, _ := h.Hub.store.GetTenantToken(t.Context(), "bunny_alice")
	if second.RefreshToken == first.RefreshToken {
		t.Errorf("the rotated refresh token was not stored")
	}

	// Eight refreshes at once: each must succeed, and the refresh token left in the store must
	// still be the live one.
	var wg sync.WaitGroup
	codes := make([]int, 8)
	answers := make([]tenantTokenAnswer, 8)
	for i := range codes {
		wg.Go(func() {
			codes[i] = apiJSON(t, "GET", h.URL+"hub/api/users/bunny_alice/tenant-token", token, nil, &answers[i])
		})
	}
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusOK {
			t.Errorf("concurrent refresh %d: %d %+v", i, c, answers[i])
		}
	}
	var after tenantTokenAnswer
	if code := apiJSON(t, "GET", h.URL+"hub/api/users/bunny_alice/tenant-token", token, nil, &after); code != http.StatusOK {
		t.Fatalf("refresh after the race: %d %+v", code, after)
	}
	if code, body := peerUserinfo(t, peer, after.AccessToken); code != http.StatusOK {
		t.Errorf("token after the race at the tenant: %d %s", code, body)
	}
}

// TestTenantTokenAuthorization: only the server's API token or the user's own API token may
// read a user's tenant token.
func TestTenantTokenAuthorization(t *testing.T) {
	h, bunny, _ := loginHub(t, "/")
	alice := newBrowser(t)
	loginFake(t, alice, h, bunny, "bunny", 1, "alice")
	aliceToken := createToken(t, alice, h)
	eve := newBrowser(t)
	loginFake(t, eve, h, bunny, "bunny", 2, "eve")
	eveToken := createToken(t, eve, h)

	var got tenantTokenAnswer
	if code := apiJSON(t, "GET", h.URL+"hub/api/users/bunny_alice/tenant-token", aliceToken, nil, &got); code != 200 || !bunny.valid(got.AccessToken) {
		t.Fatalf("alice's own token: %d %+v", code, got)
	}
	for _, tc := range []struct {
		name, token string
		status      int
		message     string
	}{
		{"another user's token", eveToken, 403, "Not allowed for this user."},
		{"no token", "", 403, "Missing or invalid credentials."},
		{"a made-up token", "nope", 403, "Missing or invalid credentials."},
	} {
		var e tenantTokenAnswer
		if code := apiJSON(t, "GET", h.URL+"hub/api/users/bunny_alice/tenant-token", tc.token, nil, &e); code != tc.status || e.Message != tc.message {
			t.Errorf("%s: %d %q, want %d %q", tc.name, code, e.Message, tc.status, tc.message)
		}
	}
	// A browser session alone is not enough: notebooks use tokens.
	resp, body := alice.get(h.URL + "hub/api/users/bunny_alice/tenant-token")
	if resp.StatusCode != 403 {
		t.Errorf("session-authenticated tenant-token: %s %s", resp.Status, body)
	}
}
