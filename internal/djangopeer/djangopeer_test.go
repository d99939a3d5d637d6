package djangopeer

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

var hiddenInput = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)"`)

// hiddenFields returns the hidden inputs of an HTML form, as a browser would submit them.
func hiddenFields(page string) url.Values {
	v := url.Values{}
	for _, m := range hiddenInput.FindAllStringSubmatch(page, -1) {
		v.Set(m[1], html.UnescapeString(m[2]))
	}
	return v
}

type browser struct {
	t *testing.T
	c *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, c: &http.Client{
		Jar:     jar,
		Timeout: 30 * time.Second,
		// Redirects are followed by hand, to catch the one to the client's redirect URI.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (b *browser) do(req *http.Request) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return resp, string(body)
}

func (b *browser) get(u string) (*http.Response, string) {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return b.do(req)
}

func (b *browser) post(u string, form url.Values) (*http.Response, string) {
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Referer", u)
	return b.do(req)
}

// authorize drives the browser side of the authorization-code flow with PKCE S256 and
// returns the code the peer redirected to the client with.
func authorize(t *testing.T, p *Peer, redirectURI, username, password, verifier string, wantConsent bool) string {
	t.Helper()
	b := newBrowser(t)
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {p.ClientID},
		"redirect_uri":          {redirectURI},
		"scope":                 {"read"},
		"state":                 {"state-123"},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
	}
	authorizeURL := p.URL + "/o/authorize/?" + q.Encode()

	// Not logged in: DOT sends the browser to Django's login page, remembering where to return.
	resp, _ := b.get(authorizeURL)
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), "/accounts/login/?next=") {
		t.Fatalf("GET /o/authorize/ logged out: %s, Location %q", resp.Status, resp.Header.Get("Location"))
	}
	loginURL := p.URL + resp.Header.Get("Location")
	resp, page := b.get(loginURL)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET login: %s", resp.Status)
	}
	form := hiddenFields(page)
	if form.Get("csrfmiddlewaretoken") == "" {
		t.Fatalf("login page has no CSRF token:\n%s", page)
	}
	form.Set("username", username)
	form.Set("password", password)
	resp, page = b.post(loginURL, form)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("POST login: %s\n%s", resp.Status, page)
	}
	next := resp.Header.Get("Location")
	if !strings.HasPrefix(next, "/o/authorize/?") {
		t.Fatalf("login redirected to %q, want back to /o/authorize/", next)
	}

	resp, page = b.get(p.URL + next)
	if consent := resp.StatusCode == http.StatusOK; consent != wantConsent {
		t.Fatalf("consent page shown: %v, want %v (%s)", consent, wantConsent, resp.Status)
	}
	if resp.StatusCode == http.StatusOK {
		// The consent page: submit its hidden fields with the "Authorize" button.
		if !strings.Contains(page, `name="allow"`) {
			t.Fatalf("consent page without an allow button:\n%s", page)
		}
		consent := hiddenFields(page)
		consent.Set("allow", "Authorize")
		resp, page = b.post(p.URL+next, consent)
	}
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: %s\n%s", resp.Status, page)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != redirectURI {
		t.Fatalf("redirected to %q, want %q", got, redirectURI)
	}
	if loc.Query().Get("state") != "state-123" || loc.Query().Get("code") == "" {
		t.Fatalf("redirect %q lacks code or state", loc)
	}
	return loc.Query().Get("code")
}

type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	Scope        string `json:"scope"`
	Error        string `json:"error"`
}

func exchange(t *testing.T, p *Peer, form url.Values, basic bool) (int, tokenResponse) {
	t.Helper()
	if !basic {
		form.Set("client_id", p.ClientID)
		form.Set("client_secret", p.ClientSecret)
	}
	req, _ := http.NewRequest(http.MethodPost, p.URL+"/o/token/", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic {
		req.SetBasicAuth(url.QueryEscape(p.ClientID), url.QueryEscape(p.ClientSecret))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr tokenResponse
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, tr
}

type userinfo struct {
	ID          int64  `json:"id"`
	Username    string `json:"username"`
	Email       string `json:"email"`
	FirstName   string `json:"first_name"`
	LastName    string `json:"last_name"`
	IsSuperuser bool   `json:"is_superuser"`
	Authority   *struct {
		ID   int64  `json:"id"`
		Name string `json:"name"`
		Code string `json:"code"`
	} `json:"authority"`
}

func getUserinfo(t *testing.T, p *Peer, token string) (int, userinfo, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, p.URL+"/api/userinfo/", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var u userinfo
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &u); err != nil {
			t.Fatalf("userinfo %s: %v", body, err)
		}
	}
	return resp.StatusCode, u, string(body)
}

