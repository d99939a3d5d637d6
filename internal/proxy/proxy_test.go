package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/ohtkhub/ohtkhub/internal/session"
	"github.com/ohtkhub/ohtkhub/internal/store"
	"github.com/ohtkhub/ohtkhub/internal/web"
)

type targets map[string]*url.URL

func (t targets) Target(user string) (*url.URL, bool) { u, ok := t[user]; return u, ok }

// sessions maps cookie values to users.
type sessions map[string]string

func (s sessions) Get(ctx context.Context, r *http.Request) (store.Session, error) {
	c, err := r.Cookie(session.CookieName)
	if err != nil || s[c.Value] == "" {
		return store.Session{}, session.ErrNoSession
	}
	return store.Session{User: s[c.Value]}, nil
}

// tokens maps hub API token secrets to their users.
type tokens map[string]string

func (t tokens) TokenBySecret(ctx context.Context, secret string) (store.Token, error) {
	if t[secret] == "" {
		return store.Token{}, store.ErrNotFound
	}
	return store.Token{User: t[secret]}, nil
}

var testTokens = tokens{"alice-token": "alice", "bob-token": "bob"}

// backend echoes what it received, streams on /events and echoes WebSocket messages on /ws.
func backend(t *testing.T) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"host": r.Host, "rawpath": r.URL.EscapedPath(), "cookie": r.Header.Get("Cookie"),
			"xfh": r.Header.Get("X-Forwarded-Host"), "auth": r.Header.Get("Authorization")})
	})
	mux.HandleFunc("/user/alice/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write([]byte("data: first\n\n"))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	mux.HandleFunc("/user/alice/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil) // checks Origin against the Host it sees
		if err != nil {
			return
		}
		defer c.CloseNow()
		typ, msg, err := c.Read(r.Context())
		if err != nil {
			return
		}
		c.Write(r.Context(), typ, append([]byte("echo: "), msg...))
		c.Close(websocket.StatusNormalClosure, "")
	})
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func newProxy(t *testing.T, tg Targets) *httptest.Server {
	render, err := web.NewRenderer(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	sess := sessions{"alice-secret": "alice", "bob-secret": "bob", "thai-secret": "bunny_สมชาย ใจดี"}
	p := New("/", tg, sess, testTokens, render, func(r *http.Request) web.Page {
		pg := web.Page{Base: "/"}
		if s, err := sess.Get(r.Context(), r); err == nil {
			pg.User = s.User
		}
		return pg
	}, slog.New(slog.DiscardHandler))
	mux := http.NewServeMux()
	p.Register(mux)
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func get(t *testing.T, u, cookie string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestForwardStripsHubCookiesKeepsHost(t *testing.T) {
	be := backend(t)
	bu, _ := url.Parse(be.URL)
	px := newProxy(t, targets{"alice": bu})
	resp, body := get(t, px.URL+"/user/alice/api/contents?x=1", "a=1; ohtkhub-session=alice-secret; ohtkhub-oauth-bunny-abc=s; jupyterhub-user-alice=tok")
	var got map[string]string
	json.Unmarshal([]byte(body), &got)
	host := strings.TrimPrefix(px.URL, "http://")
	if resp.StatusCode != 200 || got["cookie"] != "a=1; jupyterhub-user-alice=tok" || got["host"] != host || got["xfh"] != host || got["rawpath"] != "/user/alice/api/contents" {
		t.Fatalf("%s %v", resp.Status, got)
	}
}

// checkedTargets are targets whose connections are checked: refused holds the addresses
// where something other than the server listens.
type checkedTargets struct {
	targets
	refused map[string]bool
}

func (c checkedTargets) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if c.refused[addr] {
		return nil, errors.New("another process listens at the server's address")
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// TestConnectionsChecked: with targets that check connections, the proxy connects only
// through them: a refused connection is a 502, the process at the address never reached.
func TestConnectionsChecked(t *testing.T) {
	var reached atomic.Bool
	impostor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Store(true) }))
	t.Cleanup(impostor.Close)
	be := backend(t)
	iu, _ := url.Parse(impostor.URL)
	bu, _ := url.Parse(be.URL)
	px := newProxy(t, checkedTargets{targets{"alice": iu, "bob": bu}, map[string]bool{iu.Host: true}})
	if resp, _ := get(t, px.URL+"/user/alice/tree", "ohtkhub-session=alice-secret"); resp.StatusCode != http.StatusBadGateway || reached.Load() {
		t.Fatalf("%s, impostor reached: %v", resp.Status, reached.Load())
	}
	if resp, _ := get(t, px.URL+"/user/bob/tree", "ohtkhub-session=bob-secret"); resp.StatusCode != 200 {
		t.Fatalf("bob: %s", resp.Status)
	}
}

func TestOnlyOwnerGetsThrough(t *testing.T) {
	be := backend(t)
	bu, _ := url.Parse(be.URL)
	px := newProxy(t, targets{"alice": bu})
	for _, tc := range []struct {
		path, cookie string
		status       int
		body         string
	}{
		{"/user/alice/tree", "ohtkhub-session=bob-secret", 403, "This server belongs to another user."},
		{"/user/alice/api/kernels", "ohtkhub-session=bob-secret", 403, `{"message":"This server belongs to another user.","status":403}`},
		{"/user/alice/api/kernels", "", 403, `{"message":"Not signed in.","status":403}`},
		{"/user/bob/tree", "ohtkhub-session=bob-secret", 424, `<button id="start" type="submit">Start my server</button>`},
		{"/user/bob/api/status", "ohtkhub-session=bob-secret", 424, `{"message":"The server of bob is not running.","status":424}`},
	} {
		resp, body := get(t, px.URL+tc.path, tc.cookie)
		if resp.StatusCode != tc.status || !strings.Contains(body, tc.body) {
			t.Errorf("GET %s as %q: %s %.300s", tc.path, tc.cookie, resp.Status, body)
		}
	}
	resp, _ := get(t, px.URL+"/user/alice/tree?a=b", "")
	if resp.StatusCode != 302 || resp.Header.Get("Location") != "/hub/login?next=%2Fuser%2Falice%2Ftree%3Fa%3Db" {
		t.Errorf("anonymous page: %s %s", resp.Status, resp.Header.Get("Location"))
	}
	// Without a session, a request with the owner's hub API token goes to the server (which
	// checks it with the hub again); any other token stops here. A browser signed in as another
	// user never gets through, token or not: the server's page would run on the hub's origin
	// with that user's hub session.
	for _, tc := range []struct {
		path, cookie, auth, dest string
		status                   int
		body                     string
	}{
		{"/user/alice/api/kernels?token=alice-token", "", "", "", 200, `"rawpath":"/user/alice/api/kernels"`},
		{"/user/alice/api/kernels", "", "token alice-token", "", 200, `"rawpath":"/user/alice/api/kernels"`},
		{"/user/alice/api/kernels", "", "Bearer alice-token", "", 200, `"rawpath":"/user/alice/api/kernels"`},
		{"/user/alice/custom/page.html?token=abc", "", "", "", 403, `{"message":"The token does not give access to this server.","status":403}`},
		{"/user/alice/api/kernels?token=bob-token", "", "", "", 403, `{"message":"The token does not give access to this server.","status":403}`},
		{"/user/alice/api/kernels", "", "token bob-token", "", 403, `{"message":"The token does not give access to this server.","status":403}`},
		{"/user/alice/custom/page.html?token=alice-token", "ohtkhub-session=bob-secret", "", "", 403, "This server belongs to another user."},
		{"/user/alice/api/kernels", "ohtkhub-session=bob-secret", "token alice-token", "", 403, "This server belongs to another user."},
		{"/user/alice/api/kernels?token=bob-token", "ohtkhub-session=alice-secret", "", "", 200, `"rawpath":"/user/alice/api/kernels"`},
		// A page opened in a browser on a token alone would run on the hub's origin.
		{"/user/alice/custom/page.html?token=alice-token", "", "", "document", 302, ""},
		{"/user/alice/custom/page.html?token=alice-token", "", "", "iframe", 302, ""},
		{"/user/alice/api/kernels", "", "token alice-token", "empty", 200, `"rawpath":"/user/alice/api/kernels"`},
	} {
		req, _ := http.NewRequest("GET", px.URL+tc.path, nil)
		if tc.cookie != "" {
			req.Header.Set("Cookie", tc.cookie)
		}
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		if tc.dest != "" {
			req.Header.Set("Sec-Fetch-Dest", tc.dest)
		}
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.body) {
			t.Errorf("GET %s cookie %q auth %q: %s %.300s", tc.path, tc.cookie, tc.auth, resp.Status, b)
		}
	}
}

