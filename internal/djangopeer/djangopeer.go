// Package djangopeer runs a real Django OAuth Toolkit server for tests: the minimal Django
// project in testdata/djangopeer, with Django's login page at /accounts/login/, DOT at /o/
// and an /api/userinfo/ that answers like OHTK's.
//
// It needs Debian's python3-django and python3-django-oauth-toolkit under /usr/bin/python3;
// a test that starts a peer fails, with the command that installs them, when they are missing.
package djangopeer

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// Python is the interpreter that has Debian's Django packages.
const Python = "/usr/bin/python3"

// InstallHint is the command that installs what a peer needs.
const InstallHint = "apt-get install -y python3-django python3-django-oauth-toolkit"

// Options configure a peer.
type Options struct {
	// RedirectURI is the OAuth application's redirect URI (several: space-separated).
	// Default "http://127.0.0.1/callback".
	RedirectURI string
	// SkipAuthorization skips DOT's consent page.
	SkipAuthorization bool
	// TenantName is the display name userinfo prefixes usernames with. Default "Bunny Province".
	TenantName string
	// AccessTokenLifetime is DOT's ACCESS_TOKEN_EXPIRE_SECONDS; zero means DOT's 10 hours.
	AccessTokenLifetime time.Duration
}

// Peer is a running Django OAuth Toolkit server.
type Peer struct {
	// URL is the server's base URL, "http://127.0.0.1:<port>", without a trailing slash.
	URL string
	// ClientID and ClientSecret identify the confidential authorization-code application.
	ClientID, ClientSecret string
	// Users maps each username to its password.
	Users map[string]string
	// TenantName is the display name in userinfo's usernames.
	TenantName string
}

// The peer's users. Alice belongs to an authority; the Thai username has a space in it;
// admin is a superuser without an authority, as in OHTK.
var users = []peerUser{
	{Username: "alice", Password: "alice-Pass-1", Email: "alice@example.org", FirstName: "Alice", LastName: "Wongsawat",
		Role: "OFC", Authority: &peerAuthority{Code: "5001", Name: "อำเภอเมืองเชียงใหม่"}},
	{Username: "สมชาย ใจดี", Password: "somchai-Pass-2", Email: "somchai@example.org", FirstName: "สมชาย", LastName: "ใจดี",
		Role: "REP", Authority: &peerAuthority{Code: "500108", Name: "ตำบลสุเทพ"}},
	{Username: "admin", Password: "admin-Pass-3", Email: "admin@example.org", FirstName: "Admin", IsSuperuser: true},
}

type peerUser struct {
	Username    string         `json:"username"`
	Password    string         `json:"password"`
	Email       string         `json:"email"`
	FirstName   string         `json:"first_name"`
	LastName    string         `json:"last_name"`
	IsSuperuser bool           `json:"is_superuser"`
	Role        string         `json:"role,omitempty"`
	Authority   *peerAuthority `json:"authority"`
}

type peerAuthority struct {
	Code string `json:"code"`
	Name string `json:"name"`
}

type config struct {
	Database            string     `json:"database"`
	SecretKey           string     `json:"secret_key"`
	TenantName          string     `json:"tenant_name"`
	AccessTokenLifetime int        `json:"access_token_lifetime,omitempty"`
	Users               []peerUser `json:"users"`
	Application         struct {
		Name              string `json:"name"`
		ClientID          string `json:"client_id"`
		ClientSecret      string `json:"client_secret"`
		RedirectURIs      string `json:"redirect_uris"`
		SkipAuthorization bool   `json:"skip_authorization"`
	} `json:"application"`
}

var checkOnce = sync.OnceValue(func() error {
	out, err := exec.Command(Python, "-c", "import django, oauth2_provider").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s cannot import django and oauth2_provider (%v: %s); install them with: %s",
			Python, err, bytes.TrimSpace(out), InstallHint)
	}
	return nil
})

// projectDir is testdata/djangopeer at the module root, found from this file's path so the
// peer starts from the tests of any package.
func projectDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "djangopeer")
}

// Start runs a peer for the duration of the test: migrations and users in a fresh SQLite
// database in a temporary directory, then a threaded WSGI server on a free port of
// 127.0.0.1. The server is killed when the test ends.
func Start(t testing.TB, opts Options) *Peer {
	t.Helper()
	if err := checkOnce(); err != nil {
		t.Fatal(err)
	}
	if opts.RedirectURI == "" {
		opts.RedirectURI = "http://127.0.0.1/callback"
	}
	if opts.TenantName == "" {
		opts.TenantName = "Bunny Province"
	}
	dir := t.TempDir()
	var cfg config
	cfg.Database = filepath.Join(dir, "peer.sqlite3")
	cfg.SecretKey = rand.Text() + rand.Text()
	cfg.TenantName = opts.TenantName
	cfg.AccessTokenLifetime = int(opts.AccessTokenLifetime / time.Second)
	if opts.AccessTokenLifetime > 0 && cfg.AccessTokenLifetime == 0 {
		cfg.AccessTokenLifetime = 1
	}
	cfg.Users = users
	cfg.Application.Name = "ohtkhub"
	cfg.Application.ClientID = rand.Text()[:20] + rand.Text()[:20]
	cfg.Application.ClientSecret = rand.Text() + rand.Text() + rand.Text()
	cfg.Application.RedirectURIs = opts.RedirectURI
	cfg.Application.SkipAuthorization = opts.SkipAuthorization
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "peer.json")
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(Python, filepath.Join(projectDir(), "serve.py"), cfgPath)
	cmd.Dir = dir
	cmd.Env = pythonEnv()
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("djangopeer: start %s: %v", Python, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("djangopeer log:\n%s", stderr.String())
		}
	})

	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if url, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
				lines <- url
			}
		}
	}()
	var url string
	select {
	case url = <-lines:
	case <-exited:
		t.Fatalf("djangopeer exited before serving:\n%s", stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("djangopeer did not start within 60s:\n%s", stderr.String())
	}
	resp, err := http.Get(url + "/accounts/login/")
	if err != nil {
		t.Fatalf("djangopeer: %v\n%s", err, stderr.String())
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("djangopeer: GET /accounts/login/: %s\n%s", resp.Status, stderr.String())
	}

	p := &Peer{URL: url, ClientID: cfg.Application.ClientID, ClientSecret: cfg.Application.ClientSecret,
		Users: map[string]string{}, TenantName: opts.TenantName}
	for _, u := range users {
		p.Users[u.Username] = u.Password
	}
	return p
}

// pythonEnv keeps the environment but drops what would make /usr/bin/python3 load another
// interpreter's modules.
func pythonEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PYTHONPATH=") || strings.HasPrefix(kv, "PYTHONHOME=") || strings.HasPrefix(kv, "DJANGO_SETTINGS_MODULE=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1")
}

// lockedBuffer collects the server's log while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
