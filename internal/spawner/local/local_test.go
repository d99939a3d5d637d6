package local_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ohtkhub/ohtkhub/internal/config"
	"github.com/ohtkhub/ohtkhub/internal/spawner"
	"github.com/ohtkhub/ohtkhub/internal/spawner/local"
)

// newManager runs testdata/server.py under Debian's Python through the local spawner; each
// user's BEHAVIOUR comes from behaviours.
func newManager(t *testing.T, behaviours map[string]string, httpTimeout time.Duration) (*spawner.Manager, *local.Local, string) {
	t.Helper()
	return newManagerIn(t, t.TempDir(), config.LocalSpawner{}, behaviours, httpTimeout)
}

// newManagerIn is newManager on an existing data directory and with settings of cfg; users
// are numbered in the order they first start (alice 1, bob 2…) unless numbers says otherwise.
func newManagerIn(t *testing.T, dir string, cfg config.LocalSpawner, behaviours map[string]string, httpTimeout time.Duration) (*spawner.Manager, *local.Local, string) {
	t.Helper()
	return newManagerPolling(t, dir, cfg, behaviours, httpTimeout, 100*time.Millisecond)
}

// newManagerPolling is newManagerIn polling the servers every poll.
func newManagerPolling(t *testing.T, dir string, cfg config.LocalSpawner, behaviours map[string]string, httpTimeout, poll time.Duration) (*spawner.Manager, *local.Local, string) {
	t.Helper()
	script, _ := filepath.Abs("testdata/server.py")
	skel := t.TempDir()
	os.WriteFile(filepath.Join(skel, "Start here.ipynb"), []byte(`{"cells": []}`), 0o644)
	cfg.Command, cfg.Python, cfg.SkeletonDir = []string{"/usr/bin/python3", script}, "/usr/bin/python3", skel
	sp, err := local.New(cfg, nil, dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	numbers := map[string]int64{}
	m := spawner.NewManager(sp, spawner.Options{
		StartTimeout: 30 * time.Second, HTTPTimeout: httpTimeout, PollInterval: poll,
		Prepare: func(ctx context.Context, user string) (spawner.Spec, error) {
			mu.Lock()
			defer mu.Unlock()
			if numbers[user] == 0 {
				numbers[user] = userNumbers[user]
			}
			return spawner.Spec{User: user, Slug: user, Number: numbers[user], ServicePrefix: "/user/" + user + "/",
				Env: map[string]string{"JUPYTERHUB_USER": user, "BEHAVIOUR": behaviours[user]}}, nil
		},
		PublicURL: func(user string) string { return "/user/" + user + "/" },
	}, slog.New(slog.DiscardHandler))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := m.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	return m, sp, dir
}

// userNumbers are the test users' numbers in the hub's store.
var userNumbers = map[string]int64{"alice": 1, "bob": 2, "carol": 3, "dave": 4, "erin": 5, "slow": 6, "fast": 7}

// wait follows the user's events until ready or failed.
func wait(t *testing.T, m *spawner.Manager, user string) spawner.Event {
	t.Helper()
	past, ch, cancel := m.Subscribe(user)
	defer cancel()
	for _, e := range past {
		if e.Ready || e.Failed {
			return e
		}
	}
	timeout := time.After(30 * time.Second)
	for {
		select {
		case e := <-ch:
			if e.Ready || e.Failed {
				return e
			}
		case <-timeout:
			t.Fatalf("%s: no ready or failed event", user)
		}
	}
}

func TestSpawnReadyInOwnDirectoryWithSkeleton(t *testing.T) {
	m, _, dir := newManager(t, nil, 10*time.Second)
	if err := m.Start("alice"); err != nil {
		t.Fatal(err)
	}
	if e := wait(t, m, "alice"); !e.Ready || e.URL != "/user/alice/" {
		t.Fatalf("event %+v", e)
	}
	target, ok := m.Target("alice")
	if !ok {
		t.Fatal("no target for a ready server")
	}
	resp, err := http.Get(target.String() + "/user/alice/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	userDir := filepath.Join(dir, "users", "alice")
	if want := "alice " + userDir + " " + target.String() + "/user/alice/"; string(body) != want {
		t.Fatalf("server says %q, want %q", body, want)
	}
	if _, err := os.Stat(filepath.Join(userDir, "Start here.ipynb")); err != nil {
		t.Errorf("skeleton not copied: %v", err)
	}
}

func TestSpawnFailureShowsReason(t *testing.T) {
	m, _, _ := newManager(t, map[string]string{"bob": "crash"}, 10*time.Second)
	m.Start("bob")
	e := wait(t, m, "bob")
	want := "Spawn failed: server stopped: the server process exited (exit status 3): ModuleNotFoundError: No module named 'jupyterhub'"
	if !e.Failed || e.Message != want {
		t.Fatalf("event %+v, want failed %q", e, want)
	}
	if st := m.Status("bob"); st.State != spawner.StateStopped || !strings.Contains(st.LastError, "No module named 'jupyterhub'") {
		t.Fatalf("status %+v", st)
	}
}

func TestSpawnTimeout(t *testing.T) {
	m, _, _ := newManager(t, map[string]string{"carol": "hang"}, time.Second)
	m.Start("carol")
	e := wait(t, m, "carol")
	if !e.Failed || e.Message != "Spawn failed: the server did not answer HTTP within 1s" {
		t.Fatalf("event %+v", e)
	}
}

// TestSlowSpawnDoesNotBlockOthers: while one user's server hangs in its start, another's
// starts and becomes ready.
func TestSlowSpawnDoesNotBlockOthers(t *testing.T) {
	m, _, _ := newManager(t, map[string]string{"slow": "hang"}, 20*time.Second)
	m.Start("slow")
	start := time.Now()
	m.Start("fast")
	if e := wait(t, m, "fast"); !e.Ready {
		t.Fatalf("fast: %+v", e)
	}
	if st := m.Status("slow"); st.State != spawner.StatePending {
		t.Fatalf("slow: %+v", st)
	}
	t.Logf("fast ready after %s while slow pending", time.Since(start))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := m.Stop(ctx, "slow"); err != nil {
		t.Fatal(err)
	}
	if st := m.Status("slow"); st.State != spawner.StateStopped || st.LastError != "stopped before it was ready" {
		t.Fatalf("slow after stop: %+v", st)
	}
}

// TestDeadServerNoticed: a server process that dies is marked stopped with the reason.
func TestDeadServerNoticed(t *testing.T) {
	m, _, _ := newManager(t, nil, 10*time.Second)
	m.Start("dave")
	if e := wait(t, m, "dave"); !e.Ready {
		t.Fatalf("%+v", e)
	}
	pid := serverPID(t, m, "dave")
	syscall.Kill(pid, syscall.SIGKILL)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if st := m.Status("dave"); st.State == spawner.StateStopped {
			if !strings.Contains(st.LastError, "the server process exited (signal: killed)") {
				t.Fatalf("reason %q", st.LastError)
			}
			if _, ok := m.Target("dave"); ok {
				t.Fatal("dead server still routed")
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("dead server not noticed within 10s")
}

func TestStopEndsProcess(t *testing.T) {
	m, _, _ := newManager(t, nil, 10*time.Second)
	m.Start("erin")
	if e := wait(t, m, "erin"); !e.Ready {
		t.Fatalf("%+v", e)
	}
	pid := serverPID(t, m, "erin")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := m.Stop(ctx, "erin"); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Fatalf("process %d still alive after stop", pid)
	}
	if st := m.Status("erin"); st.State != spawner.StateStopped {
		t.Fatalf("%+v", st)
	}
}

// serverPID returns the process id of the user's running server.
func serverPID(t *testing.T, m *spawner.Manager, user string) int {
	t.Helper()
	pid, err := strconv.Atoi(m.Status(user).ID)
	if err != nil || pid <= 0 {
		t.Fatalf("%s has no running server process", user)
	}
	return pid
}

// requireRoot: only root can run servers under other uids.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("isolation needs the hub to run as root")
	}
}

// procIDs returns the real, effective, saved and filesystem uids, the gids and the
// supplementary groups of a process from /proc/<pid>/status.
func procIDs(t *testing.T, pid int) (uids, gids, groups string) {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		switch k {
		case "Uid":
			uids = strings.Join(strings.Fields(v), " ")
		case "Gid":
			gids = strings.Join(strings.Fields(v), " ")
		case "Groups":
			groups = strings.Join(strings.Fields(v), " ")
		}
	}
	return uids, gids, groups
}

