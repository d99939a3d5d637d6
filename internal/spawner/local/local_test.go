package local_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
	script, _ := filepath.Abs("testdata/server.py")
	dir := t.TempDir()
	skel := t.TempDir()
	os.WriteFile(filepath.Join(skel, "Start here.ipynb"), []byte(`{"cells": []}`), 0o644)
	sp, err := local.New(config.LocalSpawner{Command: []string{"/usr/bin/python3", script}, Python: "/usr/bin/python3", SkeletonDir: skel}, nil, dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	m := spawner.NewManager(sp, spawner.Options{
		StartTimeout: 30 * time.Second, HTTPTimeout: httpTimeout, PollInterval: 100 * time.Millisecond,
		Prepare: func(ctx context.Context, user string) (spawner.Spec, error) {
			return spawner.Spec{User: user, Slug: user, ServicePrefix: "/user/" + user + "/",
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

// serverPID finds the server's process by the port it listens on.
func serverPID(t *testing.T, m *spawner.Manager, user string) int {
	t.Helper()
	target, _ := m.Target(user)
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if strings.Contains(string(cmdline), "--port="+target.Port()) {
			return pid
		}
	}
	t.Fatalf("no process for %s", target)
	return 0
}
