package oauthserver

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ohtkhub/ohtkhub/internal/djangohash"
	"github.com/ohtkhub/ohtkhub/internal/ohtkdb"
	"github.com/ohtkhub/ohtkhub/internal/tenant"
)

// harness runs the provider for one tenant ("Tenant Alpha", as in OHTK's own userinfo test)
// on a real SQLite database, with a clock the test moves.
type harness struct {
	t      testing.TB
	store  *ohtkdb.Store
	db     *sql.DB
	srv    *Server
	ts     *httptest.Server
	tenant *tenant.Tenant

	mu  sync.Mutex
	now time.Time

	userID       int64
	authorityID  int64
	clientID     string
	clientSecret string
	redirectURI  string
}

const (
	testUser     = "oauth-user"
	testPassword = "oauth-pass-123"
)

func newHarness(t testing.TB) *harness {
	t.Helper()
	ctx := t.Context()
	store, err := ohtkdb.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	tn, err := store.CreateTenant(ctx, "alpha", "Tenant Alpha", []string{"alpha.example.org"})
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.TenantDB(ctx, "alpha")
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, store: store, db: db, now: time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC),
		redirectURI: "http://127.0.0.1:9/callback"}
	h.srv, err = New(Options{Store: store, SecretKey: []byte(strings.Repeat("k", 32)), Now: h.clock, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	h.tenant = &tenant.Tenant{Tenant: tn, DB: db}
	inner := h.srv.Handler()
	h.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inner.ServeHTTP(w, r.WithContext(tenant.NewContext(r.Context(), h.tenant)))
	}))
	t.Cleanup(h.ts.Close)

	now := ohtkdb.FormatTime(h.now)
	res := h.exec(`INSERT INTO accounts_authority (code, name, created_at, updated_at) VALUES ('TH', 'Thailand', $1, $1)`, now)
	h.authorityID, _ = res.LastInsertId()
	res = h.exec(`INSERT INTO accounts_user (password, is_superuser, username, first_name, last_name, email, is_active, date_joined)
		VALUES ($1, 1, $2, 'OAuth', 'User', 'oauth@example.com', 1, $3)`, djangohash.Make(testPassword, 1000), testUser, now)
	h.userID, _ = res.LastInsertId()
	h.exec(`INSERT INTO accounts_authorityuser (user_ptr_id, authority_id, role) VALUES ($1, $2, 'ADM')`, h.userID, h.authorityID)
	h.clientID, h.clientSecret = h.createApp(Application{Name: "Notebooks", RedirectURIs: []string{h.redirectURI}})
	return h
}

func (h *harness) clock() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.now
}

func (h *harness) advance(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.now = h.now.Add(d)
}

func (h *harness) exec(query string, args ...any) sql.Result {
	h.t.Helper()
	res, err := h.db.ExecContext(context.Background(), query, args...)
	if err != nil {
		h.t.Fatal(err)
	}
	return res
}

func (h *harness) createApp(app Application) (string, string) {
	h.t.Helper()
	id, secret, err := CreateApplication(h.t.Context(), h.db, app)
	if err != nil {
		h.t.Fatal(err)
	}
	return id, secret
}

// browser is an HTTP client with cookies that does not follow redirects.
func (h *harness) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

type response struct {
	status int
	header http.Header
	body   string
}

func do(t testing.TB, c *http.Client, req *http.Request) response {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, string(body)}
}

func (h *harness) get(c *http.Client, path string, hdr ...string) response {
	h.t.Helper()
	req, _ := http.NewRequest("GET", h.ts.URL+path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return do(h.t, c, req)
}

func (h *harness) post(c *http.Client, path string, form url.Values, hdr ...string) response {
	h.t.Helper()
	req, _ := http.NewRequest("POST", h.ts.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return do(h.t, c, req)
}

var csrfRE = regexp.MustCompile(`name="csrfmiddlewaretoken" value="([^"]+)"`)
var hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

func csrfFrom(t testing.TB, body string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF token in page:\n%s", body)
	}
	return m[1]
}

// login signs the browser in with the login form.
func (h *harness) login(c *http.Client, username, password string) response {
	h.t.Helper()
	page := h.get(c, "/accounts/login/")
	return h.post(c, "/accounts/login/", url.Values{"csrfmiddlewaretoken": {csrfFrom(h.t, page.body)},
		"username": {username}, "password": {password}})
}

// pkce returns a verifier and its S256 challenge.
func pkce(seed string) (verifier, challenge string) {
	verifier = strings.Repeat(seed, 50)[:50]
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// authorize runs /o/authorize/ for a logged-in browser, approving the consent page, and
// returns the redirect it ends with.
func (h *harness) authorize(c *http.Client, q url.Values) *url.URL {
	h.t.Helper()
	r := h.get(c, "/o/authorize/?"+q.Encode())
	if r.status == http.StatusOK {
		form := url.Values{"allow": {"Authorize"}}
		for _, m := range hiddenRE.FindAllStringSubmatch(r.body, -1) {
			form.Set(m[1], unescapeHTML(m[2]))
		}
		r = h.post(c, "/o/authorize/", form)
	}
	if r.status != http.StatusFound {
		h.t.Fatalf("authorize: status %d, body %s", r.status, r.body)
	}
	u, err := url.Parse(r.header.Get("Location"))
	if err != nil {
		h.t.Fatal(err)
	}
	return u
}

func unescapeHTML(s string) string {
	return strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">", "&#34;", `"`, "&#39;", "'", "&#43;", "+").Replace(s)
}

// code logs in and returns an authorization code for the harness client with PKCE S256.
func (h *harness) code(verifierSeed string) (code, verifier string) {
	h.t.Helper()
	c := h.browser()
	if r := h.login(c, testUser, testPassword); r.status != http.StatusFound {
		h.t.Fatalf("login: %d %s", r.status, r.body)
	}
	verifier, challenge := pkce(verifierSeed)
	u := h.authorize(c, url.Values{"response_type": {"code"}, "client_id": {h.clientID}, "redirect_uri": {h.redirectURI},
		"state": {"xyz"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}})
	return u.Query().Get("code"), verifier
}

// tokenRequest posts to /o/token/ with the harness client's credentials by HTTP Basic.
func (h *harness) tokenCall(form url.Values) response {
	h.t.Helper()
	return h.post(http.DefaultClient, "/o/token/", form, "Authorization", basicAuth(h.clientID, h.clientSecret))
}

func basicAuth(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

func decode(t testing.TB, body string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("not JSON: %v: %s", err, body)
	}
	return m
}

// exchange trades a code for tokens and fails the test unless it works.
func (h *harness) exchange(code, verifier string) map[string]any {
	h.t.Helper()
	r := h.tokenCall(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {h.redirectURI}, "code_verifier": {verifier}})
	if r.status != http.StatusOK {
		h.t.Fatalf("token: %d %s", r.status, r.body)
	}
	return decode(h.t, r.body)
}

func (h *harness) userinfo(token string) response {
	h.t.Helper()
	return h.get(http.DefaultClient, "/api/userinfo/", "Authorization", "Bearer "+token)
}

func expect(t *testing.T, r response, status int, body string) {
	t.Helper()
	if r.status != status || r.body != body {
		t.Fatalf("got %d %q\nwant %d %q", r.status, r.body, status, body)
	}
}