// runAs runs a Python snippet as uid (gid uid, no supplementary groups), as a user's kernel
// runs, and returns what it printed.
func runAs(t *testing.T, uid int, code string) string {
	t.Helper()
	cmd := exec.Command("/usr/bin/python3", "-c", code)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid), Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python as uid %d: %v\n%s", uid, err, out)
	}
	return string(out)
}

// probe is run as one user: it tries each path (read a file, list a directory) and prints
// one line per path, "ok" or the error's class.
const probe = `
import os, sys
for p in sys.argv[1:]:
    try:
        if os.path.isdir(p): os.listdir(p)
        else: open(p, 'rb').read()
        print('ok')
    except OSError as e:
        print(type(e).__name__)
`

func probeAs(t *testing.T, uid int, paths ...string) []string {
	t.Helper()
	cmd := exec.Command("/usr/bin/python3", append([]string{"-c", probe}, paths...)...)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid), Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python as uid %d: %v\n%s", uid, err, out)
	}
	return strings.Fields(string(out))
}

// TestIsolatedServersRunUnderOwnUIDs: as root, two users' servers run under different uids
// (base + their number) with no supplementary groups, in directories of their own; from one
// user's uid the other's environment (their tokens), directory and log, the hub's database and
// the data directory's listing are out of reach, while the user's own directory, their own
// environment and the ohtk module are not.
func TestIsolatedServersRunUnderOwnUIDs(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	// Files of the hub as an older version left them: readable by all.
	os.WriteFile(filepath.Join(dir, "hub.db"), []byte("SQLite format 3"), 0o644)
	os.MkdirAll(filepath.Join(dir, "python", "ohtk"), 0o700)
	os.WriteFile(filepath.Join(dir, "python", "ohtk", "__init__.py"), []byte("# ohtk\n"), 0o600)
	m, sp, _ := newManagerIn(t, dir, config.LocalSpawner{}, nil, 10*time.Second)
	if !sp.Isolated() {
		t.Fatal("not isolated as root with isolate auto")
	}
	for _, u := range []string{"alice", "bob"} {
		if err := m.Start(u); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []string{"alice", "bob"} {
		if e := wait(t, m, u); !e.Ready {
			t.Fatalf("%s: %+v", u, e)
		}
	}
	alicePID, bobPID := serverPID(t, m, "alice"), serverPID(t, m, "bob")
	aliceUID, bobUID := config.DefaultUIDBase+1, config.DefaultUIDBase+2
	for _, c := range []struct {
		pid, uid int
	}{{alicePID, aliceUID}, {bobPID, bobUID}} {
		id := strconv.Itoa(c.uid)
		uids, gids, groups := procIDs(t, c.pid)
		if want := strings.Repeat(id+" ", 3) + id; uids != want || gids != want || groups != "" {
			t.Errorf("server %d: Uid %q Gid %q Groups %q, want %q and no groups", c.pid, uids, gids, groups, want)
		}
	}
	users := filepath.Join(dir, "users")
	for _, c := range []struct {
		path string
		uid  int
		mode os.FileMode
	}{
		{dir, 0, 0o711}, {users, 0, 0o711}, {filepath.Join(dir, "logs"), 0, 0o700}, {filepath.Join(dir, "hub.db"), 0, 0o600},
		{filepath.Join(users, "alice"), aliceUID, 0o700}, {filepath.Join(users, "alice", "Start here.ipynb"), aliceUID, 0o644},
		{filepath.Join(users, "bob"), bobUID, 0o700},
	} {
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if int(st.Uid) != c.uid || int(st.Gid) != c.uid || fi.Mode().Perm() != c.mode {
			t.Errorf("%s: owner %d:%d mode %#o, want %d:%d %#o", c.path, st.Uid, st.Gid, fi.Mode().Perm(), c.uid, c.uid, c.mode)
		}
	}

	got := probeAs(t, aliceUID,
		"/proc/"+strconv.Itoa(bobPID)+"/environ", // bob's tokens
		filepath.Join(users, "bob"),
		filepath.Join(dir, "hub.db"),
		filepath.Join(dir, "logs", "bob.log"),
		dir,   // listing the data directory
		users, // listing the users
		"/proc/"+strconv.Itoa(alicePID)+"/environ",
		filepath.Join(users, "alice", "Start here.ipynb"),
		filepath.Join(dir, "python", "ohtk", "__init__.py"),
	)
	want := []string{"PermissionError", "PermissionError", "PermissionError", "PermissionError", "PermissionError", "PermissionError", "ok", "ok", "ok"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("as alice's uid: %v, want %v", got, want)
	}
	// alice saves into her own directory; the file is hers.
	nb := filepath.Join(users, "alice", "Untitled.ipynb")
	if out := runAs(t, aliceUID, "open('"+nb+"', 'w').write('{}'); print('saved')"); out != "saved\n" {
		t.Fatalf("saving: %q", out)
	}
	env, _ := os.ReadFile("/proc/" + strconv.Itoa(alicePID) + "/environ")
	for _, kv := range []string{"HOME=" + filepath.Join(users, "alice"), "USER=alice", "LOGNAME=alice"} {
		if !strings.Contains("\x00"+string(env)+"\x00", "\x00"+kv+"\x00") {
			t.Errorf("server environment lacks %s", kv)
		}
	}
	if cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(alicePID) + "/cmdline"); strings.Contains(string(cmdline), "--allow-root") {
		t.Errorf("--allow-root passed to a server that is not root: %q", cmdline)
	}
}