func TestDjangoPeerAuthorizationCode(t *testing.T) {
	const redirectURI = "http://127.0.0.1:9/hub/bunny/oauth_callback"
	p := Start(t, Options{RedirectURI: redirectURI, TenantName: "Bunny Province"})

	for _, tc := range []struct {
		username  string
		basic     bool
		authority string
		superuser bool
	}{
		{username: "alice", basic: true, authority: "5001"},
		{username: "สมชาย ใจดี", basic: false, authority: "500108"},
		{username: "admin", basic: true, superuser: true},
	} {
		t.Run(tc.username, func(t *testing.T) {
			verifier := rand.Text() + rand.Text()
			code := authorize(t, p, redirectURI, tc.username, p.Users[tc.username], verifier, true)

			// A wrong PKCE verifier is refused, and costs the code nothing: DOT only deletes a
			// grant once it was exchanged.
			status, tr := exchange(t, p, url.Values{"grant_type": {"authorization_code"}, "code": {code},
				"redirect_uri": {redirectURI}, "code_verifier": {verifier + "x"}}, tc.basic)
			if status != http.StatusBadRequest || tr.Error != "invalid_grant" {
				t.Errorf("wrong verifier: %d %+v, want 400 invalid_grant", status, tr)
			}

			status, tr = exchange(t, p, url.Values{"grant_type": {"authorization_code"}, "code": {code},
				"redirect_uri": {redirectURI}, "code_verifier": {verifier}}, tc.basic)
			if status != http.StatusOK || tr.AccessToken == "" || tr.RefreshToken == "" || tr.TokenType != "Bearer" || tr.Scope != "read" {
				t.Fatalf("code exchange: %d %+v", status, tr)
			}
			if tr.ExpiresIn != 36000 {
				t.Errorf("expires_in = %d, want DOT's default 36000", tr.ExpiresIn)
			}

			// Replaying the code fails.
			status, replay := exchange(t, p, url.Values{"grant_type": {"authorization_code"}, "code": {code},
				"redirect_uri": {redirectURI}, "code_verifier": {verifier}}, tc.basic)
			if status != http.StatusBadRequest || replay.Error != "invalid_grant" {
				t.Errorf("replayed code: %d %+v, want 400 invalid_grant", status, replay)
			}

			status, u, body := getUserinfo(t, p, tr.AccessToken)
			if status != http.StatusOK {
				t.Fatalf("userinfo: %d %s", status, body)
			}
			if want := "Bunny Province_" + tc.username; u.Username != want {
				t.Errorf("userinfo username %q, want %q", u.Username, want)
			}
			if u.IsSuperuser != tc.superuser || u.ID == 0 || u.Email == "" {
				t.Errorf("userinfo %+v", u)
			}
			switch {
			case tc.authority == "" && u.Authority != nil:
				t.Errorf("authority %+v, want null", u.Authority)
			case tc.authority != "" && (u.Authority == nil || u.Authority.Code != tc.authority || u.Authority.Name == "" || u.Authority.ID == 0):
				t.Errorf("authority %+v, want code %s", u.Authority, tc.authority)
			}
			if tc.authority == "" && !strings.Contains(body, `"authority": null`) {
				t.Errorf("userinfo body %s: authority should be null", body)
			}

			// The refresh token rotates.
			status, refreshed := exchange(t, p, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}}, tc.basic)
			if status != http.StatusOK || refreshed.AccessToken == "" || refreshed.RefreshToken == tr.RefreshToken {
				t.Errorf("refresh: %d %+v", status, refreshed)
			}
		})
	}

	// Without or with a bogus token userinfo is refused, as DOT's protected_resource does: 403.
	for _, token := range []string{"", "not-a-token"} {
		if status, _, body := getUserinfo(t, p, token); status != http.StatusForbidden {
			t.Errorf("userinfo with token %q: %d %s, want 403", token, status, body)
		}
	}

	// A wrong client secret is invalid_client with 401.
	status, tr := exchange(t, &Peer{URL: p.URL, ClientID: p.ClientID, ClientSecret: "wrong"},
		url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "redirect_uri": {redirectURI}}, true)
	if status != http.StatusUnauthorized || tr.Error != "invalid_client" {
		t.Errorf("wrong secret: %d %+v, want 401 invalid_client", status, tr)
	}
}

func TestDjangoPeerSkipAuthorizationAndLifetime(t *testing.T) {
	const redirectURI = "http://127.0.0.1:9/cb"
	p := Start(t, Options{RedirectURI: redirectURI, SkipAuthorization: true, TenantName: "ลาว Pilot", AccessTokenLifetime: time.Second})
	verifier := rand.Text() + rand.Text()
	code := authorize(t, p, redirectURI, "alice", p.Users["alice"], verifier, false)
	status, tr := exchange(t, p, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {redirectURI}, "code_verifier": {verifier}}, true)
	if status != http.StatusOK || tr.ExpiresIn != 1 {
		t.Fatalf("code exchange: %d %+v, want expires_in 1", status, tr)
	}
	if status, u, body := getUserinfo(t, p, tr.AccessToken); status != http.StatusOK || u.Username != "ลาว Pilot_alice" {
		t.Errorf("userinfo: %d %s", status, body)
	}
	time.Sleep(1500 * time.Millisecond) // the token expires in the peer's own clock
	if status, _, body := getUserinfo(t, p, tr.AccessToken); status != http.StatusForbidden {
		t.Errorf("userinfo with an expired token: %d %s, want 403", status, body)
	}
}

func TestDjangoPeerWrongPassword(t *testing.T) {
	p := Start(t, Options{})
	b := newBrowser(t)
	resp, page := b.get(p.URL + "/accounts/login/")
	if resp.StatusCode != http.StatusOK {
		t.Fatal(resp.Status)
	}
	form := hiddenFields(page)
	form.Set("username", "alice")
	form.Set("password", "wrong")
	resp, page = b.post(p.URL+"/accounts/login/", form)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Please enter a correct username and password") {
		t.Errorf("wrong password: %s\n%s", resp.Status, page)
	}
	// Without the CSRF token Django refuses the form.
	resp, _ = b.post(p.URL+"/accounts/login/", url.Values{"username": {"alice"}, "password": {p.Users["alice"]}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("login without CSRF token: %s, want 403", resp.Status)
	}
}
