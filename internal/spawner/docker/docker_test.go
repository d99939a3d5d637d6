package docker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"

	"github.com/ohtkhub/ohtkhub/internal/spawner"
	"github.com/ohtkhub/ohtkhub/internal/store"
)

const (
	alice = "bunny_alice"
	thai  = "bon_สมชาย ใจดี"
)

// TestDockerNames checks that the users' container and volume names are valid Docker names and
// distinct for users whose names differ only in ways a slug could lose.
func TestDockerNames(t *testing.T) {
	s := &Spawner{cfg: Config{NamePrefix: DefaultNamePrefix, VolumePrefix: DefaultVolumePrefix}}
	users := []string{"bunny_alice", "bon_alice", "bon_สมชาย ใจดี", "bon_สมหญิง ใจดี", "Bunny_Alice", "bunny-alice", strings.Repeat("x", 200)}
	seen := map[string]string{}
	for _, u := range users {
		slug := store.Slug(u)
		for _, name := range []string{s.ContainerName(slug), s.VolumeName(slug)} {
			if !validName.MatchString(name) || len(name) > 63 {
				t.Errorf("%q → %q: not a valid Docker name", u, name)
			}
			if other, ok := seen[name]; ok {
				t.Errorf("%q and %q share the name %q", u, other, name)
			}
			seen[name] = u
		}
	}
	if got := s.ContainerName(store.Slug("bunny_alice")); !strings.HasPrefix(got, "ohtkhub-bunny-alice") {
		t.Errorf("container of bunny_alice = %q, want ohtkhub-bunny-alice…", got)
	}
	if got := s.VolumeName(store.Slug("bon_alice")); !strings.HasPrefix(got, "ohtkhub-user-bon-alice") {
		t.Errorf("volume of bon_alice = %q, want ohtkhub-user-bon-alice…", got)
	}
}

