package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const validYAML = `public_url: https://example.org/notebooks
listen: 127.0.0.1:8000
data_dir: /var/lib/ohtkhub
crypt_keys: ["AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="]
tenants:
  - key: bunny
    label: Bunny Province
    client_id: abc
    client_secret: def
    authorize_url: https://bunny.example.org/o/authorize/
    token_url: https://bunny.example.org/o/token/
    userinfo_url: https://bunny.example.org/api/userinfo/
    api_url: https://bunny.example.org
    username_strip_prefix: "Bunny Province_"
    allow_all: true
    admin_if_superuser: true
spawner:
  kind: local
  local:
    skeleton_dir: /srv/skeleton
`

func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hub.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadDefaults(t *testing.T) {
	h, err := Load(write(t, validYAML))
	if err != nil {
		t.Fatal(err)
	}
	if h.PublicURL != "https://example.org/notebooks/" || h.BasePath() != "/notebooks/" {
		t.Errorf("public URL %q base %q", h.PublicURL, h.BasePath())
	}
	tn := h.Tenants[0]
	if !*tn.PKCE || tn.ClientAuth != "basic" || tn.UsernameClaim != "username" {
		t.Errorf("tenant defaults: pkce %v auth %q claim %q", *tn.PKCE, tn.ClientAuth, tn.UsernameClaim)
	}
	s := h.Spawner
	if s.Kind != "local" || strings.Join(s.Local.Command, " ") != "jupyterhub-singleuser" || s.Local.Python != "/usr/bin/python3" ||
		s.StartTimeout != time.Minute || s.HTTPTimeout != 30*time.Second || s.Local.SkeletonDir != "/srv/skeleton" ||
		s.Local.Isolate != IsolateAuto || s.Local.UIDBase != 200000 {
		t.Errorf("spawner defaults: %+v", s)
	}
	if h.SessionMaxAge != 14*24*time.Hour || h.CallbackRate != 60 {
		t.Errorf("session %s rate %d", h.SessionMaxAge, h.CallbackRate)
	}
}

func TestValidationNamesFileFieldProblem(t *testing.T) {
	for _, tc := range []struct{ name, from, to, want string }{
		{"unknown key", "listen:", "listn:", `: listn (line 2): invalid configuration: unknown field`},
		{"missing URL", "    token_url: https://bunny.example.org/o/token/\n", "", `tenants[0].token_url: invalid configuration: missing`},
		{"bad URL", "api_url: https://bunny.example.org", "api_url: bunny.example.org", `tenants[0].api_url: invalid configuration: "bunny.example.org" is not an http(s) URL`},
		{"bad secret", "client_secret: def", `client_secret: " def"`, `tenants[0].client_secret: invalid configuration: has leading or trailing white space`},
		{"bad key", "key: bunny", "key: Bunny!", `tenants[0].key: invalid configuration: "Bunny!" must be 1-40 characters`},
		{"reserved key", "key: bunny", "key: api", `tenants[0].key: invalid configuration: "api" is reserved`},
		{"bad crypt key", `crypt_keys: ["AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="]`, `crypt_keys: ["short"]`, `crypt_keys[0]: invalid configuration: not a 32-byte key`},
		{"nobody allowed", "    allow_all: true\n    admin_if_superuser: true\n", "", `tenants[0].allow_all: invalid configuration: no user could sign in`},
		{"unknown spawner", "kind: local", "kind: podman", `spawner.kind: invalid configuration: "podman" is not a known spawner (local, docker)`},
		{"bad memory limit", "kind: local", "kind: docker\n  docker:\n    mem_limit: lots", `spawner.docker.mem_limit: invalid configuration: "lots" is not a size such as 512M or 2G`},
		{"negative CPU limit", "kind: local", "kind: docker\n  docker:\n    cpu_limit: -1", `spawner.docker.cpu_limit: invalid configuration: -1 is negative`},
		{"bad isolate", "skeleton_dir: /srv/skeleton", "skeleton_dir: /srv/skeleton\n    isolate: yes", `spawner.local.isolate: invalid configuration: "yes" must be auto, on or off`},
		{"low uid base", "skeleton_dir: /srv/skeleton", "skeleton_dir: /srv/skeleton\n    uid_base: 1000", `spawner.local.uid_base: invalid configuration: 1000 is out of range (65536 to 2130706432)`},
		{"database not postgres", "data_dir: /var/lib/ohtkhub", "data_dir: /var/lib/ohtkhub\ndatabase: mysql://hub:pw@db/hub", `database: invalid configuration: want a postgres:// URL, or nothing for the SQLite database hub.db in data_dir`},
		{"negative callback rate", "data_dir: /var/lib/ohtkhub", "data_dir: /var/lib/ohtkhub\ncallback_rate: -1", `callback_rate: invalid configuration: -1 is negative`},
		{"negative session age", "data_dir: /var/lib/ohtkhub", "data_dir: /var/lib/ohtkhub\nsession_max_age: -1h", `session_max_age: invalid configuration: -1h0m0s is negative`},
		{"relative notebook dir", "kind: local", "kind: docker\n  docker:\n    notebook_dir: work", `spawner.docker.notebook_dir: invalid configuration: "work" is not an absolute path`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := strings.Replace(validYAML, tc.from, tc.to, 1)
			if body == validYAML {
				t.Fatal("replacement did not apply")
			}
			p := write(t, body)
			_, err := Load(p)
			if err == nil || !errors.Is(err, ErrInvalid) || !strings.HasPrefix(err.Error(), p+": ") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %s: …%s", err, p, tc.want)
			}
		})
	}
}

