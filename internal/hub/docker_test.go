package hub

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	dockerclient "github.com/moby/moby/client"

	"github.com/ohtkhub/ohtkhub/internal/config"
	"github.com/ohtkhub/ohtkhub/internal/spawner"
	"github.com/ohtkhub/ohtkhub/internal/spawner/docker"
	"github.com/ohtkhub/ohtkhub/internal/store"
	"github.com/ohtkhub/ohtkhub/internal/web"
)

// dockerImage is the notebook image the Docker tests run; .ci/run builds it with
// images/notebook/build.sh.
const dockerImage = "ohtkhub-notebook:latest"

// dockerMemory is the memory limit the Docker tests configure.
const dockerMemory = 512 << 20

// dockerWorld is one test's share of the Docker Engine: a hub id, network and name prefixes of
// its own, so that the test removes only what it created.
type dockerWorld struct {
	cli *dockerclient.Client
	id  string
	gw  netip.Addr
}

// newDockerWorld creates the test's network (labelled with its hub id) and removes every
// container, volume and network carrying that label when the test ends. It fails when the
// daemon does not answer, and, if needImage, when the notebook image is missing.
func newDockerWorld(t *testing.T, needImage bool) *dockerWorld {
	t.Helper()
	cli, err := dockerclient.New(dockerclient.FromEnv, dockerclient.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatalf("docker client: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	ctx := t.Context()
	if _, err := cli.Ping(ctx, dockerclient.PingOptions{NegotiateAPIVersion: true}); err != nil {
		t.Fatalf("the Docker daemon does not answer (this test needs Docker Engine): %v", err)
	}
	if _, err := cli.ImageInspect(ctx, dockerImage); err != nil && needImage {
		t.Fatalf("image %s is missing (build it with images/notebook/build.sh): %v", dockerImage, err)
	}
	w := &dockerWorld{cli: cli, id: "ohtkhub-hubtest-" + store.NewSecret()[:8]}
	w.id = strings.ToLower(regexp.MustCompile(`[^a-zA-Z0-9-]`).ReplaceAllString(w.id, "x"))
	t.Cleanup(w.removeAll)
	// The hub listens for its servers on the network's gateway, which must exist first.
	if _, err := cli.NetworkCreate(ctx, w.id, dockerclient.NetworkCreateOptions{Driver: "bridge", Labels: map[string]string{docker.LabelHub: w.id}}); err != nil {
		t.Fatalf("create network: %v", err)
	}
	n, err := cli.NetworkInspect(ctx, w.id, dockerclient.NetworkInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range n.Network.IPAM.Config {
		if c.Gateway.Is4() {
			w.gw = c.Gateway
		}
	}
	if !w.gw.IsValid() {
		t.Fatalf("network %s has no IPv4 gateway", w.id)
	}
	return w
}

func (w *dockerWorld) removeAll() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := make(dockerclient.Filters).Add("label", docker.LabelHub+"="+w.id)
	if list, err := w.cli.ContainerList(ctx, dockerclient.ContainerListOptions{All: true, Filters: f}); err == nil {
		for _, c := range list.Items {
			w.cli.ContainerRemove(ctx, c.ID, dockerclient.ContainerRemoveOptions{Force: true})
		}
	}
	if list, err := w.cli.VolumeList(ctx, dockerclient.VolumeListOptions{Filters: f}); err == nil {
		for _, v := range list.Items {
			w.cli.VolumeRemove(ctx, v.Name, dockerclient.VolumeRemoveOptions{Force: true})
		}
	}
	if list, err := w.cli.NetworkList(ctx, dockerclient.NetworkListOptions{Filters: f}); err == nil {
		for _, n := range list.Items {
			w.cli.NetworkRemove(ctx, n.ID, dockerclient.NetworkRemoveOptions{})
		}
	}
}

// container returns the inspect data of the user's container, found by the hub's labels.
func (w *dockerWorld) container(t testing.TB, user string) container.InspectResponse {
	t.Helper()
	f := make(dockerclient.Filters).Add("label", docker.LabelHub+"="+w.id, docker.LabelUser+"="+user)
	list, err := w.cli.ContainerList(t.Context(), dockerclient.ContainerListOptions{All: true, Filters: f})
	if err != nil || len(list.Items) != 1 {
		t.Fatalf("containers of %s: %v %+v", user, err, list.Items)
	}
	res, err := w.cli.ContainerInspect(t.Context(), list.Items[0].ID, dockerclient.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return res.Container
}

// dockerHub is a hub with the docker spawner, reached by browsers on 127.0.0.1 and by its
// servers on the network's gateway. restart replaces the hub by a new one on the same state,
// addresses and containers, as a restarted process would.
type dockerHub struct {
	*testHub
	cfg     config.Hub
	t       *testing.T
	handler atomic.Pointer[http.Handler]
	mu      sync.Mutex
	closed  bool
}

func (w *dockerWorld) startHub(t *testing.T, tenants []config.Tenant, image string) *dockerHub {
	t.Helper()
	ln := listen(t)
	internal, err := net.Listen("tcp", net.JoinHostPort(w.gw.String(), "0"))
	if err != nil {
		t.Fatalf("listen on the network's gateway: %v", err)
	}
	host := "http://" + ln.Addr().String()
	cfg := config.Hub{PublicURL: host + "/", Listen: ln.Addr().String(), InternalURL: "http://" + internal.Addr().String() + "/",
		DataDir: t.TempDir(), CryptKeys: []string{testKey()}, Tenants: tenants}
	off := false
	cfg.RedirectToServer = &off
	cfg.Spawner.Kind = "docker"
	cfg.Spawner.StartTimeout = 90 * time.Second
	cfg.Spawner.HTTPTimeout = 60 * time.Second
	cfg.Spawner.PollInterval = 500 * time.Millisecond
	cfg.Spawner.Docker = config.DockerSpawner{Image: image, Network: w.id, HubID: w.id, MemLimit: "512M", CPULimit: 1,
		NamePrefix: w.id + "-", VolumePrefix: w.id + "-user-"}
	d := &dockerHub{cfg: cfg, t: t}
	d.testHub = &testHub{URL: cfg.PublicURL, Host: host}
	d.start()
	serve := http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) { (*d.handler.Load()).ServeHTTP(rw, r) })
	for _, l := range []net.Listener{ln, internal} {
		srv := &http.Server{Handler: serve, ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(l)
		t.Cleanup(func() { srv.Close() })
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		d.close(ctx)
	})
	return d
}

func (d *dockerHub) start() {
	d.t.Helper()
	log := slog.New(slog.NewTextHandler(testWriter{d.t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	h, err := New(d.t.Context(), d.cfg, log)
	if err != nil {
		d.t.Fatal(err)
	}
	handler := h.Handler()
	d.handler.Store(&handler)
	d.Hub, d.Cfg = h, h.cfg
	d.mu.Lock()
	d.closed = false
	d.mu.Unlock()
}

func (d *dockerHub) close(ctx context.Context) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	d.closed = true
	if err := d.Hub.Close(ctx); err != nil {
		d.t.Errorf("close hub: %v", err)
	}
}

// restart closes the hub (its servers keep running) and starts a new one on the same state.
func (d *dockerHub) restart() {
	ctx, cancel := context.WithTimeout(d.t.Context(), 30*time.Second)
	defer cancel()
	d.close(ctx)
	d.start()
}

// waitReady follows the user's progress stream (past events first) until the server is ready.
func waitReady(t testing.TB, b *browser, h *testHub, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 120*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.URL+"hub/api/users/"+web.PathEscape(name)+"/server/progress", nil)
	resp, err := (&http.Client{Jar: b.client.Jar}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var e spawner.Event
		json.Unmarshal([]byte(data), &e)
		if e.Failed {
			t.Fatalf("%s: spawn failed: %+v", name, e)
		}
		if e.Ready {
			return
		}
	}
	t.Fatalf("%s: the progress stream ended without ready: %v", name, sc.Err())
}

// TestIntegrationDocker runs users' servers in containers on the real Docker Engine, through
// the hub: three users (the same username in two tenants, and a Thai name with a space) spawn
// at once, each kernel runs code through the proxy's WebSocket and reaches the hub from its
// container, a notebook saved before a stop is there after the next start, the memory limit
// is applied, a restarted hub adopts the running containers without restarting them, and a
// killed container is shown to its user as a stopped server.
func TestIntegrationDocker(t *testing.T) {
	w := newDockerWorld(t, true)
	bunny := newFakeProvider(t, "Bunny Province")
	bon := newFakeProvider(t, "Bon District")
	h := w.startHub(t, []config.Tenant{bunny.tenant("bunny"), bon.tenant("bon")}, dockerImage)

	type user struct {
		name string
		b    *browser
	}
	users := []*user{{name: "bunny_alice"}, {name: "bon_alice"}, {name: "bon_สมชาย ใจดี"}}
	for i, u := range users {
		u.b = newBrowser(t)
		key, username, _ := strings.Cut(u.name, "_")
		provider := bunny
		if key == "bon" {
			provider = bon
		}
		resp, _, at := loginFake(t, u.b, h.testHub, provider, key, i+1, username)
		if resp.StatusCode != http.StatusOK || at != h.URL+"hub/home" {
			t.Fatalf("login %s: %s at %s", u.name, resp.Status, at)
		}
	}

	// All three spawn at once: each request returns at once and the servers start side by side.
	t.Run("concurrent spawns", func(t *testing.T) {
		for _, u := range users {
			if resp, _ := u.b.get(h.URL + "hub/spawn"); resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("%s: GET /hub/spawn: %s", u.name, resp.Status)
			}
		}
		pending := 0
		for _, u := range users {
			if h.Hub.servers.Status(u.name).State == spawner.StatePending {
				pending++
			}
		}
		if pending < 2 {
			t.Errorf("only %d of %d servers were starting at once", pending, len(users))
		}
		for _, u := range users {
			waitReady(t, u.b, h.testHub, u.name)
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	t.Run("containers", func(t *testing.T) {
		names := map[string]string{}
		for _, u := range users {
			c := w.container(t, u.name)
			rec, err := h.Hub.store.User(t.Context(), u.name)
			if err != nil {
				t.Fatal(err)
			}
			if want := "/" + w.id + "-" + rec.Slug; c.Name != want {
				t.Errorf("%s: container %q, want %q", u.name, c.Name, want)
			}
			if other, ok := names[c.Name]; ok {
				t.Errorf("%s and %s share container name %s", u.name, other, c.Name)
			}
			names[c.Name] = u.name
			if c.HostConfig.Memory != dockerMemory || c.HostConfig.NanoCPUs != 1e9 {
				t.Errorf("%s: memory limit %d, CPU %d nano-CPUs; want %d and 1e9", u.name, c.HostConfig.Memory, c.HostConfig.NanoCPUs, dockerMemory)
			}
			if _, ok := c.NetworkSettings.Networks[w.id]; !ok {
				t.Errorf("%s: not on network %s: %v", u.name, w.id, c.NetworkSettings.Networks)
			}
		}
		t.Logf("containers: %v", names)
	})

	t.Run("each kernel runs code through the proxy", func(t *testing.T) {
		for _, u := range users {
			// The server's own OAuth with the hub, through the proxy, ends on its tree page.
			resp, page, at := u.b.follow(h.URL + "user/" + web.PathEscape(u.name) + "/")
			if resp.StatusCode != http.StatusOK || !strings.HasPrefix(at, h.URL+"user/"+web.PathEscape(u.name)+"/tree") {
				t.Fatalf("%s opening the server: %s at %s\n%.500s", u.name, resp.Status, at, page)
			}
			got := runCode(t, u.b, h.testHub, u.name,
				"import os, ohtk\nprint(6 * 7, os.environ['JUPYTERHUB_USER'], os.getcwd(), ohtk.tenant(), ohtk.token() == os.environ['OHTK_ACCESS_TOKEN'])")
			want := fmt.Sprintf("42 %s %s %s True\n", u.name, docker.DefaultNotebookDir, strings.SplitN(u.name, "_", 2)[0])
			if got != want {
				t.Errorf("%s: kernel printed %q, want %q", u.name, got, want)
			}
		}
	})

	alice := users[0]
	t.Run("a notebook saved before a stop is there after the next start", func(t *testing.T) {
		prefix := h.URL + "user/" + alice.name + "/"
		before := w.container(t, alice.name)
		nb := `{"type": "notebook", "content": {"cells": [{"cell_type": "code", "source": "print('saved before stop')", "metadata": {}, "outputs": [], "execution_count": null}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}}`
		req, _ := http.NewRequest(http.MethodPut, prefix+"api/contents/saved.ipynb", strings.NewReader(nb))
		req.Header.Set("X-XSRFToken", alice.b.cookie(prefix, "_xsrf"))
		req.Header.Set("Content-Type", "application/json")
		if resp, body := alice.b.do(req); resp.StatusCode != http.StatusCreated {
			t.Fatalf("save a notebook: %s %s", resp.Status, body)
		}
		resp, page := alice.b.post(h.URL+"hub/stop", url.Values{"_xsrf": {alice.b.xsrf(h.testHub)}})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("POST /hub/stop: %s %s", resp.Status, page)
		}
		if _, err := w.cli.ContainerInspect(t.Context(), before.ID, dockerclient.ContainerInspectOptions{}); !cerrdefs.IsNotFound(err) {
			t.Errorf("the container is still there after the stop: %v", err)
		}
		spawn(t, alice.b, h.testHub, alice.name)
		after := w.container(t, alice.name)
		if after.ID == before.ID {
			t.Errorf("the start reused container %s", before.ID)
		}
		// The new server has a new cookie secret: the browser signs in to it again through the hub.
		if resp, page, at := alice.b.follow(prefix); resp.StatusCode != http.StatusOK || !strings.HasPrefix(at, prefix+"tree") {
			t.Fatalf("opening the new server: %s at %s\n%.500s", resp.Status, at, page)
		}
		resp, page = alice.b.get(prefix + "api/contents/saved.ipynb")
		if resp.StatusCode != http.StatusOK || !strings.Contains(page, "saved before stop") {
			t.Errorf("the saved notebook after the restart: %s %.300s", resp.Status, page)
		}
	})

	t.Run("a restarted hub adopts the running containers", func(t *testing.T) {
		before := map[string]container.InspectResponse{}
		for _, u := range users {
			before[u.name] = w.container(t, u.name)
		}
		h.restart()
		for _, u := range users {
			if st := h.Hub.servers.Status(u.name); st.State != spawner.StateRunning {
				t.Errorf("%s after the hub restart: %+v", u.name, st)
			}
			after := w.container(t, u.name)
			if after.ID != before[u.name].ID || after.State.StartedAt != before[u.name].State.StartedAt || !after.State.Running {
				t.Errorf("%s: the container was replaced or restarted (%s started %s, now %s started %s)", u.name,
					before[u.name].ID[:12], before[u.name].State.StartedAt, after.ID[:12], after.State.StartedAt)
			}
		}
		got := runCode(t, alice.b, h.testHub, alice.name, "import ohtk\nprint(ohtk.token(force=True) != '')")
		if got != "True\n" {
			t.Errorf("after the hub restart the kernel printed %q", got)
		}
	})

	t.Run("a killed container is shown stopped", func(t *testing.T) {
		thai := users[2]
		c := w.container(t, thai.name)
		if _, err := w.cli.ContainerKill(t.Context(), c.ID, dockerclient.ContainerKillOptions{Signal: "KILL"}); err != nil {
			t.Fatal(err)
		}
		// The home page tells the user once the hub has noticed (it checks every PollInterval).
		deadline := time.Now().Add(30 * time.Second)
		var page string
		for time.Now().Before(deadline) {
			if _, page = thai.b.get(h.URL + "hub/home"); strings.Contains(page, `id="last-error"`) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if !strings.Contains(page, "the container is exited (exit code 137") || !strings.Contains(page, `id="start"`) {
			t.Fatalf("the home page does not show the server stopped with the reason:\n%s", page)
		}
		resp, page := thai.b.get(h.URL + "user/" + web.PathEscape(thai.name) + "/tree")
		if resp.StatusCode != http.StatusFailedDependency || !strings.Contains(page, `<button id="start" type="submit">Start my server</button>`) {
			t.Fatalf("the killed server's page: %s\n%.500s", resp.Status, page)
		}
		// The next start replaces the dead container.
		spawn(t, thai.b, h.testHub, thai.name)
		if again := w.container(t, thai.name); again.ID == c.ID || !again.State.Running {
			t.Errorf("after the next start: container %s running %v, the dead one was %s", again.ID[:12], again.State.Running, c.ID[:12])
		}
		// The other users' servers are untouched.
		if st := h.Hub.servers.Status(alice.name); st.State != spawner.StateRunning {
			t.Errorf("%s after another user's container died: %+v", alice.name, st)
		}
	})
}

// TestIntegrationDockerMissingImage: a spawn with an image the engine does not have fails with
// a message saying how to build it; nothing is pulled.
func TestIntegrationDockerMissingImage(t *testing.T) {
	w := newDockerWorld(t, false)
	bunny := newFakeProvider(t, "Bunny Province")
	image := "ohtkhub-no-such-image:" + w.id
	h := w.startHub(t, []config.Tenant{bunny.tenant("bunny")}, image)
	b := newBrowser(t)
	loginFake(t, b, h.testHub, bunny, "bunny", 1, "alice")
	b.get(h.URL + "hub/spawn")
	want := fmt.Sprintf("The last start failed: image %q not found: build it with images/notebook/build.sh", image)
	deadline := time.Now().Add(30 * time.Second)
	var page string
	for time.Now().Before(deadline) {
		_, page = b.get(h.URL + "hub/home")
		if strings.Contains(page, "The last start failed") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(page, html.EscapeString(want)) {
		t.Fatalf("home page after a spawn with a missing image, want %q:\n%s", want, page)
	}
}

// TestIntegrationDockerInternalURL: without internal_url, the hub tells its containers to call
// it on the network's gateway, and refuses a listen address they cannot reach.
func TestIntegrationDockerInternalURL(t *testing.T) {
	w := newDockerWorld(t, false)
	bunny := newFakeProvider(t, "Bunny Province")
	cfg := config.Hub{PublicURL: "http://127.0.0.1:8000/notebooks/", DataDir: t.TempDir(), CryptKeys: []string{testKey()},
		Tenants: []config.Tenant{bunny.tenant("bunny")}}
	cfg.Spawner.Kind = "docker"
	cfg.Spawner.Docker = config.DockerSpawner{Network: w.id, HubID: w.id}
	for _, tc := range []struct{ listen, want, err string }{
		{"0.0.0.0:8000", "http://" + w.gw.String() + ":8000/notebooks/", ""},
		{w.gw.String() + ":8001", "http://" + w.gw.String() + ":8001/notebooks/", ""},
		{"127.0.0.1:8000", "", "hub: containers cannot reach the hub listening on 127.0.0.1:8000: listen on " + w.gw.String() + ":8000 or 0.0.0.0, or set internal_url"},
	} {
		cfg.Listen = tc.listen
		h, err := New(t.Context(), cfg, slog.New(slog.DiscardHandler))
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("listen %s: %v, want %q", tc.listen, err, tc.err)
			}
			if h != nil {
				h.Close(t.Context())
			}
			continue
		}
		if err != nil {
			t.Fatalf("listen %s: %v", tc.listen, err)
		}
		if h.internal != tc.want {
			t.Errorf("listen %s: internal URL %q, want %q", tc.listen, h.internal, tc.want)
		}
		h.Close(t.Context())
	}
}
