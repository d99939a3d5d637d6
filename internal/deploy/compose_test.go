// Package deploy tests the Docker deployment: deploy/compose.yaml with the ohtkhub image
// (images/ohtkhub) and the notebook image (images/notebook).
package deploy

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// notebookImage is the image the compose file's hub spawns; .ci/run builds it with
// images/notebook/build.sh.
const notebookImage = "ohtkhub-notebook:latest"

// hubLabel is the label the docker spawner puts on users' containers and volumes.
const hubLabel = "org.ohtkhub.hub"

// project is one run of deploy/compose.yaml under its own compose project name, network,
// ports and hub id, so that it meets no other run and removes only what it made.
type project struct {
	t       *testing.T
	name    string
	file    string
	env     []string
	hubURL  string // http://127.0.0.1:port/
	apiURL  string // http://127.0.0.1:port
	apiHost string
}

// run runs a command with the project's environment and returns its combined output.
func (p *project) run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = p.env
	cmd.Dir = filepath.Dir(p.file)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (p *project) compose(ctx context.Context, args ...string) (string, error) {
	return p.run(ctx, "docker-compose", append([]string{"-p", p.name, "-f", p.file}, args...)...)
}

// mustCompose runs docker-compose and fails the test, with the services' logs, on an error.
func (p *project) mustCompose(args ...string) string {
	p.t.Helper()
	out, err := p.compose(p.t.Context(), args...)
	if err != nil {
		p.t.Fatalf("docker-compose %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// labelled lists the ids of the containers or volumes the project's hub made.
func (p *project) labelled(ctx context.Context, kind string) []string {
	args := []string{"ps", "-aq"}
	if kind == "volume" {
		args = []string{"volume", "ls", "-q"}
	}
	out, _ := p.run(ctx, "docker", append(args, "--filter", "label="+hubLabel+"="+p.name)...)
	return strings.Fields(out)
}

// down removes the users' containers (they outlive the hub by design), then the compose
// project with its volumes and network, then the users' volumes.
func (p *project) down() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if p.t.Failed() {
		out, _ := p.compose(ctx, "logs", "--no-color", "--tail", "60")
		p.t.Logf("docker-compose logs:\n%s", out)
	}
	if ids := p.labelled(ctx, "container"); len(ids) > 0 {
		if out, err := p.run(ctx, "docker", append([]string{"rm", "-f"}, ids...)...); err != nil {
			p.t.Errorf("remove the users' containers: %v\n%s", err, out)
		}
	}
	if out, err := p.compose(ctx, "down", "-v", "--remove-orphans", "-t", "10"); err != nil {
		p.t.Errorf("docker-compose down: %v\n%s", err, out)
	}
	if ids := p.labelled(ctx, "volume"); len(ids) > 0 {
		if out, err := p.run(ctx, "docker", append([]string{"volume", "rm", "-f"}, ids...)...); err != nil {
			p.t.Errorf("remove the users' volumes: %v\n%s", err, out)
		}
	}
}

// freePort returns a port of 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// buildImage builds the ohtkhub image with images/ohtkhub/build.sh and returns its tag.
func buildImage(t *testing.T, root string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(root, "images/ohtkhub/build.sh"))
	cmd.Dir = root
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("images/ohtkhub/build.sh: %v\n%s", err, stderr.String())
	}
	fields := strings.Fields(string(out))
	if len(fields) == 0 || !strings.HasPrefix(fields[len(fields)-1], "ohtkhub:") {
		t.Fatalf("images/ohtkhub/build.sh printed no tag: %q", out)
	}
	return fields[len(fields)-1]
}

