package cli

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ohtkhub/ohtkhub/internal/config"
	"github.com/ohtkhub/ohtkhub/internal/djangohash"
	"github.com/ohtkhub/ohtkhub/internal/ohtkdb"
)

// run runs the command line in-process and returns its exit code and output.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := Main(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := run(t, args...)
	if code != 0 {
		t.Fatalf("ohtkhub %s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	return out
}

func TestAdminCommands(t *testing.T) {
	dir := t.TempDir()
	d := "--data-dir=" + dir
	if out := mustRun(t, "tenant", "create", d, "--schema", "bunny", "--name", "Bunny Land", "--domain", "www.Bunny.example.org:443,b2.example.org"); out != "created tenant bunny (id 1)\n" {
		t.Fatalf("tenant create: %q", out)
	}
	mustRun(t, "authority", "create", d, "--tenant", "bunny", "--code", "TH", "--name", "ประเทศไทย")
	mustRun(t, "authority", "create", d, "--tenant", "bunny", "--code", "N", "--name", "ภาคเหนือ", "--parent", "TH")
	if out := mustRun(t, "authority", "create", d, "--tenant", "bunny", "--code", "CM", "--name", "เชียงใหม่", "--parent", "N,TH"); out != "created authority CM (id 3)\n" {
		t.Fatalf("authority create: %q", out)
	}
	mustRun(t, "user", "create", d, "--tenant", "bunny", "--username", "สมชาย", "--password", "pw-1", "--authority", "CM", "--role", "OFC", "--iterations", "1000")
	mustRun(t, "user", "create", d, "--tenant", "bunny", "--username", "root", "--password", "pw-2", "--superuser", "--iterations", "1000")
	out := mustRun(t, "app", "create", d, "--tenant", "bunny", "--name", "Notebooks", "--redirect-uri", "http://127.0.0.1:8000/hub/bunny/oauth_callback")
	if !regexp.MustCompile(`^client_id: [0-9A-Za-z]{40}\nclient_secret: [0-9A-Za-z]{64}\n$`).MatchString(out) {
		t.Fatalf("app create: %q", out)
	}
	key := strings.TrimSpace(mustRun(t, "apikey", "create", d, "--tenant", "bunny", "--username", "สมชาย", "--name", "notebook"))
	if !regexp.MustCompile(`^ohtk_[0-9A-Za-z]{40}$`).MatchString(key) {
		t.Fatalf("api key %q", key)
	}

	store, err := ohtkdb.Open(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	tn, err := store.TenantByHost(t.Context(), "bunny.example.org")
	if err != nil || tn.SchemaName != "bunny" || strings.Join(tn.Domains, ",") != "bunny.example.org,b2.example.org" {
		t.Fatalf("tenant: %+v %v", tn, err)
	}
	db, _ := store.TenantDB(t.Context(), "bunny")
	var parents string
	if err := db.QueryRow(`SELECT group_concat(code, ',') FROM (SELECT p.code FROM accounts_authority_inherits i
		JOIN accounts_authority p ON p.id = i.to_authority_id JOIN accounts_authority c ON c.id = i.from_authority_id
		WHERE c.code = 'CM' ORDER BY p.code)`).Scan(&parents); err != nil || parents != "N,TH" {
		t.Fatalf("parents of CM: %q %v", parents, err)
	}
	var hash, role string
	var super bool
	if err := db.QueryRow(`SELECT u.password, u.is_superuser, au.role FROM accounts_user u JOIN accounts_authorityuser au ON au.user_ptr_id = u.id WHERE u.username = 'สมชาย'`).Scan(&hash, &super, &role); err != nil {
		t.Fatal(err)
	}
	if ok, _ := djangohash.Check("pw-1", hash); !ok || super || role != "OFC" || !strings.HasPrefix(hash, "pbkdf2_sha256$1000$") {
		t.Fatalf("user row: %s %v %s", hash, super, role)
	}
	var prefix, keyHash string
	if err := db.QueryRow(`SELECT prefix, key_hash FROM ohtkhub_apikey`).Scan(&prefix, &keyHash); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(key))
	if prefix != key[:12] || keyHash != hex.EncodeToString(sum[:]) {
		t.Fatalf("api key row: %s %s", prefix, keyHash)
	}
	var secret, ctype string
	if err := db.QueryRow(`SELECT client_secret, client_type FROM oauth2_provider_application`).Scan(&secret, &ctype); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, "pbkdf2_sha256$10000$") || ctype != "confidential" {
		t.Fatalf("application row: %s %s", secret, ctype)
	}
}

