package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ohtkhub/ohtkhub/internal/config"
	"github.com/ohtkhub/ohtkhub/internal/pgtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if err := pgtest.StopShared(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping PostgreSQL:", err)
	}
	os.Exit(code)
}

// TestIntegrationStateOnPostgreSQL: a hub whose database is a real PostgreSQL server (started
// by the test) signs a user in and answers the API with the session and with an API token,
// writes nothing to hub.db, and a restart of the hub on the same database keeps the user, the
// session and the token.
func TestIntegrationStateOnPostgreSQL(t *testing.T) {
	ctx := t.Context()
	cluster, err := pgtest.Shared(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dbURL, drop, err := cluster.CreateDatabase(ctx, "hub_state")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { drop() })
	bunny := newFakeProvider(t, "Bunny Province")
	cfg := config.Hub{Database: dbURL, DataDir: t.TempDir(), CryptKeys: []string{testKey()}, Tenants: []config.Tenant{bunny.tenant("bunny")}}

	h1 := startHub(t, listen(t), "/", cfg)
	alice := newBrowser(t)
	if _, page, _ := loginFake(t, alice, h1, bunny, "bunny", 7, "alice"); !strings.Contains(page, `<span class="who">bunny_alice</span>`) {
		t.Fatalf("after login:\n%s", page)
	}
	whoAmI := func(h *testHub) {
		t.Helper()
		resp, body := alice.get(h.URL + "hub/api/user")
		var m map[string]any
		json.Unmarshal([]byte(body), &m)
		if resp.StatusCode != http.StatusOK || m["name"] != "bunny_alice" {
			t.Fatalf("GET /hub/api/user with the session: %s %s", resp.Status, body)
		}
	}
	whoAmI(h1)
	token := createToken(t, alice, h1)
	var tokens map[string][]map[string]any
	if code := apiJSON(t, "GET", h1.URL+"hub/api/users/bunny_alice/tokens", token, nil, &tokens); code != http.StatusOK || len(tokens["api_tokens"]) != 1 {
		t.Fatalf("GET tokens with an API token: %d %v", code, tokens)
	}
	before, err := h1.Hub.store.User(ctx, "bunny_alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "hub.db")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("hub.db beside a PostgreSQL database: %v", err)
	}
	db, err := cluster.Open("hub_state", pgtest.Superuser)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var sessions int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM hub_sessions WHERE user_name = 'bunny_alice'`).Scan(&sessions); err != nil || sessions != 1 {
		t.Fatalf("sessions in PostgreSQL: %d %v", sessions, err)
	}

	// A restart: the same configuration, another process's worth of state in memory.
	h1.Stop()
	h2 := startHub(t, listen(t), "/", cfg)
	whoAmI(h2)
	if code := apiJSON(t, "GET", h2.URL+"hub/api/users/bunny_alice/tokens", token, nil, &tokens); code != http.StatusOK || len(tokens["api_tokens"]) != 1 {
		t.Fatalf("the API token after a restart: %d %v", code, tokens)
	}
	after, err := h2.Hub.store.User(context.Background(), "bunny_alice")
	if err != nil || after.Number != before.Number || !after.CreatedAt.Equal(before.CreatedAt) {
		t.Fatalf("user after a restart: %+v %v, before %+v", after, err, before)
	}
}