// startProject checks for Docker, the compose tool and the notebook image (failing, not
// skipping, without them), builds the ohtkhub image and brings deploy/compose.yaml up on
// free ports of 127.0.0.1. Everything is removed when the test ends.
func startProject(t *testing.T) *project {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range []string{"docker", "docker-compose"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: this test needs Docker Engine and docker-compose (apt-get install docker.io docker-compose)", tool)
		}
	}
	if out, err := exec.CommandContext(t.Context(), "docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		t.Fatalf("the Docker daemon does not answer (this test needs Docker Engine): %v\n%s", err, out)
	}
	if out, err := exec.CommandContext(t.Context(), "docker", "image", "inspect", notebookImage).CombinedOutput(); err != nil {
		t.Fatalf("image %s is missing (build it with: sudo images/notebook/build.sh): %v\n%.300s", notebookImage, err, out)
	}
	image := buildImage(t, root)

	suffix := make([]byte, 4)
	rand.Read(suffix)
	p := &project{t: t, name: "ohtkhubtest" + hex.EncodeToString(suffix), file: filepath.Join(root, "deploy", "compose.yaml")}
	hubPort, apiPort := freePort(t), freePort(t)
	for apiPort == hubPort {
		apiPort = freePort(t)
	}
	p.hubURL = "http://127.0.0.1:" + strconv.Itoa(hubPort) + "/"
	p.apiHost = "127.0.0.1:" + strconv.Itoa(apiPort)
	p.apiURL = "http://" + p.apiHost
	p.env = append(os.Environ(),
		"OHTKHUB_ID="+p.name,
		"OHTKHUB_IMAGE="+image,
		"OHTKHUB_HUB_PORT="+strconv.Itoa(hubPort),
		"OHTKHUB_API_PORT="+strconv.Itoa(apiPort),
		"OHTKHUB_REPORTS=300",
	)
	t.Cleanup(p.down)
	p.mustCompose("up", "-d")
	return p
}

// browser is an HTTP client with a cookie jar that follows redirects, as a browser does.
type browser struct {
	t *testing.T
	c *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, c: &http.Client{Jar: jar, Timeout: 60 * time.Second}}
}