func TestDuplicateTenantKey(t *testing.T) {
	h, err := Load(write(t, validYAML))
	if err != nil {
		t.Fatal(err)
	}
	h.Tenants = append(h.Tenants, h.Tenants[0])
	h.Tenants[1].Label = "Other"
	if err := h.Validate(); err == nil || !strings.Contains(err.Error(), `tenants[1].key: invalid configuration: duplicate tenant key "bunny"`) {
		t.Fatalf("error %v", err)
	}
}

func TestCryptKeyFromEnvironment(t *testing.T) {
	t.Setenv("OHTKHUB_CRYPT_KEY", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f;AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	body := strings.Replace(validYAML, `crypt_keys: ["AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="]`+"\n", "", 1)
	h, err := Load(write(t, body))
	if err != nil {
		t.Fatal(err)
	}
	if len(h.CryptKeys) != 2 {
		t.Fatalf("keys %v", h.CryptKeys)
	}
	a, _ := DecodeKey(h.CryptKeys[0])
	b, _ := DecodeKey(h.CryptKeys[1])
	if string(a) != string(b) {
		t.Fatal("hex and base64 forms of one key decode differently")
	}
}

func TestDockerSpawnerConfig(t *testing.T) {
	body := strings.Replace(validYAML, "kind: local", `kind: docker
  docker:
    image: ohtkhub-notebook:latest
    network: ohtkhub
    mem_limit: 1.5G
    cpu_limit: 2
    connect_to_network: true
    env: {TZ: Asia/Bangkok}`, 1)
	h, err := Load(write(t, body))
	if err != nil {
		t.Fatal(err)
	}
	d := h.Spawner.Docker
	if h.Spawner.Kind != "docker" || d.Image != "ohtkhub-notebook:latest" || d.Network != "ohtkhub" || d.MemLimitBytes != 3<<29 ||
		d.CPULimit != 2 || !d.ConnectToNetwork || d.Env["TZ"] != "Asia/Bangkok" {
		t.Errorf("docker spawner: %+v", d)
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"1024": 1024, "512M": 512 << 20, "512m": 512 << 20, "2G": 2 << 30, "2GiB": 2 << 30,
		"1.5g": 3 << 29, "64k": 64 << 10, "1 MB": 1 << 20, "1t": 1 << 40} {
		if got, err := ParseBytes(in); err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v, want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "M", "-1G", "0", "2X", "1e9", "0.5"} {
		if got, err := ParseBytes(in); err == nil {
			t.Errorf("ParseBytes(%q) = %d, want an error", in, got)
		}
	}
}

// TestDatabase: a postgres:// URL puts the hub's state in PostgreSQL; anything else is
// refused without quoting the URL back, since it may hold a password.
func TestDatabase(t *testing.T) {
	url := "postgres://hub:s3cret@db.internal:5432/ohtkhub?sslmode=verify-full"
	h, err := Load(write(t, validYAML+"database: "+url+"\n"))
	if err != nil || h.Database != url {
		t.Fatalf("postgres URL: %q %v", h.Database, err)
	}
	_, err = Load(write(t, validYAML+"database: mysql://hub:s3cret@db.internal/ohtkhub\n"))
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("other URL: %v", err)
	}
}