func TestUnicodeNameCanonicalEncoding(t *testing.T) {
	be := backend(t)
	bu, _ := url.Parse(be.URL)
	name := "bunny_สมชาย ใจดี"
	px := newProxy(t, targets{name: bu})
	// Lower-case escapes from a browser are forwarded with the encoding the server's base URL uses.
	resp, body := get(t, px.URL+"/user/bunny_%e0%b8%aa%e0%b8%a1%e0%b8%8a%e0%b8%b2%e0%b8%a2%20%e0%b9%83%e0%b8%88%e0%b8%94%e0%b8%b5/files/a%2Fb%20c.txt", "ohtkhub-session=thai-secret")
	want := `"rawpath":"/user/` + web.PathEscape(name) + `/files/a%2Fb%20c.txt"`
	if resp.StatusCode != 200 || !strings.Contains(body, want) {
		t.Fatalf("%s %s, want %s", resp.Status, body, want)
	}
}

func TestStreamingAndWebSocket(t *testing.T) {
	be := backend(t)
	bu, _ := url.Parse(be.URL)
	px := newProxy(t, targets{"alice": bu})
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", px.URL+"/user/alice/events", nil)
	req.Header.Set("Cookie", "ohtkhub-session=alice-secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "data: first\n" {
		t.Fatalf("streamed event not flushed: %q %v", line, err)
	}
	resp.Body.Close()

	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(px.URL, "http")+"/user/alice/ws", &websocket.DialOptions{
		HTTPHeader: http.Header{"Cookie": {"ohtkhub-session=alice-secret"}, "Origin": {px.URL}},
	})
	if err != nil {
		t.Fatalf("WebSocket through the proxy: %v", err)
	}
	defer c.CloseNow()
	c.Write(ctx, websocket.MessageText, []byte("hello"))
	_, msg, err := c.Read(ctx)
	if err != nil || string(msg) != "echo: hello" {
		t.Fatalf("echo %q %v", msg, err)
	}
}

// BenchmarkProxy measures the proxy's overhead against a local backend.
func BenchmarkProxy(b *testing.B) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"ok":true}`)) }))
	defer be.Close()
	bu, _ := url.Parse(be.URL)
	render, _ := web.NewRenderer(slog.New(slog.DiscardHandler))
	p := New("/", targets{"alice": bu}, sessions{"s": "alice"}, testTokens, render, func(*http.Request) web.Page { return web.Page{} }, slog.New(slog.DiscardHandler))
	mux := http.NewServeMux()
	p.Register(mux)
	px := httptest.NewServer(mux)
	defer px.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	for _, tc := range []struct{ name, url string }{{"direct", be.URL + "/user/alice/api/status"}, {"proxied", px.URL + "/user/alice/api/status"}} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				req, _ := http.NewRequest("GET", tc.url, nil)
				req.Header.Set("Cookie", "ohtkhub-session=s")
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
}
