package hub

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ohtkhub/ohtkhub/internal/config"
)

// TestSpawnFailureShownToUser: a server that cannot start is reported with its reason on the
// progress stream and on the home page.
func TestSpawnFailureShownToUser(t *testing.T) {
	bunny := newFakeProvider(t, "Bunny Province")
	cfg := config.Hub{Tenants: []config.Tenant{bunny.tenant("bunny")}}
	cfg.Spawner.Local.Command = []string{"/usr/bin/python3", "-c", "import sys; sys.exit('jupyterhub-singleuser: error: No module named notebook')"}
	cfg.Spawner.HTTPTimeout = 20 * time.Second
	on := true
	cfg.RedirectToServer = &on
	h := startHub(t, listen(t), "/", cfg)
	b := newBrowser(t)
	// As in JupyterHub, signing in starts the server and shows its progress.
	bunny.loginAs(1, "alice", false)
	resp, page, at := b.follow(h.URL + "hub/bunny/oauth_login")
	if resp.StatusCode != http.StatusOK || at != h.URL+"hub/spawn-pending/bunny_alice" || !strings.Contains(page, `<script src="/hub/static/spawn.js"></script>`) {
		t.Fatalf("after login: %s at %s", resp.Status, at)
	}
	last := lastEvent(t, b, h.URL, "bunny_alice")
	reason := "server stopped: the server process exited (exit status 1): jupyterhub-singleuser: error: No module named notebook"
	if !last.Failed || last.Message != "Spawn failed: "+reason {
		t.Fatalf("last event %+v, want failed with %q", last, reason)
	}
	_, page = b.get(h.URL + "hub/home")
	if !strings.Contains(page, `<p class="error" id="last-error">The last start failed: `+reason+`</p>`) || !strings.Contains(page, `id="start"`) {
		t.Fatalf("home page does not show the failure:\n%s", page)
	}
	// The server's token died with it.
	toks, _ := h.Hub.store.Tokens(t.Context(), "bunny_alice", "server")
	if len(toks) != 0 {
		t.Errorf("server tokens left: %v", toks)
	}
}
