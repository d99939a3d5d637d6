package demo

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestFilesPrivateToTheHub: as root (users' servers under their own uids), the demo's files —
// its secrets and logins, the api's databases and key, the hub's database and logs — are
// readable by root only, the directories users pass through cannot be listed, and the ohtk
// module stays readable; a process under a user's uid reads none of the rest.
func TestFilesPrivateToTheHub(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the layout for isolated servers needs the hub to run as root")
	}
	d := startDemo(t, 20)
	dir := filepath.Dir(d.infoPath)
	private := []string{"demo.json", "demo-secrets.json", "api", "api/public.db", "api/secret_key", "api/tenants",
		"api/tenants/bunny.db", "skel", "hub/hub.db", "hub/logs"}
	for _, c := range []struct {
		path string
		mode os.FileMode
	}{
		{"", 0o711}, {"hub", 0o711}, {"hub/users", 0o711}, {"hub/python", 0o755}, {"hub/python/ohtk/__init__.py", 0o644},
	} {
		checkMode(t, filepath.Join(dir, c.path), c.mode)
	}
	for _, p := range private {
		fi, err := os.Stat(filepath.Join(dir, p))
		if err != nil {
			t.Error(err)
			continue
		}
		if fi.Mode().Perm()&0o077 != 0 || fi.Sys().(*syscall.Stat_t).Uid != 0 {
			t.Errorf("%s: mode %#o uid %d, want private to root", p, fi.Mode().Perm(), fi.Sys().(*syscall.Stat_t).Uid)
		}
	}
	// What a user's kernel would try, under a uid of the users' range.
	code := "import os, sys\nfor p in sys.argv[1:]:\n    try:\n        os.listdir(p) if os.path.isdir(p) else open(p, 'rb').read()\n        print('ok')\n    except OSError as e:\n        print(type(e).__name__)\n"
	paths := []string{dir, filepath.Join(dir, "hub")}
	for _, p := range private {
		paths = append(paths, filepath.Join(dir, p))
	}
	paths = append(paths, filepath.Join(dir, "hub/python/ohtk/__init__.py"))
	cmd := exec.Command("/usr/bin/python3", append([]string{"-c", code}, paths...)...)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: testUIDBase + 1, Gid: testUIDBase + 1, Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	want := strings.TrimSpace(strings.Repeat("PermissionError\n", len(paths)-1) + "ok")
	if got := strings.TrimSpace(string(out)); got != want {
		t.Errorf("as a user's uid, for %v:\n%s\nwant\n%s", paths, got, want)
	}
}

func checkMode(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Error(err)
		return
	}
	if fi.Mode().Perm() != mode {
		t.Errorf("%s: mode %#o, want %#o", path, fi.Mode().Perm(), mode)
	}
}
