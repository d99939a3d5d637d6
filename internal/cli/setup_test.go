package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ohtkhub/ohtkhub/internal/config"
	"github.com/ohtkhub/ohtkhub/internal/djangohash"
	"github.com/ohtkhub/ohtkhub/internal/ohtkdb"
)

// TestSetup: setup creates and seeds the template's tenant, registers the hub with the secret
// it writes into the hub configuration, keeps secrets and users when run again, follows a
// moved hub, and replaces a secret whose configuration was lost.
func TestSetup(t *testing.T) {
	dir := t.TempDir()
	api := filepath.Join(dir, "api.yaml")
	os.WriteFile(api, []byte("data_dir: api\n"), 0o600)
	tmpl := filepath.Join(dir, "hub.tmpl.yaml")
	os.WriteFile(tmpl, []byte(`# the template
public_url: ${HUB_URL}
data_dir: .
callback_rate: ${RATE:-30}
tenants:
  - key: bunny
    label: Bunny Province
    authorize_url: ${API_URL}/t/bunny/o/authorize/
    token_url: http://api:8001/t/bunny/o/token/
    userinfo_url: http://api:8001/t/bunny/api/userinfo/
    api_url: http://api:8001/t/bunny
    username_strip_prefix: "Bunny Province_"
    allow_all: true
spawner:
  kind: docker
  docker:
    network: ${NET}
`), 0o600)
	out := filepath.Join(dir, "hub", "hub.yaml")
	args := []string{"setup", "--config", api, "--hub-template", tmpl, "--hub-config", out, "--reports", "20", "--iterations", "1000"}
	t.Setenv("HUB_URL", "http://127.0.0.1:8000/")
	t.Setenv("API_URL", "http://127.0.0.1:8001")
	t.Setenv("NET", "ohtkhub-test")
	t.Setenv("RATE", "")

	stdout := mustRun(t, args...)
	if !regexp.MustCompile(`(?m)^seeded tenant bunny: 20 incident reports; every seeded user's password: \S{16}\n(  .*\n)*  alice +ADM`).MatchString(stdout) {
		t.Errorf("first run printed:\n%s", stdout)
	}
	cfg, err := config.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	tn := cfg.Tenants[0]
	if cfg.PublicURL != "http://127.0.0.1:8000/" || tn.AuthorizeURL != "http://127.0.0.1:8001/t/bunny/o/authorize/" || cfg.CallbackRate != 30 ||
		cfg.Spawner.Docker.Network != "ohtkhub-test" || tn.ClientID != "ohtkhub" || len(tn.ClientSecret) < 40 || len(cfg.CryptKeys) != 1 || cfg.DataDir != filepath.Dir(out) {
		t.Fatalf("written configuration: %+v", cfg)
	}
	body, _ := os.ReadFile(out)
	if !strings.Contains(string(body), "# the template") || !strings.HasPrefix(string(body), "# Written by `ohtkhub setup` from "+tmpl) {
		t.Errorf("written file lost the comments:\n%s", body)
	}
	if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
	app := func() (secretHash, redirects string) {
		t.Helper()
		store, err := ohtkdb.Open(t.Context(), filepath.Join(dir, "api"))
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		db, err := store.TenantDB(t.Context(), "bunny")
		if err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRow(`SELECT client_secret, redirect_uris FROM oauth2_provider_application WHERE client_id = 'ohtkhub'`).Scan(&secretHash, &redirects); err != nil {
			t.Fatal(err)
		}
		return
	}
	h, redirects := app()
	if ok, _ := djangohash.Check(tn.ClientSecret, h); !ok || redirects != "http://127.0.0.1:8000/hub/bunny/oauth_callback" {
		t.Fatalf("application: secret matches %v, redirect URIs %q", ok, redirects)
	}

	// Again, with the hub on another port: same secrets, users not seeded again.
	t.Setenv("HUB_URL", "http://127.0.0.1:9000/")
	stdout = mustRun(t, args...)
	if strings.Contains(stdout, "password") || !strings.Contains(stdout, "not seeded again") {
		t.Errorf("second run printed:\n%s", stdout)
	}
	again, err := config.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if again.Tenants[0].ClientSecret != tn.ClientSecret || again.CryptKeys[0] != cfg.CryptKeys[0] {
		t.Errorf("the second run changed the secrets")
	}
	if h, redirects := app(); redirects != "http://127.0.0.1:9000/hub/bunny/oauth_callback" {
		t.Errorf("redirect URIs after the move: %q", redirects)
	} else if ok, _ := djangohash.Check(tn.ClientSecret, h); !ok {
		t.Errorf("the kept secret no longer matches")
	}

	// The hub's configuration lost: a new secret, and the application follows it.
	os.Remove(out)
	mustRun(t, args...)
	lost, err := config.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if lost.Tenants[0].ClientSecret == tn.ClientSecret {
		t.Errorf("a lost configuration got the old secret back")
	}
	if h, _ := app(); !func() bool { ok, _ := djangohash.Check(lost.Tenants[0].ClientSecret, h); return ok }() {
		t.Errorf("the application does not take the new secret")
	}

	// A variable without a default must be set; nothing is written then.
	os.Remove(out)
	t.Setenv("NET", "")
	if code, _, errOut := run(t, args...); code != 1 || errOut != "ohtkhub setup: "+tmpl+": environment variable NET is not set\n" {
		t.Errorf("unset variable: exit %d %q", code, errOut)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("a failed setup wrote %s", out)
	}

	// A bad field is reported in the template, the file to fix.
	t.Setenv("NET", "ohtkhub-test")
	body, _ = os.ReadFile(tmpl)
	os.WriteFile(tmpl, []byte(strings.Replace(string(body), "kind: docker", "kind: nope", 1)), 0o600)
	want := "ohtkhub setup: " + tmpl + `: spawner.kind: invalid configuration: "nope" is not a known spawner (local, docker)` + "\n"
	if code, _, errOut := run(t, args...); code != 1 || errOut != want {
		t.Errorf("bad template: exit %d %q, want %q", code, errOut, want)
	}
}