func TestAdminErrors(t *testing.T) {
	dir := t.TempDir()
	d := "--data-dir=" + dir
	mustRun(t, "tenant", "create", d, "--schema", "bunny", "--name", "Bunny")
	for _, tc := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"tenant", "create", d, "--schema", "bunny", "--name", "Again"}, 1, `ohtkhub tenant: --schema: tenant "bunny": ohtkdb: already exists` + "\n"},
		{[]string{"tenant", "create", d, "--schema", "Bad Schema", "--name", "X"}, 1,
			`ohtkhub tenant: --schema: invalid schema name "Bad Schema": use 1-40 characters of a-z, 0-9 and _, starting with a letter` + "\n"},
		{[]string{"tenant", "create", d, "--schema", "../../escaped", "--name", "X"}, 1,
			`ohtkhub tenant: --schema: invalid schema name "../../escaped": use 1-40 characters of a-z, 0-9 and _, starting with a letter` + "\n"},
		{[]string{"tenant", "create", d, "--schema", "Bunny", "--name", "X"}, 1,
			`ohtkhub tenant: --schema: invalid schema name "Bunny": use 1-40 characters of a-z, 0-9 and _, starting with a letter` + "\n"},
		{[]string{"tenant", "create", d, "--schema", "pg_temp", "--name", "X"}, 1,
			`ohtkhub tenant: --schema: invalid schema name "pg_temp": names starting with pg_ are PostgreSQL's` + "\n"},
		{[]string{"tenant", "create", d, "--schema", "login", "--name", "X"}, 1, `ohtkhub tenant: --schema: invalid schema name "login": reserved` + "\n"},
		{[]string{"tenant", "create", "--schema", "x", "--name", "X"}, 1, "ohtkhub tenant: --data-dir or --config is required\n"},
		{[]string{"tenant", "create", d, "--name", "X"}, 1, "ohtkhub tenant: --schema is required\n"},
		{[]string{"tenant", "delete"}, 1, `ohtkhub tenant: unknown verb "delete" (run 'ohtkhub tenant --help')` + "\n"},
		{[]string{"authority", "create", d, "--tenant", "nope", "--code", "A", "--name", "A"}, 1, `ohtkhub authority: tenant "nope" not found` + "\n"},
		{[]string{"authority", "create", d, "--tenant", "bunny", "--code", "A", "--name", "A", "--parent", "ZZ"}, 1, `ohtkhub authority: parent authority "ZZ" not found` + "\n"},
		{[]string{"user", "create", d, "--tenant", "bunny", "--username", "u"}, 1, "ohtkhub user: give exactly one of --password-stdin and --password\n"},
		{[]string{"user", "create", d, "--tenant", "bunny", "--username", "u", "--password", "p", "--role", "BOSS"}, 1, `ohtkhub user: --role "BOSS": want ADM, OFC or REP` + "\n"},
		{[]string{"app", "create", d, "--tenant", "bunny", "--name", "n", "--redirect-uri", "ftp://x"}, 1,
			`ohtkhub app: oauthserver: redirect URI "ftp://x": want an absolute http(s) URI without fragment or spaces` + "\n"},
		{[]string{"apikey", "create", d, "--tenant", "bunny", "--username", "ghost", "--name", "n"}, 1, `ohtkhub apikey: user "ghost" not found` + "\n"},
		{[]string{"api", "--config", filepath.Join(dir, "missing.yaml")}, 1, "ohtkhub api: open " + filepath.Join(dir, "missing.yaml") + ": no such file or directory\n"},
	} {
		code, _, errOut := run(t, tc.args...)
		if code != tc.code || errOut != tc.err {
			t.Errorf("%v: exit %d %q, want %d %q", tc.args, code, errOut, tc.code, tc.err)
		}
	}
	for _, args := range [][]string{{"tenant", "create", "--help"}, {"user", "--help"}, {"api", "--help"}, {"seed", "--help"}} {
		if code, out, errOut := run(t, args...); code != 0 || !strings.HasPrefix(out, "usage: ohtkhub") || errOut != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
}

func TestUserPasswordStdin(t *testing.T) {
	dir := t.TempDir()
	d := "--data-dir=" + dir
	mustRun(t, "tenant", "create", d, "--schema", "bunny", "--name", "Bunny")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	w.WriteString("secret from stdin\n")
	w.Close()
	old := os.Stdin
	os.Stdin = r
	defer func() { os.Stdin = old }()
	mustRun(t, "user", "create", d, "--tenant", "bunny", "--username", "u", "--password-stdin", "--iterations", "1000")
	store, _ := ohtkdb.Open(t.Context(), dir)
	defer store.Close()
	db, _ := store.TenantDB(t.Context(), "bunny")
	var hash string
	db.QueryRow(`SELECT password FROM accounts_user WHERE username = 'u'`).Scan(&hash)
	if ok, _ := djangohash.Check("secret from stdin", hash); !ok {
		t.Fatalf("password from stdin not stored: %s", hash)
	}
}

