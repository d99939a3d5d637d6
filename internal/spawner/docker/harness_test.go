package docker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/moby/moby/client"

	"github.com/ohtkhub/ohtkhub/internal/spawner"
	"github.com/ohtkhub/ohtkhub/internal/store"
)

// testImage is the image the tests run: .ci/run builds it with images/notebook/build.sh.
const testImage = "ohtkhub-notebook:latest"

// testMemory is the memory limit the tests apply.
const testMemory = 512 << 20

// env is one test's Docker world: a spawner with its own hub id, network and name prefixes, a
// raw client for checks, and a stand-in hub API the containers call.
type env struct {
	tb  testing.TB
	sp  *Spawner
	cfg Config
	cli *client.Client
	hub *stubHub
}

// newEnv creates a spawner with names of its own and removes everything carrying its hub
// label (containers, volumes, the network) when the test ends. It fails when the daemon does
// not answer or the image is missing.
func newEnv(tb testing.TB) *env {
	tb.Helper()
	cli, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		tb.Fatalf("docker client: %v", err)
	}
	tb.Cleanup(func() { cli.Close() })
	ctx := context.Background()
	if _, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		tb.Fatalf("the Docker daemon does not answer (these tests need Docker Engine): %v", err)
	}
	if _, err := cli.ImageInspect(ctx, testImage); err != nil {
		tb.Fatalf("image %s is missing (build it with images/notebook/build.sh): %v", testImage, err)
	}
	id := "ohtkhub-test-" + randomHex(4)
	cfg := Config{
		Image:        testImage,
		Network:      id,
		HubID:        id,
		MemoryLimit:  testMemory,
		CPULimit:     1,
		NamePrefix:   id + "-",
		VolumePrefix: id + "-user-",
		Env:          map[string]string{"OHTKHUB_TEST": "1"},
	}
	e := &env{tb: tb, cfg: cfg, cli: cli}
	tb.Cleanup(e.removeAll)
	if e.sp, err = New(cfg); err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(func() { e.sp.Close() })
	e.hub = newStubHub(tb, e.sp.HubAddress().String())
	return e
}

// removeAll removes every container, volume and network with this test's hub label.
func (e *env) removeAll() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := make(client.Filters).Add("label", LabelHub+"="+e.cfg.HubID)
	if list, err := e.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f}); err == nil {
		for _, c := range list.Items {
			e.cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true})
		}
	}
	if list, err := e.cli.VolumeList(ctx, client.VolumeListOptions{Filters: f}); err == nil {
		for _, v := range list.Items {
			e.cli.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{Force: true})
		}
	}
	if list, err := e.cli.NetworkList(ctx, client.NetworkListOptions{Filters: f}); err == nil {
		for _, n := range list.Items {
			e.cli.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{})
		}
	}
}

// spec builds a user's spec the way the hub does, with a new API token the stub hub accepts.
func (e *env) spec(user string) spawner.Spec {
	token := e.hub.newToken(user)
	prefix := "/user/" + url.PathEscape(user) + "/"
	scopes, _ := json.Marshal([]string{"access:servers!server=" + user + "/", "access:servers!user=" + user})
	return spawner.Spec{
		User:          user,
		Slug:          store.Slug(user),
		ServicePrefix: prefix,
		Env: map[string]string{
			"JUPYTERHUB_API_TOKEN":           token,
			"JUPYTERHUB_CLIENT_ID":           "jupyterhub-user-" + url.QueryEscape(user),
			"JUPYTERHUB_API_URL":             e.hub.url + "/hub/api",
			"JUPYTERHUB_ACTIVITY_URL":        e.hub.url + "/hub/api/users/" + url.PathEscape(user) + "/activity",
			"JUPYTERHUB_BASE_URL":            "/",
			"JUPYTERHUB_SERVICE_PREFIX":      prefix,
			"JUPYTERHUB_USER":                user,
			"JUPYTERHUB_SERVER_NAME":         "",
			"JUPYTERHUB_HOST":                "",
			"JUPYTERHUB_OAUTH_CALLBACK_URL":  prefix + "oauth_callback",
			"JUPYTERHUB_OAUTH_ACCESS_SCOPES": string(scopes),
			"JUPYTERHUB_OAUTH_SCOPES":        string(scopes),
		},
	}
}

// start starts a server and removes it when the test ends.
func (e *env) start(ctx context.Context, spec spawner.Spec) spawner.Handle {
	e.tb.Helper()
	h, err := e.sp.Start(ctx, spec)
	if err != nil {
		e.tb.Fatalf("Start %s: %v", spec.User, err)
	}
	return h
}

// inspect returns a container's inspect data.
func (e *env) inspect(id string) client.ContainerInspectResult {
	e.tb.Helper()
	res, err := e.cli.ContainerInspect(context.Background(), id, client.ContainerInspectOptions{})
	if err != nil {
		e.tb.Fatalf("inspect %s: %v", id, err)
	}
	return res
}

