package cli

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ohtkhub/ohtkhub/internal/datadir"
)

// TestAPISecondStartOnDataDirFails starts an api, then a second one on the same data
// directory: the second stops with one line naming the directory and the first one's pid,
// and the first goes on serving.
func TestAPISecondStartOnDataDirFails(t *testing.T) {
	a := startAPICommand(t, "listen: 127.0.0.1:0\ndata_dir: data\n", 1)
	dir, cfg, base := a.dir, a.cfg, a.base(t)

	code, _, errOut := run(t, "api", "--config", cfg)
	want := fmt.Sprintf("ohtkhub api: %s is in use by another ohtkhub (pid %d)\n", filepath.Join(dir, "data"), os.Getpid())
	if code != 1 || errOut != want {
		t.Fatalf("second api: exit %d %q, want 1 %q", code, errOut, want)
	}

	resp, err := http.Get(base + "/health")
	if err != nil {
		t.Fatalf("first api after the second start: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("first api health: %d", resp.StatusCode)
	}
	// Admin commands keep working beside the running api: SQLite shares the databases.
	mustRun(t, "tenant", "create", "--config", cfg, "--schema", "bunny", "--name", "Bunny")

	a.stop(t)
	// Stopped, it leaves the directory free.
	l, err := datadir.Acquire(filepath.Join(dir, "data"))
	if err != nil {
		t.Fatalf("after the api stopped: %v", err)
	}
	l.Release()
}

// TestServingCommandsRefuseALockedDataDir checks demo and hub against a data directory
// another ohtkhub holds: each stops with one line before touching the directory's files.
func TestServingCommandsRefuseALockedDataDir(t *testing.T) {
	dir := t.TempDir()
	hubYAML := filepath.Join(dir, "hub.yaml")
	os.WriteFile(hubYAML, []byte("public_url: http://127.0.0.1:8000/\nlisten: 127.0.0.1:0\ndata_dir: hubdata\n"+
		"crypt_keys: [\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"]\ntenants:\n  - key: bunny\n    label: Bunny\n"+
		"    client_id: a\n    client_secret: b\n    authorize_url: http://127.0.0.1:1/o/authorize/\n    token_url: http://127.0.0.1:1/o/token/\n"+
		"    userinfo_url: http://127.0.0.1:1/api/userinfo/\n    api_url: http://127.0.0.1:1/t/bunny\n    allow_all: true\n"), 0o600)
	demoDir := filepath.Join(dir, "demo")
	for _, tc := range []struct {
		name, locked string
		args         []string
	}{
		{"demo", demoDir, []string{"demo", "--data-dir", demoDir, "--hub-addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0"}},
		{"demo", filepath.Join(demoDir, "api"), []string{"demo", "--data-dir", demoDir, "--hub-addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0"}},
		{"hub", filepath.Join(dir, "hubdata"), []string{"hub", "--config", hubYAML}},
	} {
		t.Run(strings.TrimPrefix(tc.locked, dir+string(filepath.Separator)), func(t *testing.T) {
			l, err := datadir.Acquire(tc.locked)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Release()
			code, _, errOut := run(t, tc.args...)
			want := fmt.Sprintf("ohtkhub %s: %s is in use by another ohtkhub (pid %d)\n", tc.name, tc.locked, os.Getpid())
			if code != 1 || errOut != want {
				t.Fatalf("exit %d %q, want 1 %q", code, errOut, want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(demoDir, "demo.json")); !os.IsNotExist(err) {
		t.Errorf("demo.json written by a refused demo: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "hubdata", "hub.db")); !os.IsNotExist(err) {
		t.Errorf("hub.db opened by a refused hub: %v", err)
	}
}