func (b *browser) do(req *http.Request) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func (b *browser) get(u string) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequestWithContext(b.t.Context(), http.MethodGet, u, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

// waitHealthy polls the hub's /hub/health until it answers 200.
func waitHealthy(t *testing.T, hubURL string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		resp, err := http.Get(hubURL + "hub/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%shub/health did not answer 200 within 90s: %v", hubURL, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

var (
	seededPassword = regexp.MustCompile(`every seeded user's password: (\S+)`)
	tenantButton   = regexp.MustCompile(`<a class="button" id="login-bunny" href="([^"]+)">Sign in with Bunny Province</a>`)
	hiddenInput    = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)"`)
)

// signIn goes through the hub's login page, the tenant's button and the api's login form as a
// browser does, and returns the page the hub finally shows.
func signIn(t *testing.T, b *browser, p *project, username, password string) (*http.Response, string) {
	t.Helper()
	resp, page := b.get(p.hubURL + "hub/login")
	m := tenantButton.FindStringSubmatch(page)
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("hub login page: %s, no Bunny Province button:\n%.1000s", resp.Status, page)
	}
	button, _ := resp.Request.URL.Parse(html.UnescapeString(m[1]))
	// The button leads the browser to the api's login page on its published port.
	resp, page = b.get(button.String())
	if at := resp.Request.URL; resp.StatusCode != http.StatusOK || at.Host != p.apiHost || at.Path != "/t/bunny/accounts/login/" {
		t.Fatalf("the tenant's button ended at %s (%s), want the api's login page on %s:\n%.1000s", at, resp.Status, p.apiHost, page)
	}
	form := url.Values{}
	for _, m := range hiddenInput.FindAllStringSubmatch(page, -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	if len(form) == 0 {
		t.Fatalf("the api's login form has no CSRF field:\n%.1000s", page)
	}
	form.Set("username", username)
	form.Set("password", password)
	loginURL := resp.Request.URL
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, loginURL.String(), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", loginURL.Scheme+"://"+loginURL.Host)
	return b.do(req)
}

// waitReady follows the user's spawn progress (server-sent events) until the server is ready.
func waitReady(t *testing.T, b *browser, hubURL, user string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 150*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, hubURL+"hub/api/users/"+url.PathEscape(user)+"/server/progress", nil)
	resp, err := (&http.Client{Jar: b.c.Jar}).Do(req)
	if err != nil {
		t.Fatalf("spawn progress: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("spawn progress: %s %s", resp.Status, body)
	}
	sc := bufio.NewScanner(resp.Body)
	var last string
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		last = data
		var e struct{ Ready, Failed bool }
		json.Unmarshal([]byte(data), &e)
		if e.Failed {
			t.Fatalf("the spawn failed: %s", data)
		}
		if e.Ready {
			return
		}
	}
	t.Fatalf("the progress stream ended without ready (last event %s): %v", last, sc.Err())
}

// TestIntegrationCompose runs deploy/compose.yaml on the real Docker Engine: api, hub and the
// init step from the ohtkhub image built by images/ohtkhub/build.sh. A seeded user signs in
// through the hub's login page and the api's login form on their published ports, the hub
// spawns the user's server in a container on the compose network, the Jupyter server answers
// through the hub's proxy, and in the container the ohtk module gets the user's tenant token
// from the hub and exports the reports from the api, both by their service names.
func TestIntegrationCompose(t *testing.T) {
	p := startProject(t)
	waitHealthy(t, p.hubURL)

	logs := p.mustCompose("logs", "--no-color", "init")
	m := seededPassword.FindStringSubmatch(logs)
	if m == nil {
		t.Fatalf("the init step printed no seeded password:\n%s", logs)
	}
	password := m[1]
	const user = "bunny_alice"

	b := newBrowser(t)
	resp, page := signIn(t, b, p, "alice", password)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.String(), p.hubURL) {
		t.Fatalf("after the api's login form: %s at %s\n%.1000s", resp.Status, resp.Request.URL, page)
	}
	resp, page = b.get(p.hubURL + "hub/api/user")
	var me struct{ Name string }
	if json.Unmarshal([]byte(page), &me); resp.StatusCode != http.StatusOK || me.Name != user {
		t.Fatalf("GET /hub/api/user after the login: %s %s", resp.Status, page)
	}

	// redirect_to_server: the login started the server.
	waitReady(t, b, p.hubURL, user)
	prefix := p.hubURL + "user/" + user + "/"
	// The server's own OAuth with the hub, through the proxy, ends on its file list.
	if resp, page := b.get(prefix); resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.String(), prefix+"tree") {
		t.Fatalf("opening the server: %s at %s\n%.1000s", resp.Status, resp.Request.URL, page)
	}
	resp, page = b.get(prefix + "api/status")
	var status map[string]any
	if err := json.Unmarshal([]byte(page), &status); err != nil || resp.StatusCode != http.StatusOK || status["started"] == nil {
		t.Fatalf("GET %sapi/status: %s %s", prefix, resp.Status, page)
	}

	// The server runs in a container of this hub, on the compose network.
	out, err := p.run(t.Context(), "docker", "ps", "-q", "--filter", "label="+hubLabel+"="+p.name, "--filter", "label=org.ohtkhub.user="+user)
	ids := strings.Fields(out)
	if err != nil || len(ids) != 1 {
		t.Fatalf("containers of %s: %v %q", user, err, out)
	}
	out, err = p.run(t.Context(), "docker", "inspect", "--format", "{{json .NetworkSettings.Networks}}", ids[0])
	var networks map[string]any
	if json.Unmarshal([]byte(out), &networks); err != nil || networks[p.name] == nil {
		t.Fatalf("the container's networks, want %s: %v %s", p.name, err, out)
	}

	// In the container, ohtk asks the hub for the tenant token and exports from the api; it
	// sees what the Export API gives alice on the api's published port.
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	out, err = p.run(ctx, "docker", "exec", ids[0], "python3", "-c",
		"import ohtk; print(ohtk.tenant(), len(ohtk.export('incident-reports')))")
	if err != nil {
		t.Fatalf("ohtk in the container: %v\n%s", err, out)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, p.apiURL+"/t/bunny/api/export/v1/incident-reports?format=ndjson", nil)
	req.SetBasicAuth("alice", password)
	resp, page = b.do(req)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("Export API on %s: %s %.300s", p.apiURL, resp.Status, page)
	}
	want := strings.Count(page, "\n")
	if got := strings.TrimSpace(out); want == 0 || got != "bunny "+strconv.Itoa(want) {
		t.Errorf("ohtk in the container printed %q; the Export API gives alice %d reports", got, want)
	}
	t.Logf("container %.12s on network %s; ohtk in it printed %q", ids[0], p.name, strings.TrimSpace(out))

	// Another `up` runs the init step again: it keeps the users, the secrets and the running
	// hub, so signing in still works.
	p.mustCompose("up", "-d")
	if logs := p.mustCompose("logs", "--no-color", "init"); !strings.Contains(logs, "not seeded again") {
		t.Fatalf("the second init step:\n%s", logs)
	}
	resp, page = signIn(t, newBrowser(t), p, "alice", password)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.String(), p.hubURL) {
		t.Fatalf("signing in after the second up: %s at %s\n%.1000s", resp.Status, resp.Request.URL, page)
	}
}
