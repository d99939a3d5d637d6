package api

import (
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ohtkhub/ohtkhub/internal/djangohash"
	"github.com/ohtkhub/ohtkhub/internal/oauthserver"
	"github.com/ohtkhub/ohtkhub/internal/ohtkdb"
)

// testAPI is an api server over a fresh data directory with tenants alpha and beta.
type testAPI struct {
	t   *testing.T
	srv *Server
	ts  *httptest.Server
}

const tenantNotFoundBody = `{"error":"tenant_not_found","error_description":"No tenant for this host or path."}`

func newTestAPI(t *testing.T, opts ...func(*Config)) *testAPI {
	t.Helper()
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	a := &testAPI{t: t, srv: srv, ts: httptest.NewServer(srv.Handler())}
	t.Cleanup(a.ts.Close)
	for _, tn := range []struct{ schema, name, domain string }{
		{"alpha", "Tenant Alpha", "alpha.example.org"},
		{"beta", "Tenant Beta", "beta.example.org"},
	} {
		if _, err := srv.Store().CreateTenant(t.Context(), tn.schema, tn.name, []string{tn.domain}); err != nil {
			t.Fatal(err)
		}
		// The same username and password in both tenants: only the token's tenant may count.
		a.addUser(tn.schema, "somchai", "pass-1234")
	}
	return a
}

func (a *testAPI) db(schema string) *sql.DB {
	db, err := a.srv.Store().TenantDB(a.t.Context(), schema)
	if err != nil {
		a.t.Fatal(err)
	}
	return db
}

func (a *testAPI) addUser(schema, username, password string) {
	a.t.Helper()
	_, err := a.db(schema).Exec(`INSERT INTO accounts_user (password, username, first_name, date_joined) VALUES ($1, $2, 'สมชาย', $3)`,
		djangohash.Make(password, 1000), username, ohtkdb.FormatTime(time.Now()))
	if err != nil {
		a.t.Fatal(err)
	}
}

type resp struct {
	status int
	header http.Header
	body   string
}

