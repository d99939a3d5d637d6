package hub

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ohtkhub/ohtkhub/internal/config"
	"github.com/ohtkhub/ohtkhub/internal/session"
	"github.com/ohtkhub/ohtkhub/internal/spawner"
	"github.com/ohtkhub/ohtkhub/internal/web"
)

// testHub is a hub serving on a free port of 127.0.0.1.
type testHub struct {
	URL  string // public URL, with the base path and a trailing slash
	Host string // http://127.0.0.1:port
	Hub  *Hub
	Cfg  config.Hub
	// Stop shuts the hub down, as SIGTERM does; the test's end does it too.
	Stop func()
}

// listen reserves the hub's address, so tenants can be configured with its callback URL.
func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func testKey() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// testUIDBase is the uid_base of the test hubs.
const testUIDBase = 220000

// startHub serves a hub configured by cfg (public URL and listen address filled in from ln
// and base) until the test ends.
func startHub(t testing.TB, ln net.Listener, base string, cfg config.Hub) *testHub {
	t.Helper()
	host := "http://" + ln.Addr().String()
	cfg.PublicURL = host + base
	cfg.Listen = ln.Addr().String()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if len(cfg.CryptKeys) == 0 {
		cfg.CryptKeys = []string{testKey()}
	}
	if cfg.Spawner.StartTimeout == 0 {
		cfg.Spawner.StartTimeout = 90 * time.Second
	}
	if cfg.Spawner.Local.UIDBase == 0 {
		// Not the spawner tests' uids: their packages' tests run side by side.
		cfg.Spawner.Local.UIDBase = testUIDBase
	}
	if cfg.RedirectToServer == nil {
		// Most tests sign in without wanting a server; those that do say so.
		off := false
		cfg.RedirectToServer = &off
	}
	if cfg.Spawner.PollInterval == 0 {
		cfg.Spawner.PollInterval = time.Second
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	h, err := New(t.Context(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h.Handler(), ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second}
	go srv.Serve(ln)
	var once sync.Once
	stop := func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			srv.Shutdown(ctx)
			if err := h.Close(ctx); err != nil {
				t.Errorf("close hub: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return &testHub{URL: cfg.PublicURL, Host: host, Hub: h, Cfg: h.cfg, Stop: stop}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// browser is an HTTP client with a cookie jar that does not follow redirects by itself.
type browser struct {
	t      testing.TB
	client *http.Client
}

func newBrowser(t testing.TB) *browser {
	inner, _ := cookiejar.New(nil)
	jar := rawPathJar{inner}
	return &browser{t: t, client: &http.Client{Jar: jar, Timeout: 60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) do(req *http.Request) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func (b *browser) get(u string) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

func (b *browser) post(u string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// follow GETs u and follows redirects, returning the last response, its body and URL.
func (b *browser) follow(u string) (*http.Response, string, string) {
	b.t.Helper()
	for range 20 {
		resp, body := b.get(u)
		if resp.StatusCode < 300 || resp.StatusCode >= 400 {
			return resp, body, u
		}
		next, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
		if err != nil {
			b.t.Fatal(err)
		}
		u = next.String()
	}
	b.t.Fatalf("too many redirects from %s", u)
	return nil, "", ""
}

// cookie returns the value of the named cookie the browser would send to u.
func (b *browser) cookie(u, name string) string {
	pu, _ := url.Parse(u)
	for _, c := range b.client.Jar.Cookies(pu) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// xsrf is the hub's XSRF token for the browser's session.
func (b *browser) xsrf(h *testHub) string {
	return xsrfFor(b.cookie(h.URL+"hub/home", session.CookieName))
}

func xsrfFor(secret string) string {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(&http.Cookie{Name: session.CookieName, Value: secret})
	return session.XSRFToken(r)
}

var hiddenInput = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)"`)

// fakeProvider is a tiny OAuth 2 provider answering like DOT and OHTK, for unit tests. Its
// next login is as the user set with loginAs; access tokens live for ttl; refresh tokens
// rotate.
type fakeProvider struct {
	srv          *httptest.Server
	clientID     string
	clientSecret string
	tenantName   string

	mu       sync.Mutex
	next     map[string]any
	codes    map[string]fakeGrant
	access   map[string]fakeGrant
	refresh  map[string]fakeGrant
	ttl      time.Duration
	refreshN atomic.Int32
}

type fakeGrant struct {
	info      map[string]any
	challenge string
	redirect  string
	expires   time.Time
}

func newFakeProvider(t testing.TB, tenantName string) *fakeProvider {
	p := &fakeProvider{clientID: "hub-client", clientSecret: "s3cret/with+chars", tenantName: tenantName,
		codes: map[string]fakeGrant{}, access: map[string]fakeGrant{}, refresh: map[string]fakeGrant{}, ttl: time.Hour}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /o/authorize/", p.authorize)
	mux.HandleFunc("POST /o/token/", p.token)
	mux.HandleFunc("GET /api/userinfo/", p.userinfo)
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

// loginAs sets who the next authorization is for.
func (p *fakeProvider) loginAs(id int, username string, superuser bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.next = map[string]any{"id": id, "username": p.tenantName + "_" + username, "is_superuser": superuser, "email": username + "@example.org"}
}

func (p *fakeProvider) tenant(key string) config.Tenant {
	return config.Tenant{Key: key, Label: p.tenantName, ClientID: p.clientID, ClientSecret: p.clientSecret,
		AuthorizeURL: p.srv.URL + "/o/authorize/", TokenURL: p.srv.URL + "/o/token/", UserinfoURL: p.srv.URL + "/api/userinfo/",
		APIURL: p.srv.URL, UsernameStripPrefix: p.tenantName + "_", AllowAll: true, AdminIfSuperuser: true}
}

func (p *fakeProvider) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != p.clientID || q.Get("code_challenge_method") != "S256" {
		http.Error(w, "bad client or no PKCE", http.StatusBadRequest)
		return
	}
	p.mu.Lock()
	code := rand.Text()
	p.codes[code] = fakeGrant{info: p.next, challenge: q.Get("code_challenge"), redirect: q.Get("redirect_uri")}
	p.mu.Unlock()
	http.Redirect(w, r, q.Get("redirect_uri")+"?"+url.Values{"code": {code}, "state": {q.Get("state")}}.Encode(), http.StatusFound)
}

func (p *fakeProvider) token(w http.ResponseWriter, r *http.Request) {
	id, secret, ok := r.BasicAuth()
	if ok {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	}
	if !ok || id != p.clientID || secret != p.clientSecret {
		w.WriteHeader(http.StatusUnauthorized)
		json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client"})
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var g fakeGrant
	switch r.PostFormValue("grant_type") {
	case "authorization_code":
		c, ok := p.codes[r.PostFormValue("code")]
		delete(p.codes, r.PostFormValue("code"))
		sum := sha256.Sum256([]byte(r.PostFormValue("code_verifier")))
		if !ok || c.redirect != r.PostFormValue("redirect_uri") || base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge {
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(map[string]string{"error": "invalid_grant"})
			return
		}
		g = c
	case "refresh_token":
		c, ok := p.refresh[r.PostFormValue("refresh_token")]
		delete(p.refresh, r.PostFormValue("refresh_token"))
		if !ok {
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(map[string]string{"error": "invalid_grant"})
			return
		}
		p.refreshN.Add(1)
		g = c
	default:
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	access, refresh := rand.Text(), rand.Text()
	g.expires = time.Now().Add(p.ttl)
	p.access[access] = g
	p.refresh[refresh] = g
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"access_token": access, "token_type": "Bearer", "expires_in": int(p.ttl / time.Second), "refresh_token": refresh, "scope": "read"})
}

func (p *fakeProvider) userinfo(w http.ResponseWriter, r *http.Request) {
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	p.mu.Lock()
	g, ok := p.access[tok]
	p.mu.Unlock()
	if !ok || time.Now().After(g.expires) {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	json.NewEncoder(w).Encode(g.info)
}

// valid reports whether an access token is live at the provider.
func (p *fakeProvider) valid(tok string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	g, ok := p.access[tok]
	return ok && time.Now().Before(g.expires)
}

// loginFake signs the browser in with a fake provider's tenant and returns the final page.
func loginFake(t testing.TB, b *browser, h *testHub, p *fakeProvider, key string, id int, username string) (*http.Response, string, string) {
	t.Helper()
	p.loginAs(id, username, false)
	return b.follow(h.URL + "hub/" + key + "/oauth_login")
}

// apiJSON does an API request with a token and decodes the JSON answer into out.
func apiJSON(t testing.TB, method, u, token string, body io.Reader, out any) int {
	t.Helper()
	req, _ := http.NewRequest(method, u, body)
	if token != "" {
		req.Header.Set("Authorization", "token "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %s: not JSON: %s", method, u, resp.Status, b)
		}
	}
	return resp.StatusCode
}

var _ = fmt.Sprintf
var _ = os.Getenv

func hash12(s string) string {
	sum := sha256.Sum256([]byte(s))
	return fmt.Sprintf("%x", sum)[:12]
}

// rawPathJar matches cookie paths against the path as sent (percent-encoded), as browsers do;
// net/http/cookiejar uses the decoded path, which never matches a cookie path with %XX in it.
type rawPathJar struct{ jar http.CookieJar }

func rawURL(u *url.URL) *url.URL {
	c := *u
	c.Path = u.EscapedPath()
	c.RawPath = ""
	return &c
}

func (j rawPathJar) SetCookies(u *url.URL, cookies []*http.Cookie) {
	j.jar.SetCookies(rawURL(u), cookies)
}
func (j rawPathJar) Cookies(u *url.URL) []*http.Cookie { return j.jar.Cookies(rawURL(u)) }

// lastEvent follows the progress stream of name's server, with the browser's cookies, until
// the hub ends it, and returns the last event.
func lastEvent(t testing.TB, b *browser, hubURL, name string) spawner.Event {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", hubURL+"hub/api/users/"+web.PathEscape(name)+"/server/progress", nil)
	stream, err := (&http.Client{Jar: b.client.Jar}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	var last spawner.Event
	sc := bufio.NewScanner(stream.Body)
	for sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			json.Unmarshal([]byte(data), &last)
		}
	}
	return last
}
