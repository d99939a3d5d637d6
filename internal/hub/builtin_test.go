package hub

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/ohtkhub/ohtkhub/internal/api"
	"github.com/ohtkhub/ohtkhub/internal/config"
	"github.com/ohtkhub/ohtkhub/internal/oauthserver"
	"github.com/ohtkhub/ohtkhub/internal/seed"
)

// TestIntegrationBuiltInProvider: the hub signs users in with `ohtkhub api`'s built-in,
// DOT-compatible provider (tenant by path prefix /t/{key}/, display name with a space) and
// refreshes its tokens, which rotate, under concurrent requests.
func TestIntegrationBuiltInProvider(t *testing.T) {
	ctx := t.Context()
	apiLn := listen(t)
	apiURL := "http://" + apiLn.Addr().String()
	cfg := api.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Listen = apiLn.Addr().String()
	cfg.Provider.AccessTokenLifetime = time.Minute // inside the hub's refresh window
	srv, err := api.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	hs := &http.Server{Handler: srv.Handler()}
	go hs.Serve(apiLn)
	t.Cleanup(func() { hs.Close() })

	hubLn := listen(t)
	hubURL := "http://" + hubLn.Addr().String() + "/"
	st := srv.Store()
	if _, err := st.CreateTenant(ctx, "bunny", "Bunny Province", []string{"bunny.localhost"}); err != nil {
		t.Fatal(err)
	}
	db, err := st.TenantDB(ctx, "bunny")
	if err != nil {
		t.Fatal(err)
	}
	users, err := seed.Tenant(ctx, db, seed.Options{TenantName: "Bunny Province", Reports: -1, ZeroReports: -1, RandSeed: 1, Password: "pw-Bunny-1", Iterations: 1000})
	if err != nil {
		t.Fatal(err)
	}
	clientID, secret, err := oauthserver.CreateApplication(ctx, db, oauthserver.Application{Name: "ohtkhub", ClientType: "confidential",
		GrantType: "authorization-code", RedirectURIs: []string{hubURL + "hub/bunny/oauth_callback"}, SkipAuthorization: true})
	if err != nil {
		t.Fatal(err)
	}
	base := apiURL + "/t/bunny"
	tenant := config.Tenant{Key: "bunny", Label: "Bunny Province", ClientID: clientID, ClientSecret: secret,
		AuthorizeURL: base + "/o/authorize/", TokenURL: base + "/o/token/", UserinfoURL: base + "/api/userinfo/", APIURL: base,
		Scopes: []string{"read"}, UsernameStripPrefix: "Bunny Province_", AllowAll: true, AdminIfSuperuser: true}
	h := startHub(t, hubLn, "/", config.Hub{Tenants: []config.Tenant{tenant}})

	var super seed.User
	for _, u := range users {
		if u.IsSuperuser {
			super = u
		}
	}
	if super.Username == "" {
		t.Fatal("no superuser seeded")
	}
	b := newBrowser(t)
	loginForm(t, b, h, "bunny", super.Username, super.Password)
	name := "bunny_" + super.Username
	u, err := h.Hub.store.User(ctx, name)
	if err != nil || !u.Admin {
		t.Fatalf("hub user %q: %+v %v (superusers are admins)", name, u, err)
	}
	token := createToken(t, b, h)
	var wg sync.WaitGroup
	codes := make([]int, 6)
	answers := make([]tenantTokenAnswer, 6)
	for i := range codes {
		wg.Go(func() {
			codes[i] = apiJSON(t, "GET", h.URL+"hub/api/users/"+name+"/tenant-token", token, nil, &answers[i])
		})
	}
	wg.Wait()
	for i := range codes {
		if codes[i] != 200 || answers[i].APIURL != base || answers[i].Tenant != "bunny" {
			t.Errorf("tenant-token %d: %d %+v", i, codes[i], answers[i])
		}
	}
	if tok, _ := h.Hub.store.GetTenantToken(ctx, name); tok.Version < 2 {
		t.Errorf("the token was never refreshed (version %d)", tok.Version)
	}
	// The last token works at the tenant's Export API.
	var me map[string]any
	req, _ := http.NewRequest("GET", base+"/api/export/v1/me", nil)
	var final tenantTokenAnswer
	apiJSON(t, "GET", h.URL+"hub/api/users/"+name+"/tenant-token", token, nil, &final)
	req.Header.Set("Authorization", "Bearer "+final.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("export API with the refreshed token: %s %v", resp.Status, me)
	}
}