func (a *testAPI) do(method, path, host string, form url.Values, hdr ...string) resp {
	a.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, a.ts.URL+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if host != "" {
		req.Host = host
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	r, err := c.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return resp{r.StatusCode, r.Header, string(b)}
}

// passwordToken gets a token for somchai in a tenant by the password grant.
func (a *testAPI) passwordToken(schema string) string {
	a.t.Helper()
	id, secret, err := oauthserver.CreateApplication(a.t.Context(), a.db(schema), oauthserver.Application{Name: "cli", GrantType: oauthserver.GrantPassword})
	if err != nil {
		a.t.Fatal(err)
	}
	r := a.do("POST", "/t/"+schema+"/o/token/", "", url.Values{"grant_type": {"password"}, "username": {"somchai"},
		"password": {"pass-1234"}, "client_id": {id}, "client_secret": {secret}})
	if r.status != http.StatusOK {
		a.t.Fatalf("token: %d %s", r.status, r.body)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	json.Unmarshal([]byte(r.body), &tok)
	return tok.AccessToken
}

func expectResp(t *testing.T, r resp, status int, body string) {
	t.Helper()
	if r.status != status || r.body != body {
		t.Fatalf("got %d %q\nwant %d %q", r.status, r.body, status, body)
	}
}

func TestTenantResolution(t *testing.T) {
	a := newTestAPI(t)
	const unauthorized = `{"error":"invalid_token","error_description":"Authentication credentials were missing, invalid or expired."}`
	for name, tc := range map[string]struct {
		path, host string
		status     int
		body       string
	}{
		"host":                {"/api/userinfo/", "alpha.example.org", 401, unauthorized},
		"host with port, www": {"/api/userinfo/", "www.ALPHA.example.org:8443", 401, unauthorized},
		"path prefix":         {"/t/beta/api/userinfo/", "", 401, unauthorized},
		"unknown host":        {"/api/userinfo/", "gamma.example.org", 404, tenantNotFoundBody},
		"unknown schema":      {"/t/gamma/api/userinfo/", "", 404, tenantNotFoundBody},
		"no tenant at all":    {"/api/userinfo/", "", 404, tenantNotFoundBody},
		"sub-domain is not":   {"/api/userinfo/", "x.alpha.example.org", 404, tenantNotFoundBody},
		// A tenant's own domain never serves another tenant's prefix.
		"prefix under a host": {"/t/beta/api/userinfo/", "alpha.example.org", 404, `{"error":"not_found","error_description":"No such resource."}`},
		"unknown path":        {"/t/alpha/nothing", "", 404, `{"error":"not_found","error_description":"No such resource."}`},
	} {
		t.Run(name, func(t *testing.T) {
			expectResp(t, a.do("GET", tc.path, tc.host, nil), tc.status, tc.body)
		})
	}
}

func TestSoftDeletedTenant(t *testing.T) {
	a := newTestAPI(t)
	tok := a.passwordToken("beta")
	if _, err := a.srv.Store().Public().Exec(`UPDATE tenants_client SET deleted_at = $1 WHERE schema_name = 'beta'`, ohtkdb.FormatTime(time.Now())); err != nil {
		t.Fatal(err)
	}
	expectResp(t, a.do("GET", "/t/beta/api/userinfo/", "", nil, "Authorization", "Bearer "+tok), 404, tenantNotFoundBody)
	expectResp(t, a.do("GET", "/api/userinfo/", "beta.example.org", nil, "Authorization", "Bearer "+tok), 404, tenantNotFoundBody)
}

func TestTokenOfOtherTenant(t *testing.T) {
	a := newTestAPI(t)
	tok := a.passwordToken("alpha")
	r := a.do("GET", "/t/alpha/api/userinfo/", "", nil, "Authorization", "Bearer "+tok)
	expectResp(t, r, 200, `{"id":1,"username":"Tenant Alpha_somchai","email":"","first_name":"สมชาย","last_name":"","is_superuser":false,"authority":null}`)
	const unauthorized = `{"error":"invalid_token","error_description":"Authentication credentials were missing, invalid or expired."}`
	expectResp(t, a.do("GET", "/t/beta/api/userinfo/", "", nil, "Authorization", "Bearer "+tok), 401, unauthorized)
	expectResp(t, a.do("GET", "/api/userinfo/", "beta.example.org", nil, "Authorization", "Bearer "+tok), 401, unauthorized)
}

func TestPathTenantCookies(t *testing.T) {
	a := newTestAPI(t)
	r := a.do("GET", "/t/alpha/accounts/login/?next=/t/beta/o/authorize/", "", nil)
	if r.status != 200 || !strings.Contains(r.header.Get("Set-Cookie"), "Path=/t/alpha/") {
		t.Fatalf("login page: %d %q", r.status, r.header.Get("Set-Cookie"))
	}
	// next may not leave the tenant's prefix.
	if !strings.Contains(r.body, `name="next" value=""`) || !strings.Contains(r.body, `action="/t/alpha/accounts/login/"`) {
		t.Fatalf("login form:\n%s", r.body)
	}
}

// TestHealthAndMetrics: /health is open; /metrics on the api's address needs the Bearer token
// of metrics.token_file, and is not served there without one.
func TestHealthAndMetrics(t *testing.T) {
	const token = "scrape-secret-0123456789"
	tokenFile := filepath.Join(t.TempDir(), "metrics-token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := newTestAPI(t, func(c *Config) { c.Metrics.TokenFile = tokenFile })
	expectResp(t, a.do("GET", "/health", "", nil), 200, `{"status":"ok"}`)
	a.do("GET", "/t/alpha/api/userinfo/", "", nil)
	r := a.do("GET", "/metrics", "", nil, "Authorization", "Bearer "+token)
	if r.status != 200 || !strings.Contains(r.body, `ohtkhub_api_requests_total{code="401",handler="oauth",method="get"} 1`) {
		t.Fatalf("metrics: %d\n%s", r.status, r.body)
	}
	if !strings.Contains(r.header.Get("Content-Type"), "text/plain") {
		t.Errorf("metrics content type %q", r.header.Get("Content-Type"))
	}
	for _, auth := range []string{"", "Bearer wrong", "Bearer " + token + "x", "Basic " + token, "token " + token} {
		r := a.do("GET", "/metrics", "", nil, "Authorization", auth)
		if r.status != 401 || r.header.Get("WWW-Authenticate") != `Bearer realm="metrics"` || strings.Contains(r.body, "ohtkhub_api") {
			t.Errorf("Authorization %q: %d %q %s", auth, r.status, r.header.Get("WWW-Authenticate"), r.body)
		}
	}
	expectResp(t, a.do("GET", "/api/servers/", "", nil), 200,
		`{"tenants":[{"label":"Tenant Alpha","domain":"alpha.example.org","external":false},{"label":"Tenant Beta","domain":"beta.example.org","external":false}]}`)

	closed := newTestAPI(t)
	expectResp(t, closed.do("GET", "/health", "", nil), 200, `{"status":"ok"}`)
	expectResp(t, closed.do("GET", "/metrics", "", nil, "Authorization", "Bearer "), 404, `{"error":"not_found","error_description":"No such resource."}`)
	// The separate listener's handler serves them to anyone, and nothing else.
	rec := httptest.NewRecorder()
	closed.srv.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `ohtkhub_api_requests_total{code="200",handler="health",method="get"} 1`) {
		t.Fatalf("metrics listener: %d\n%s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	closed.srv.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/t/alpha/api/export/v1/me", nil))
	if rec.Code != 404 {
		t.Fatalf("metrics listener serves %d for the export api", rec.Code)
	}
}

func TestMetricsTokenFile(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ body, want string }{
		{"short\n", "metrics.token_file: " + filepath.Join(dir, "token") + " holds 5 characters; want a secret of at least 16"},
		{"", "metrics.token_file: " + filepath.Join(dir, "token") + " holds 0 characters; want a secret of at least 16"},
	} {
		os.WriteFile(filepath.Join(dir, "token"), []byte(tc.body), 0o600)
		cfg := DefaultConfig()
		cfg.DataDir = t.TempDir()
		cfg.Metrics.TokenFile = filepath.Join(dir, "token")
		if _, err := New(t.Context(), cfg); err == nil || err.Error() != tc.want {
			t.Errorf("%q: %v, want %s", tc.body, err, tc.want)
		}
	}
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Metrics.TokenFile = filepath.Join(dir, "missing")
	if _, err := New(t.Context(), cfg); err == nil || !strings.HasPrefix(err.Error(), "metrics.token_file: open ") {
		t.Errorf("missing file: %v", err)
	}
}

func TestExportMounted(t *testing.T) {
	a := newTestAPI(t)
	r := a.do("GET", "/t/alpha/api/export/v1/me", "", nil)
	if r.status != http.StatusUnauthorized || r.header.Get("WWW-Authenticate") == "" {
		t.Fatalf("export without credentials: %d %s", r.status, r.body)
	}
}

func TestProviderDisabled(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Provider.Enabled = false
	srv, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.Store().CreateTenant(t.Context(), "alpha", "Alpha", nil)
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/t/alpha/o/token/", nil))
	if rec.Code != 404 || rec.Body.String() != `{"error":"not_found","error_description":"No such resource."}` {
		t.Fatalf("disabled provider: %d %s", rec.Code, rec.Body)
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) string {
		p := filepath.Join(dir, "api.yaml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := write("data_dir: data\n")
	cfg, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.DataDir = filepath.Join(dir, "data")
	if cfg != want || cfg.Listen != "127.0.0.1:8001" || !cfg.Provider.Enabled || cfg.Provider.AccessTokenLifetime != 10*time.Hour || !cfg.Export.BasicPasswords {
		t.Fatalf("defaults: %+v", cfg)
	}
	os.Mkdir(filepath.Join(dir, "secrets"), 0o700)
	if err := os.WriteFile(filepath.Join(dir, "secrets/metrics"), []byte("a-metrics-secret-of-some-length\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p = write("listen: 0.0.0.0:9000\ndata_dir: /srv/ohtk\npublic_url: https://api.example.org\nprovider:\n  enabled: false\n  access_token_lifetime: 1h30m\nexport:\n  basic_passwords: false\nmetrics:\n  listen: 127.0.0.1:9101\n  token_file: secrets/metrics\n")
	cfg, err = LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "0.0.0.0:9000" || cfg.DataDir != "/srv/ohtk" || cfg.Provider.Enabled || cfg.Provider.AccessTokenLifetime != 90*time.Minute ||
		cfg.Export.BasicPasswords || !cfg.secureCookies() || cfg.Metrics != (MetricsConfig{Listen: "127.0.0.1:9101", TokenFile: filepath.Join(dir, "secrets/metrics")}) {
		t.Fatalf("explicit: %+v", cfg)
	}
	for body, msg := range map[string]string{
		"data_dir: d\nprovider:\n  enabld: true\n":              p + ": provider.enabld (line 3): invalid configuration: unknown field",
		"listen: nope\ndata_dir: d\n":                           p + `: listen: "nope" is not host:port`,
		"listen: ':1'\n":                                        p + ": data_dir: required",
		"data_dir: d\npublic_url: ftp://x\n":                    p + `: public_url: "ftp://x" is not an absolute http(s) URL`,
		"data_dir: d\nprovider:\n  access_token_lifetime: 5s\n": p + ": provider.access_token_lifetime: 5s is shorter than one minute",
		"data_dir: d\nmetrics:\n  listen: 9101\n":               p + `: metrics.listen: "9101" is not host:port`,
		"data_dir: d\nmetrics:\n  listen: 127.0.0.1:8001\n":     p + `: metrics.listen: "127.0.0.1:8001" is listen's address too; give it a port of its own`,
		"data_dir: d\nprovider:\n  access_token_lifetime: x\n":  p + `: provider.access_token_lifetime (line 3): invalid configuration: "x" is not a duration (such as 90s, 10m or 336h)`,
		"data_dir: d\nprovider: true\n":                         p + `: provider (line 2): invalid configuration: "true" is not a mapping`,
		"data_dir: d\nexport:\n  basic_passwords: maybe\n":      p + `: export.basic_passwords (line 3): invalid configuration: "maybe" is not true or false`,
		"data_dir: d\nmetrics:\n  token_file: nope\n":           p + ": metrics.token_file: open " + filepath.Join(dir, "nope") + ": no such file or directory",
		"":             p + ": invalid configuration: the file is empty (or holds only comments)",
		"# api.yaml\n": p + ": invalid configuration: the file is empty (or holds only comments)",
	} {
		_, err := LoadConfig(write(body))
		if err == nil || err.Error() != msg {
			t.Errorf("%q:\n got %v\nwant %s", body, err, msg)
		}
	}
}