// waitReady waits until the server answers its API URL with 200 and returns the body.
func waitReady(ctx context.Context, tb testing.TB, h spawner.Handle, prefix string) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	var last string
	for {
		status, body, err := get(ctx, h.URL+prefix+"api", "")
		if err == nil && status == http.StatusOK {
			return body
		}
		last = fmt.Sprint(status, " ", err)
		select {
		case <-ctx.Done():
			tb.Fatalf("server at %s%s did not become ready: last answer %s", h.URL, prefix, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// do sends a request with an optional Jupyter API token and returns status and body.
func do(ctx context.Context, method, u, token string, body io.Reader) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "token "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	c := http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func get(ctx context.Context, u, token string) (int, string, error) {
	return do(ctx, http.MethodGet, u, token, nil)
}

// runCode starts a kernel on the server, runs code over the kernel's WebSocket and returns
// what it printed.
func runCode(ctx context.Context, tb testing.TB, h spawner.Handle, prefix, token, code string) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	status, body, err := do(ctx, http.MethodPost, h.URL+prefix+"api/kernels", token, strings.NewReader(`{"name":"python3"}`))
	if err != nil || status != http.StatusCreated {
		tb.Fatalf("start a kernel: %d %v %s", status, err, body)
	}
	var k struct{ ID string }
	json.Unmarshal([]byte(body), &k)
	wsURL := "ws" + strings.TrimPrefix(h.URL, "http") + prefix + "api/kernels/" + k.ID + "/channels"
	conn, resp, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"token " + token}}})
	if err != nil {
		tb.Fatalf("kernel WebSocket: %v (%v)", err, resp)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(1 << 22)
	msgID := randomHex(8)
	req := map[string]any{
		"header":        map[string]any{"msg_id": msgID, "username": "test", "session": randomHex(8), "msg_type": "execute_request", "version": "5.3"},
		"parent_header": map[string]any{},
		"metadata":      map[string]any{},
		"content":       map[string]any{"code": code, "silent": false, "store_history": false, "user_expressions": map[string]any{}, "allow_stdin": false, "stop_on_error": true},
		"channel":       "shell",
		"buffers":       []any{},
	}
	b, _ := json.Marshal(req)
	if err := conn.Write(ctx, websocket.MessageText, b); err != nil {
		tb.Fatalf("send execute_request: %v", err)
	}
	var out strings.Builder
	replied, idle := false, false
	for !replied || !idle {
		_, data, err := conn.Read(ctx)
		if err != nil {
			tb.Fatalf("read kernel messages: %v (output so far %q)", err, out.String())
		}
		var m struct {
			MsgType      string `json:"msg_type"`
			ParentHeader struct {
				MsgID string `json:"msg_id"`
			} `json:"parent_header"`
			Content struct {
				Name, Text, Ename, Evalue string
				ExecutionState            string `json:"execution_state"`
			} `json:"content"`
		}
		if json.Unmarshal(data, &m) != nil || m.ParentHeader.MsgID != msgID {
			continue
		}
		switch m.MsgType {
		case "stream":
			out.WriteString(m.Content.Text)
		case "error":
			tb.Fatalf("code raised %s: %s", m.Content.Ename, m.Content.Evalue)
		case "execute_reply":
			replied = true
		case "status":
			idle = m.Content.ExecutionState == "idle"
		}
	}
	return out.String()
}

// stubHub answers the part of the hub API jupyterhub-singleuser calls: the version check at
// start, token identification and activity. It listens on the network's gateway address
// only, which the containers reach and nothing outside this host does.
type stubHub struct {
	url string

	mu     sync.Mutex
	tokens map[string]string // token → user
}

func newStubHub(tb testing.TB, addr string) *stubHub {
	tb.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		tb.Fatalf("listen on the network's gateway %s: %v", addr, err)
	}
	h := &stubHub{tokens: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hub/api", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-JupyterHub-Version", "3.0.0")
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"version": "3.0.0"}`)
	})
	mux.HandleFunc("GET /hub/api/user", func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		user, ok := h.tokens[strings.TrimPrefix(r.Header.Get("Authorization"), "token ")]
		h.mu.Unlock()
		w.Header().Set("X-JupyterHub-Version", "3.0.0")
		w.Header().Set("Content-Type", "application/json")
		if !ok {
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"status": 403, "message": "invalid token"}`)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{
			"name": user, "kind": "user", "admin": false, "groups": []string{}, "session_id": "",
			"scopes": []string{"access:servers!user=" + user},
		})
	})
	mux.HandleFunc("POST /hub/api/users/{name}/activity", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
	})
	srv := httptest.NewUnstartedServer(mux)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	tb.Cleanup(srv.Close)
	h.url = srv.URL
	return h
}

// newToken makes a token the stub hub identifies as user's.
func (h *stubHub) newToken(user string) string {
	t := randomHex(16)
	h.mu.Lock()
	h.tokens[t] = user
	h.mu.Unlock()
	return t
}

// revoke makes the stub hub forget a token, as the hub does when a server stops.
func (h *stubHub) revoke(token string) {
	h.mu.Lock()
	delete(h.tokens, token)
	h.mu.Unlock()
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
