package api

import (
	"database/sql"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ohtkhub/ohtkhub/internal/djangohash"
	"github.com/ohtkhub/ohtkhub/internal/exportapi"
	"github.com/ohtkhub/ohtkhub/internal/ohtkdb"
	"github.com/ohtkhub/ohtkhub/internal/pgtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

// TestTenancyOnPostgreSQL points the api at an OHTK database in a real PostgreSQL with
// PostGIS, as with a real ohtk-api beside it (built-in provider off), connected as a role that
// can only read OHTK's tables. Tenants come from tenants_client/tenants_domain, each request
// reads its tenant's schema only, schema names are quoted, and the access tokens of a
// database from before DOT 3.0 (no token_checksum) still work.
func TestTenancyOnPostgreSQL(t *testing.T) {
	ctx := t.Context()
	cluster, err := pgtest.Shared(ctx)
	if err != nil {
		t.Fatal(err)
	}
	o, err := cluster.CreateOHTK(ctx, "api_tenancy")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Drop(t.Context()) })
	const weird = `Wéird "schema"; DROP`
	dbs := map[string]*sql.DB{}
	for _, tn := range []struct{ schema, name, domain string }{
		{"alpha", "Tenant Alpha", "alpha.example.org"},
		{"beta", "Tenant Beta", "beta.example.org"},
		{weird, "Weird", "weird.example.org"},
		{"gone", "Gone", "gone.example.org"},
	} {
		db, err := o.AddTenant(ctx, tn.schema, tn.name, []string{tn.domain})
		if err != nil {
			t.Fatal(err)
		}
		dbs[tn.schema] = db
		// The same username in every tenant, with the tenant's own password.
		if _, err := db.Exec(`INSERT INTO accounts_user (password, is_superuser, username, first_name, date_joined) VALUES ($1, TRUE, 'somchai', $2, now())`,
			djangohash.Make("pass-"+tn.schema, 1000), "สมชาย "+tn.name); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := o.Admin.Exec(`UPDATE tenants_client SET deleted_at = now() WHERE schema_name = 'gone'`); err != nil {
		t.Fatal(err)
	}
	// alpha has DOT 3.x tokens; beta's table predates DOT 3.0 and has no token_checksum.
	expires := time.Now().Add(time.Hour)
	if _, err := dbs["alpha"].Exec(`INSERT INTO oauth2_provider_accesstoken (user_id, token, token_checksum, expires, scope, created, updated)
		VALUES (1, 'alpha-token', $1, $2, 'read', now(), now())`, exportapi.HashAPIKey("alpha-token"), expires); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`DROP TABLE oauth2_provider_refreshtoken`,
		`ALTER TABLE oauth2_provider_accesstoken DROP COLUMN token_checksum`,
	} {
		if _, err := dbs["beta"].Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := dbs["beta"].Exec(`INSERT INTO oauth2_provider_accesstoken (user_id, token, expires, scope, created, updated)
		VALUES (1, 'beta-token', $1, 'read', now(), now())`, expires); err != nil {
		t.Fatal(err)
	}

	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Database = o.URL(pgtest.Reader)
	cfg.Provider.Enabled = false
	srv, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	if _, err := srv.Store().CreateTenant(ctx, "delta", "Delta", nil); err == nil {
		t.Error("created a tenant in OHTK's database")
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)

	get := func(path, host string, auth func(*http.Request)) resp {
		t.Helper()
		req, _ := http.NewRequest("GET", ts.URL+path, nil)
		if host != "" {
			req.Host = host
		}
		if auth != nil {
			auth(req)
		}
		r, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp{r.StatusCode, r.Header, string(b)}
	}
	basic := func(user, pass string) func(*http.Request) {
		return func(r *http.Request) { r.SetBasicAuth(user, pass) }
	}
	bearer := func(tok string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
	}
	me := func(schema string) string {
		name := map[string]string{"alpha": "Tenant Alpha", "beta": "Tenant Beta", weird: "Weird"}[schema]
		return `"first_name":"สมชาย ` + name + `"`
	}
	const badBasic = `{"error":"unauthorized","error_description":"invalid username or password"}` + "\n"
	const badToken = `{"error":"invalid_token","error_description":"the access token is invalid, expired or revoked"}` + "\n"
	for _, tc := range []struct {
		name, path, host string
		auth             func(*http.Request)
		status           int
		body             string // exact, or a fragment of a 200 body
	}{
		{"host", "/api/export/v1/me", "alpha.example.org", basic("somchai", "pass-alpha"), 200, me("alpha")},
		{"host with port and www", "/api/export/v1/me", "www.BETA.example.org:8443", basic("somchai", "pass-beta"), 200, me("beta")},
		{"path prefix", "/t/beta/api/export/v1/me", "", basic("somchai", "pass-beta"), 200, me("beta")},
		{"quoted schema by host", "/api/export/v1/me", "weird.example.org", basic("somchai", "pass-"+weird), 200, me(weird)},
		{"quoted schema by path", "/t/" + url.PathEscape(weird) + "/api/export/v1/me", "", basic("somchai", "pass-"+weird), 200, me(weird)},
		{"another tenant's password", "/api/export/v1/me", "alpha.example.org", basic("somchai", "pass-beta"), 401, badBasic},
		{"DOT 3 token", "/t/alpha/api/export/v1/me", "", bearer("alpha-token"), 200, me("alpha")},
		{"DOT 3 token on another tenant", "/t/beta/api/export/v1/me", "", bearer("alpha-token"), 401, badToken},
		{"pre-3.0 token", "/t/beta/api/export/v1/me", "", bearer("beta-token"), 200, me("beta")},
		{"pre-3.0 token on another tenant", "/t/alpha/api/export/v1/me", "", bearer("beta-token"), 401, badToken},
		{"unknown host", "/api/export/v1/me", "gamma.example.org", nil, 404, tenantNotFoundBody},
		{"sub-domain", "/api/export/v1/me", "x.alpha.example.org", nil, 404, tenantNotFoundBody},
		{"soft-deleted by host", "/api/export/v1/me", "gone.example.org", basic("somchai", "pass-gone"), 404, tenantNotFoundBody},
		{"soft-deleted by path", "/t/gone/api/export/v1/me", "", basic("somchai", "pass-gone"), 404, tenantNotFoundBody},
		{"the public schema is no tenant", "/t/public/api/export/v1/me", "", nil, 404, tenantNotFoundBody},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := get(tc.path, tc.host, tc.auth)
			if tc.status == 200 {
				if r.status != 200 || !strings.Contains(r.body, tc.body) {
					t.Fatalf("got %d %s, want 200 with %s", r.status, r.body, tc.body)
				}
				return
			}
			if r.status != tc.status || strings.TrimSpace(r.body) != strings.TrimSpace(tc.body) {
				t.Fatalf("got %d %q, want %d %q", r.status, r.body, tc.status, tc.body)
			}
		})
	}
	if r := get("/health", "", nil); r.status != 200 {
		t.Errorf("health: %d %s", r.status, r.body)
	}

	// Exports are audited in the api's own schema of the tenant, not in OHTK's.
	var n int
	api, err := o.SchemaDB(ohtkdb.APISchema("alpha"))
	if err != nil {
		t.Fatal(err)
	}
	if err := api.QueryRow(`SELECT count(*) FROM ohtkhub_export_audit`).Scan(&n); err != nil || n != 2 {
		t.Errorf("alpha's audit rows: %d, %v; want 2", n, err)
	}
	if err := o.Admin.QueryRow(`SELECT count(*) FROM information_schema.tables WHERE table_schema = 'alpha' AND table_name LIKE 'ohtkhub%'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("ohtkhub tables in OHTK's schema: %d, %v", n, err)
	}
}

func TestDatabaseSetting(t *testing.T) {
	for db, ok := range map[string]bool{
		"":                                    true,
		"postgres://ohtkhub@db.internal/ohtk": true,
		"postgresql://ohtkhub@/ohtk?host=/run/postgresql": true,
		"/srv/ohtk/data": false,
		"mysql://x":      false,
	} {
		cfg := DefaultConfig()
		cfg.DataDir = "/srv/ohtk"
		cfg.Database = db
		if err := cfg.Validate(); (err == nil) != ok {
			t.Errorf("database %q: %v", db, err)
		}
	}
}