// TestDockerConfig checks New's validation, which runs before any Docker call.
func TestDockerConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"negative memory", Config{MemoryLimit: -1}, "cannot be negative"},
		{"relative notebook dir", Config{NotebookDir: "work"}, `notebook directory "work" is not an absolute path`},
		{"bad network name", Config{Network: "my net"}, `"my net" is not a valid Docker name`},
		{"bad prefix", Config{NamePrefix: "-x"}, `"-x" is not a valid Docker name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestDockerSpawnerLifecycle runs two users' servers in real containers side by side and
// follows them through restart, a hub restart (adoption), a kill and reconciliation.
func TestDockerSpawnerLifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	specs := map[string]spawner.Spec{alice: e.spec(alice), thai: e.spec(thai)}
	handles := map[string]spawner.Handle{}

	// Both spawns run at once.
	var mu sync.Mutex
	var wg sync.WaitGroup
	for user, spec := range specs {
		wg.Go(func() {
			h, err := e.sp.Start(ctx, spec)
			if err != nil {
				t.Errorf("Start %s: %v", user, err)
				return
			}
			mu.Lock()
			handles[user] = h
			mu.Unlock()
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if handles[alice].URL == handles[thai].URL || handles[alice].ID == handles[thai].ID {
		t.Fatalf("two users got one server: %+v", handles)
	}

	t.Run("each answers on its own prefix", func(t *testing.T) {
		for user, spec := range specs {
			h := handles[user]
			body := waitReady(ctx, t, h, spec.ServicePrefix)
			if !strings.Contains(body, `"version"`) {
				t.Errorf("%s: GET %sapi = %s, want the server's version", user, spec.ServicePrefix, body)
			}
			other := specs[alice].ServicePrefix
			if user == alice {
				other = specs[thai].ServicePrefix
			}
			if status, _, err := get(ctx, h.URL+other+"api", ""); err != nil || status != http.StatusNotFound {
				t.Errorf("%s's server answers the other user's prefix %s: %d %v", user, other, status, err)
			}
			// Without a token the server sends the browser to the hub's login.
			if status, _, err := get(ctx, h.URL+spec.ServicePrefix+"tree/", ""); err != nil || status != http.StatusFound {
				t.Errorf("%s: GET %stree/ without a token = %d %v, want 302", user, spec.ServicePrefix, status, err)
			}
		}
	})

	t.Run("each kernel runs code", func(t *testing.T) {
		for user, spec := range specs {
			out := runCode(ctx, t, handles[user], spec.ServicePrefix, spec.Env["JUPYTERHUB_API_TOKEN"],
				"import os, ohtk, pandas\nprint(6 * 7, os.environ['JUPYTERHUB_USER'], os.getcwd(), os.environ['OHTKHUB_TEST'])")
			want := fmt.Sprintf("42 %s %s 1\n", user, DefaultNotebookDir)
			if out != want {
				t.Errorf("%s: kernel printed %q, want %q", user, out, want)
			}
		}
	})

	t.Run("another user's token is refused", func(t *testing.T) {
		status, _, err := get(ctx, handles[alice].URL+specs[alice].ServicePrefix+"api/contents", specs[thai].Env["JUPYTERHUB_API_TOKEN"])
		if err != nil || status != http.StatusForbidden {
			t.Errorf("alice's server with the other user's token: %d %v, want 403", status, err)
		}
	})

	t.Run("container settings", func(t *testing.T) {
		c := e.inspect(handles[alice].ID).Container
		if c.HostConfig.Memory != testMemory {
			t.Errorf("memory limit = %d, want %d", c.HostConfig.Memory, testMemory)
		}
		if c.HostConfig.NanoCPUs != 1e9 {
			t.Errorf("CPU limit = %d nano-CPUs, want 1e9", c.HostConfig.NanoCPUs)
		}
		if c.Name != "/"+e.sp.ContainerName(store.Slug(alice)) {
			t.Errorf("name = %q", c.Name)
		}
		if c.Config.Labels[LabelHub] != e.cfg.HubID || c.Config.Labels[LabelUser] != alice {
			t.Errorf("labels = %v", c.Config.Labels)
		}
		if c.Config.User != "jovyan" && c.Config.User != "" {
			t.Errorf("runs as %q", c.Config.User)
		}
		var vol *container.MountPoint
		for i, m := range c.Mounts {
			if m.Type == mount.TypeVolume {
				vol = &c.Mounts[i]
			}
		}
		if vol == nil || vol.Name != e.sp.VolumeName(store.Slug(alice)) || vol.Destination != DefaultNotebookDir || !vol.RW {
			t.Errorf("volume mount = %+v, want %s read-write at %s", vol, e.sp.VolumeName(store.Slug(alice)), DefaultNotebookDir)
		}
		if _, ok := c.NetworkSettings.Networks[e.cfg.Network]; !ok || len(c.NetworkSettings.Networks) != 1 {
			t.Errorf("networks = %v, want only %s", c.NetworkSettings.Networks, e.cfg.Network)
		}
		th := e.inspect(handles[thai].ID).Container
		if th.Config.Labels[LabelUser] != thai {
			t.Errorf("Thai user's label = %q", th.Config.Labels[LabelUser])
		}
	})

	t.Run("work survives a restart and the new container has the new token", func(t *testing.T) {
		spec := specs[alice]
		h := handles[alice]
		token := spec.Env["JUPYTERHUB_API_TOKEN"]
		nb := `{"type": "notebook", "content": {"cells": [{"cell_type": "code", "source": "print('saved before stop')", "metadata": {}, "outputs": [], "execution_count": null}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}}`
		status, body, err := do(ctx, http.MethodPut, h.URL+spec.ServicePrefix+"api/contents/saved.ipynb", token, strings.NewReader(nb))
		if err != nil || status != http.StatusCreated {
			t.Fatalf("save a notebook: %d %v %s", status, err, body)
		}
		if err := e.sp.Stop(ctx, h); err != nil {
			t.Fatalf("Stop: %v", err)
		}
		e.hub.revoke(token)
		if _, err := e.cli.ContainerInspect(ctx, h.ID, client.ContainerInspectOptions{}); !cerrdefs.IsNotFound(err) {
			t.Errorf("the container is still there after Stop: %v", err)
		}
		if _, err := e.cli.VolumeInspect(ctx, e.sp.VolumeName(spec.Slug), client.VolumeInspectOptions{}); err != nil {
			t.Errorf("the volume is gone after Stop: %v", err)
		}
		if err := e.sp.Stop(ctx, h); err != nil {
			t.Errorf("stopping a stopped server: %v", err)
		}
		if err := e.sp.Poll(ctx, h); !errors.Is(err, spawner.ErrStopped) {
			t.Errorf("Poll after Stop = %v, want ErrStopped", err)
		}

		spec2 := e.spec(alice)
		h2 := e.start(ctx, spec2)
		if h2.ID == h.ID {
			t.Fatalf("the restart reused container %s", h.ID)
		}
		waitReady(ctx, t, h2, spec2.ServicePrefix)
		status, body, err = get(ctx, h2.URL+spec2.ServicePrefix+"api/contents/saved.ipynb", spec2.Env["JUPYTERHUB_API_TOKEN"])
		if err != nil || status != http.StatusOK || !strings.Contains(body, "saved before stop") {
			t.Errorf("the saved notebook after the restart: %d %v %.300s", status, err, body)
		}
		if status, _, _ := get(ctx, h2.URL+spec2.ServicePrefix+"api/contents", token); status != http.StatusForbidden {
			t.Errorf("the previous server's token still works after the restart: %d", status)
		}
		env := e.inspect(h2.ID).Container.Config.Env
		if !slices.Contains(env, "JUPYTERHUB_API_TOKEN="+spec2.Env["JUPYTERHUB_API_TOKEN"]) || slices.Contains(env, "JUPYTERHUB_API_TOKEN="+token) {
			t.Errorf("the new container does not have exactly the new token")
		}
		handles[alice], specs[alice] = h2, spec2
	})

	t.Run("a restarted hub adopts running containers without restarting them", func(t *testing.T) {
		before := map[string]container.InspectResponse{}
		for user, h := range handles {
			before[user] = e.inspect(h.ID).Container
		}
		sp2, err := New(e.cfg)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		defer sp2.Close()
		running, err := sp2.List(ctx)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		got := map[string]spawner.Running{}
		for _, r := range running {
			got[r.User] = r
		}
		if len(running) != 2 {
			t.Fatalf("List = %+v, want the two users' servers", running)
		}
		for user, h := range handles {
			r := got[user]
			if r.Handle != h {
				t.Errorf("%s: adopted %+v, want %+v", user, r.Handle, h)
			}
			after := e.inspect(h.ID).Container
			if after.State.StartedAt != before[user].State.StartedAt || after.RestartCount != 0 || !after.State.Running {
				t.Errorf("%s: the container restarted (started %s, then %s)", user, before[user].State.StartedAt, after.State.StartedAt)
			}
			if want, _ := time.Parse(time.RFC3339Nano, after.State.StartedAt); !r.Started.Equal(want) {
				t.Errorf("%s: Started = %v, want %v", user, r.Started, want)
			}
			if err := sp2.Poll(ctx, r.Handle); err != nil {
				t.Errorf("%s: Poll of the adopted server = %v", user, err)
			}
			if status, _, err := get(ctx, r.Handle.URL+specs[user].ServicePrefix+"api", ""); err != nil || status != http.StatusOK {
				t.Errorf("%s: the adopted server does not answer: %d %v", user, status, err)
			}
		}
	})

	t.Run("a killed container is reported stopped and removed by reconciliation", func(t *testing.T) {
		h := handles[thai]
		if err := e.sp.Poll(ctx, h); err != nil {
			t.Fatalf("Poll of a running server = %v", err)
		}
		if _, err := e.cli.ContainerKill(ctx, h.ID, client.ContainerKillOptions{Signal: "KILL"}); err != nil {
			t.Fatalf("kill: %v", err)
		}
		var err error
		for range 100 {
			if err = e.sp.Poll(ctx, h); err != nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if !errors.Is(err, spawner.ErrStopped) || !strings.Contains(err.Error(), "exit code 137") {
			t.Fatalf("Poll after kill = %v, want ErrStopped with exit code 137", err)
		}
		t.Logf("Poll: %v", err)
		running, err := e.sp.List(ctx)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if len(running) != 1 || running[0].User != alice {
			t.Errorf("List = %+v, want only %s", running, alice)
		}
		if _, err := e.cli.ContainerInspect(ctx, h.ID, client.ContainerInspectOptions{}); !cerrdefs.IsNotFound(err) {
			t.Errorf("the dead container is still there after List: %v", err)
		}
		if _, err := e.cli.VolumeInspect(ctx, e.sp.VolumeName(store.Slug(thai)), client.VolumeInspectOptions{}); err != nil {
			t.Errorf("the dead server's volume was removed: %v", err)
		}
	})
}

// TestDockerSpawnerErrors checks the failures a user can meet: a missing image, a container
// name taken by another hub, a server that exits at start. Other hubs' containers are never
// touched.
func TestDockerSpawnerErrors(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()

	t.Run("missing image", func(t *testing.T) {
		cfg := e.cfg
		cfg.Image = "ohtkhub-no-such-image:latest"
		sp, err := New(cfg)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		defer sp.Close()
		_, err = sp.Start(ctx, e.spec(alice))
		if !errors.Is(err, ErrImageNotFound) || err.Error() != `image "ohtkhub-no-such-image:latest" not found: build it with images/notebook/build.sh` {
			t.Fatalf("Start = %v", err)
		}
	})

	t.Run("another hub's container is left alone", func(t *testing.T) {
		spec := e.spec("bon_alice")
		name := e.sp.ContainerName(spec.Slug)
		other, err := e.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
			Name: name,
			Config: &container.Config{Image: testImage, Labels: map[string]string{
				LabelHub: e.cfg.HubID + "-other", LabelUser: "bon_alice",
			}},
		})
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		defer e.cli.ContainerRemove(context.Background(), other.ID, client.ContainerRemoveOptions{Force: true})
		_, err = e.sp.Start(ctx, spec)
		if err == nil || !strings.Contains(err.Error(), "is taken by a container this hub") {
			t.Errorf("Start over another hub's container = %v", err)
		}
		if _, err := e.sp.List(ctx); err != nil {
			t.Fatalf("List: %v", err)
		}
		if _, err := e.cli.ContainerInspect(ctx, other.ID, client.ContainerInspectOptions{}); err != nil {
			t.Errorf("another hub's container was removed: %v", err)
		}
	})

	t.Run("a server that fails at start stops with its reason", func(t *testing.T) {
		spec := e.spec("bunny_bob")
		spec.Env["JUPYTERHUB_SINGLEUSER_APP"] = "nosuchmodule.App"
		h := e.start(ctx, spec)
		var err error
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			if err = e.sp.Poll(ctx, h); err != nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if !errors.Is(err, spawner.ErrStopped) || !strings.Contains(err.Error(), "exited (exit code ") {
			t.Fatalf("Poll = %v, want ErrStopped with the exit code", err)
		}
		if !strings.Contains(err.Error(), "nosuchmodule") {
			t.Errorf("Poll's reason has no log line: %v", err)
		}
		t.Logf("Poll: %v", err)
	})
}

// BenchmarkDockerSpawn measures Start → HTTP ready with the local image, without the hub: the
// Docker Engine's share (Start: image check, old container removal, create, start, inspect) and
// the server's own start (until it answers). Run with -benchtime=10x for a median of 10
// (bench/docker-spawn.sh).
func BenchmarkDockerSpawn(b *testing.B) {
	e := newEnv(b)
	ctx := b.Context()
	var total, starts []time.Duration
	for b.Loop() {
		spec := e.spec(alice)
		t0 := time.Now()
		h := e.start(ctx, spec)
		t1 := time.Now()
		waitReady(ctx, b, h, spec.ServicePrefix)
		t2 := time.Now()
		total = append(total, t2.Sub(t0))
		starts = append(starts, t1.Sub(t0))
		b.StopTimer()
		if err := e.sp.Stop(ctx, h); err != nil {
			b.Fatalf("Stop: %v", err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(median(total).Milliseconds()), "ms-median-ready")
	b.ReportMetric(float64(median(starts).Milliseconds()), "ms-median-docker-start")
	b.ReportMetric(0, "ns/op")
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
