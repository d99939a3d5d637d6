package hub

import (
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ohtkhub/ohtkhub/internal/config"
	"github.com/ohtkhub/ohtkhub/internal/session"
	"github.com/ohtkhub/ohtkhub/internal/store"
)

// TestWrongCryptKey: a hub whose keys decrypt none of the stored tenant tokens does not start,
// and says which key is missing; a user whose own token no longer decrypts is told to sign in
// again, without the hub's internal error.
func TestWrongCryptKey(t *testing.T) {
	bunny := newFakeProvider(t, "Bunny Province")
	dir := t.TempDir()
	oldKey, newKey := testKey(), testKey()
	cfg := config.Hub{DataDir: dir, Tenants: []config.Tenant{bunny.tenant("bunny")}}
	cfg.Spawner.Local.Command = httpServerCommand

	first := cfg
	first.CryptKeys = []string{oldKey}
	h1 := startHub(t, listen(t), "/", first)
	loginFake(t, newBrowser(t), h1, bunny, "bunny", 1, "alice")

	// The new key alone: nothing stored decrypts, so the hub refuses to start.
	wrong := cfg
	wrong.CryptKeys = []string{newKey}
	wrong.PublicURL, wrong.Listen = "http://127.0.0.1:1/", "127.0.0.1:1"
	_, err := New(t.Context(), wrong, slog.New(slog.DiscardHandler))
	if !errors.Is(err, store.ErrWrongKey) || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "add that old key to crypt_keys") {
		t.Fatalf("start with a wrong key: %v", err)
	}

	// Rotating properly (new key first, old kept) works; bob's token is sealed with the new key.
	rotated := cfg
	rotated.CryptKeys = []string{newKey, oldKey}
	h2 := startHub(t, listen(t), "/", rotated)
	loginFake(t, newBrowser(t), h2, bunny, "bunny", 2, "bob")

	// The old key dropped too early: the hub starts (bob's token decrypts), alice cannot spawn.
	dropped := cfg
	dropped.CryptKeys = []string{newKey}
	h3 := startHub(t, listen(t), "/", dropped)
	// Alice is still signed in (signing in again would store a token sealed with the new key).
	alice := newBrowser(t)
	secret, _, err := h3.Hub.store.CreateSession(t.Context(), "bunny_alice", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(h3.URL)
	alice.client.Jar.SetCookies(u, []*http.Cookie{{Name: session.CookieName, Value: secret, Path: "/"}})
	alice.get(h3.URL + "hub/spawn")
	last := lastEvent(t, alice, h3.URL, "bunny_alice")
	if want := "Spawn failed: no valid credentials for your tenant; sign in again"; !last.Failed || last.Message != want {
		t.Fatalf("last event %+v, want failed with %q", last, want)
	}
	_, page := alice.get(h3.URL + "hub/home")
	if strings.Contains(page, "decrypt") || strings.Contains(page, "store:") {
		t.Errorf("home page shows the internal error:\n%s", page)
	}
}