func TestAPICommandServesAndStops(t *testing.T) {
	a := startAPICommand(t, "listen: 127.0.0.1:0\ndata_dir: data\n", 1)
	dir := a.dir
	resp, err := http.Get(a.base(t) + "/health")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != `{"status":"ok"}` {
		t.Fatalf("health: %d %s", resp.StatusCode, body)
	}
	a.stop(t)
	if _, err := os.Stat(filepath.Join(dir, "data", "public.db")); err != nil {
		t.Fatalf("data_dir relative to the config file: %v", err)
	}
}

func TestSeedCommand(t *testing.T) {
	dir := t.TempDir()
	d := "--data-dir=" + dir
	mustRun(t, "tenant", "create", d, "--schema", "bunny", "--name", "Bunny")
	out := mustRun(t, "seed", d, "--tenant", "bunny", "--reports", "50", "--zero-reports", "5", "--iterations", "1000")
	if !strings.HasPrefix(out, "seeded tenant bunny: 50 incident reports, 5 zero reports; logins:\n  (every seeded user's password: ") {
		t.Fatalf("seed output %q", out)
	}
	store, _ := ohtkdb.Open(t.Context(), dir)
	defer store.Close()
	db, _ := store.TenantDB(t.Context(), "bunny")
	var reports, zero int
	db.QueryRow(`SELECT count(*) FROM reports_incidentreport`).Scan(&reports)
	db.QueryRow(`SELECT count(*) FROM reports_zeroreport`).Scan(&zero)
	if reports != 50 || zero != 5 {
		t.Fatalf("seeded %d reports, %d zero reports", reports, zero)
	}
	// A second seed writes nothing and says so, rather than print logins it did not make.
	code, out, errOut := run(t, "seed", d, "--tenant", "bunny", "--reports", "7", "--password", "another-password")
	if code != 1 || out != "" || errOut != "ohtkhub seed: tenant bunny already has users: nothing written (seed fills an empty tenant)\n" {
		t.Fatalf("second seed: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	db.QueryRow(`SELECT count(*) FROM reports_incidentreport`).Scan(&reports)
	if reports != 50 {
		t.Fatalf("%d reports after the second seed", reports)
	}
}

// TestTenantCreateCaseDuplicate checks that a schema name differing from an existing one only
// in case is refused: both would be one hub tenant key. The existing "Bunny" stands for a
// tenant created before schema names were checked.
func TestTenantCreateCaseDuplicate(t *testing.T) {
	dir := t.TempDir()
	st, err := ohtkdb.Open(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateTenant(t.Context(), "Bunny", "Bunny", nil); err != nil {
		t.Fatal(err)
	}
	st.Close()
	code, _, errOut := run(t, "tenant", "create", "--data-dir", dir, "--schema", "bunny", "--name", "bunny")
	if want := `ohtkhub tenant: --schema: tenant "bunny": ohtkdb: already exists: tenant "Bunny" differs only in case` + "\n"; code != 1 || errOut != want {
		t.Fatalf("exit %d %q, want %q", code, errOut, want)
	}
}

// TestNewSchemaNamesAreHubKeys checks that every schema name tenant create accepts is a
// valid tenant key of hub.yaml.
func TestNewSchemaNamesAreHubKeys(t *testing.T) {
	hubYAML := func(key string) string {
		return "public_url: http://127.0.0.1:8000/\ndata_dir: x\ncrypt_keys: [\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"]\ntenants:\n  - key: \"" + key +
			"\"\n    client_id: a\n    client_secret: b\n    authorize_url: http://127.0.0.1:1/o/authorize/\n    token_url: http://127.0.0.1:1/o/token/\n" +
			"    userinfo_url: http://127.0.0.1:1/api/userinfo/\n    api_url: http://127.0.0.1:1/t/x\n    allow_all: true\n"
	}
	names := []string{"bunny", "bon", "b", "a1", "north_east", "x" + strings.Repeat("y", 39), "x" + strings.Repeat("y", 40),
		"North", "1bunny", "_bunny", "bun-ny", "bun ny", "pg_x", "public", "information_schema",
		"api", "static", "login", "logout", "home", "spawn", "spawn-pending", "stop", "token", "admin", "health", "metrics", "user", "hub", "t", "o"}
	for _, name := range names {
		if ohtkdb.CheckNewSchemaName(name) != nil {
			continue
		}
		p := filepath.Join(t.TempDir(), "hub.yaml")
		os.WriteFile(p, []byte(hubYAML(name)), 0o600)
		if _, err := config.Load(p); err != nil {
			t.Errorf("schema %q is accepted but is no hub tenant key: %v", name, err)
		}
	}
}
