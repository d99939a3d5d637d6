package demo

import (
	"context"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

var hiddenInput = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)"`)

// signIn logs a user in at the hub through the tenant's login page with a plain HTTP
// client and returns the page the hub finally shows. next keeps the hub from spawning.

// testUIDBase is the demo tests' uid_base, apart from the uids of other packages' tests,
// which run side by side.
const testUIDBase = 230000

func signIn(t *testing.T, c *http.Client, hubURL, key, username, password, next string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(hubURL + "hub/" + key + "/oauth_login?next=" + url.QueryEscape(next))
	if err != nil {
		t.Fatal(err)
	}
	page := readBody(t, resp)
	if resp.StatusCode != 200 || !strings.Contains(resp.Request.URL.Path, "/accounts/login/") {
		t.Fatalf("want the tenant's login page, got %s at %s", resp.Status, resp.Request.URL)
	}
	form := url.Values{}
	for _, m := range hiddenInput.FindAllStringSubmatch(page, -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	form.Set("username", username)
	form.Set("password", password)
	req, _ := http.NewRequest("POST", resp.Request.URL.String(), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", resp.Request.URL.Scheme+"://"+resp.Request.URL.Host)
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp, readBody(t, resp)
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func hubUserName(t *testing.T, c *http.Client, hubURL string) string {
	t.Helper()
	resp, err := c.Get(hubURL + "hub/api/user")
	if err != nil {
		t.Fatal(err)
	}
	body := readBody(t, resp)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /hub/api/user: %s %s", resp.Status, body)
	}
	var u struct{ Name string }
	json.Unmarshal([]byte(body), &u)
	return u.Name
}

// TestRestartKeepsState starts the demo twice on one data directory, the second time on
// other ports: logins, users and sessions survive, and signing in works at the new address.
func TestRestartKeepsState(t *testing.T) {
	dir := t.TempDir()
	start := func() *Demo {
		d, err := Start(t.Context(), Options{DataDir: dir, HubAddr: "127.0.0.1:0", APIAddr: "127.0.0.1:0", UIDBase: testUIDBase, Reports: 40})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	stop := func(d *Demo) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := d.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	}

	d := start()
	first := d.Info
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	bunny := first.Tenants[0]
	alice := user(t, bunny, "alice")
	resp, page := signIn(t, c, first.HubURL, bunny.Key, alice.Username, alice.Password, "/hub/home")
	if resp.StatusCode != 200 || !strings.HasSuffix(resp.Request.URL.Path, "/hub/home") {
		t.Fatalf("after login: %s at %s\n%s", resp.Status, resp.Request.URL, page)
	}
	if got := hubUserName(t, c, first.HubURL); got != "bunny_alice" {
		t.Fatalf("signed in as %q, want bunny_alice", got)
	}
	stop(d)

	d = start()
	defer stop(d)
	second := d.Info
	if second.HubURL == first.HubURL {
		t.Fatalf("second run on the same address %s; the test wants another port", second.HubURL)
	}
	if !reflect.DeepEqual(first.Tenants[0].Users, second.Tenants[0].Users) || !reflect.DeepEqual(first.Tenants[1].Users, second.Tenants[1].Users) {
		t.Errorf("users changed across a restart:\n%+v\n%+v", first.Tenants, second.Tenants)
	}
	var onDisk Info
	body, err := os.ReadFile(filepath.Join(dir, "demo.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(body, &onDisk); err != nil || onDisk.HubURL != second.HubURL {
		t.Errorf("demo.json: hub_url %q, want %q (%v)", onDisk.HubURL, second.HubURL, err)
	}
	// The browser's cookie still names a live session (cookies are per host, not per port).
	if got := hubUserName(t, c, second.HubURL); got != "bunny_alice" {
		t.Errorf("session after restart: %q, want bunny_alice", got)
	}
	// A fresh browser signs in at the hub's new address: the tenant knows the new redirect URI.
	jar2, _ := cookiejar.New(nil)
	c2 := &http.Client{Jar: jar2}
	bon := second.Tenants[1]
	resp, page = signIn(t, c2, second.HubURL, bon.Key, alice.Username, user(t, bon, "alice").Password, "/hub/home")
	if resp.StatusCode != 200 || !strings.HasSuffix(resp.Request.URL.Path, "/hub/home") {
		t.Fatalf("login after restart: %s at %s\n%s", resp.Status, resp.Request.URL, page)
	}
	if got := hubUserName(t, c2, second.HubURL); got != "bon_alice" {
		t.Errorf("signed in as %q, want bon_alice", got)
	}
}

// TestMissingSingleUserSaysWhatToInstall: without jupyterhub-singleuser the demo stops
// before doing anything and names the packages to install.
func TestMissingSingleUserSaysWhatToInstall(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	_, err := Start(t.Context(), Options{DataDir: dir, HubAddr: "127.0.0.1:0", APIAddr: "127.0.0.1:0", UIDBase: testUIDBase, SingleUser: "no-such-jupyterhub-singleuser"})
	if err == nil || !strings.Contains(err.Error(), InstallHint) {
		t.Fatalf("error %v, want one naming %q", err, InstallHint)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("data directory created before the check failed: %v", err)
	}
}