// TestIsolatedUIDStableAcrossRestarts: a hub started again on the same data directory runs the
// user under the same uid, the files stay theirs; a directory made before isolation (owned by
// root) is given to the user.
func TestIsolatedUIDStableAcrossRestarts(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "users", "carol", "work"), 0o755)
	os.WriteFile(filepath.Join(dir, "users", "carol", "work", "old.ipynb"), []byte("{}"), 0o644)
	carolUID := config.DefaultUIDBase + 3
	for run := range 2 {
		m, _, _ := newManagerIn(t, dir, config.LocalSpawner{}, nil, 10*time.Second)
		m.Start("carol")
		if e := wait(t, m, "carol"); !e.Ready {
			t.Fatalf("run %d: %+v", run, e)
		}
		if uids, _, _ := procIDs(t, serverPID(t, m, "carol")); !strings.HasPrefix(uids, strconv.Itoa(carolUID)+" ") {
			t.Errorf("run %d: uids %q, want %d", run, uids, carolUID)
		}
		for _, p := range []string{"", "work", "work/old.ipynb"} {
			fi, err := os.Stat(filepath.Join(dir, "users", "carol", p))
			if err != nil {
				t.Fatal(err)
			}
			if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != carolUID || int(st.Gid) != carolUID {
				t.Errorf("run %d: %s owned by %d:%d", run, p, st.Uid, st.Gid)
			}
		}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		m.Close(ctx)
		cancel()
	}
}

// TestIsolateOff: with isolate off the server runs as the hub's user, as root with
// --allow-root.
func TestIsolateOff(t *testing.T) {
	m, sp, _ := newManagerIn(t, t.TempDir(), config.LocalSpawner{Isolate: config.IsolateOff}, nil, 10*time.Second)
	if sp.Isolated() {
		t.Fatal("isolated with isolate off")
	}
	m.Start("dave")
	if e := wait(t, m, "dave"); !e.Ready {
		t.Fatalf("%+v", e)
	}
	pid := serverPID(t, m, "dave")
	uids, _, _ := procIDs(t, pid)
	if want := strconv.Itoa(os.Geteuid()); !strings.HasPrefix(uids, want+" ") {
		t.Errorf("uids %q, want the hub's %s", uids, want)
	}
	cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if root := os.Geteuid() == 0; strings.Contains(string(cmdline), "--allow-root") != root {
		t.Errorf("cmdline %q as uid %d", cmdline, os.Geteuid())
	}
	// The hub says once, at start, that its servers are not isolated.
	var logs strings.Builder
	if _, err := local.New(config.LocalSpawner{Command: []string{"/usr/bin/python3"}, Isolate: config.IsolateOff}, nil, t.TempDir(), slog.New(slog.NewTextHandler(&logs, nil))); err != nil {
		t.Fatal(err)
	}
	if got := logs.String(); strings.Count(got, "\n") != 1 || !strings.Contains(got, "level=WARN") || !strings.Contains(got, "the local spawner does not isolate users from each other") {
		t.Errorf("log at start: %q", got)
	}
}

// TestIsolateOnNeedsRoot: isolate on refuses to start a hub that cannot switch uids.
func TestIsolateOnNeedsRoot(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("as root isolation is possible")
	}
	_, err := local.New(config.LocalSpawner{Command: []string{"/usr/bin/python3"}, Isolate: config.IsolateOn}, nil, t.TempDir(), slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "isolate is on, but the hub does not run as root") {
		t.Fatalf("error %v", err)
	}
}
