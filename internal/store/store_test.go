package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func open(t *testing.T, d testDB, keys ...[]byte) *Store {
	t.Helper()
	s, err := Open(t.Context(), d.database, d.dir, keys)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func withUser(t *testing.T, s *Store, name string) User {
	t.Helper()
	u, err := s.SaveUser(t.Context(), User{Name: name, TenantKey: "bunny", Subject: "id:" + name, Username: name, Slug: Slug(name)})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestSaveUserOnePerSubject(t *testing.T) {
	s := open(t, newDB(t), key(1))
	ctx := t.Context()
	a := withUser(t, s, "bunny_alice")
	again, err := s.SaveUser(ctx, User{Name: "bunny_alice", TenantKey: "bunny", Subject: "id:bunny_alice", Username: "alice", Slug: Slug("bunny_alice"), Admin: true})
	if err != nil || again.Name != a.Name || !again.Admin {
		t.Fatalf("second login: %+v %v", again, err)
	}
	// Another provider user claiming the same name is refused, never merged.
	_, err = s.SaveUser(ctx, User{Name: "bunny_alice", TenantKey: "bunny", Subject: "id:99", Username: "alice", Slug: Slug("bunny_alice")})
	if !errors.Is(err, ErrAlreadyExists) {
		t.Fatalf("name clash: %v", err)
	}
}

func TestTenantTokenEncryptedAndSwapped(t *testing.T) {
	dir := newDB(t)
	s := open(t, dir, key(1))
	ctx := t.Context()
	withUser(t, s, "bunny_alice")
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := s.PutTenantToken(ctx, "bunny_alice", TenantToken{AccessToken: "acc-1", RefreshToken: "ref-1", TokenType: "Bearer", Expiry: exp}); err != nil {
		t.Fatal(err)
	}
	var access string
	s.db.QueryRowContext(ctx, `SELECT access_token FROM hub_tenant_tokens`).Scan(&access)
	if bytes.Contains([]byte(access), []byte("acc-1")) {
		t.Fatalf("access token stored in clear: %q", access)
	}
	tok, err := s.GetTenantToken(ctx, "bunny_alice")
	if err != nil || tok.AccessToken != "acc-1" || tok.RefreshToken != "ref-1" || !tok.Expiry.Equal(exp) || tok.Version != 1 {
		t.Fatalf("got %+v %v", tok, err)
	}
	next := tok
	next.AccessToken, next.RefreshToken = "acc-2", "ref-2"
	if _, err := s.SwapTenantToken(ctx, "bunny_alice", next); err != nil {
		t.Fatal(err)
	}
	stale := tok
	stale.AccessToken, stale.RefreshToken = "acc-3", "ref-3"
	if _, err := s.SwapTenantToken(ctx, "bunny_alice", stale); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale swap: %v", err)
	}
	if got, _ := s.GetTenantToken(ctx, "bunny_alice"); got.RefreshToken != "ref-2" || got.Version != 2 {
		t.Fatalf("after swaps: %+v", got)
	}
	s.Close()

	// Key rotation: a new first key still reads what the old one wrote; without the old key
	// nothing stored decrypts and the store does not open.
	rotated := open(t, dir, key(2), key(1))
	if got, err := rotated.GetTenantToken(ctx, "bunny_alice"); err != nil || got.AccessToken != "acc-2" {
		t.Fatalf("after rotation: %+v %v", got, err)
	}
	withUser(t, rotated, "bunny_bob")
	if err := rotated.PutTenantToken(ctx, "bunny_bob", TenantToken{AccessToken: "bob", TokenType: "Bearer"}); err != nil {
		t.Fatal(err)
	}
	rotated.Close()
	if s, err := Open(ctx, dir.database, dir.dir, [][]byte{key(3)}); !errors.Is(err, ErrWrongKey) {
		if s != nil {
			s.Close()
		}
		t.Fatalf("open with a key that decrypts nothing: %v", err)
	}
	// The old key dropped while some tokens still need it: the store opens (bob's token
	// decrypts), alice's cannot be read.
	lost := open(t, dir, key(2))
	if _, err := lost.GetTenantToken(ctx, "bunny_alice"); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("without the old key: %v", err)
	}
}

func TestCodesAndStatesWorkOnce(t *testing.T) {
	s := open(t, newDB(t), key(1))
	ctx := t.Context()
	withUser(t, s, "bunny_alice")
	code, err := s.CreateCode(ctx, Code{User: "bunny_alice", ClientID: "c", RedirectURI: "/r", SessionID: "s"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := s.ConsumeCode(ctx, code); err != nil || c.User != "bunny_alice" {
		t.Fatalf("%+v %v", c, err)
	}
	if _, err := s.ConsumeCode(ctx, code); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second use: %v", err)
	}
	if err := s.SaveLoginState(ctx, "st", LoginState{TenantKey: "bunny", Verifier: "v", Next: "/hub/home"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if ls, err := s.ConsumeLoginState(ctx, "st"); err != nil || ls.Verifier != "v" {
		t.Fatalf("%+v %v", ls, err)
	}
	if _, err := s.ConsumeLoginState(ctx, "st"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second use: %v", err)
	}
	// Expired codes and states are refused.
	s.now = func() time.Time { return time.Now().Add(-time.Hour) }
	old, _ := s.CreateCode(ctx, Code{User: "bunny_alice"}, time.Minute)
	s.SaveLoginState(ctx, "old", LoginState{TenantKey: "bunny"}, time.Minute)
	s.now = time.Now
	if _, err := s.ConsumeCode(ctx, old); !errors.Is(err, ErrNotFound) {
		t.Fatalf("expired code: %v", err)
	}
	if _, err := s.ConsumeLoginState(ctx, "old"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("expired state: %v", err)
	}
}

func TestSessionsAndTokensStoredHashed(t *testing.T) {
	s := open(t, newDB(t), key(1))
	ctx := t.Context()
	withUser(t, s, "bunny_alice")
	secret, sess, err := s.CreateSession(ctx, "bunny_alice", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := s.CreateToken(ctx, Token{User: "bunny_alice", Kind: TokenOAuth, SessionID: sess.ID}, time.Hour)
	var n int
	s.db.QueryRowContext(ctx, `SELECT count(*) FROM hub_sessions WHERE id_hash = $1`, secret).Scan(&n)
	if n != 0 {
		t.Fatal("session secret stored in clear")
	}
	if got, err := s.SessionBySecret(ctx, secret); err != nil || got.User != "bunny_alice" {
		t.Fatalf("%+v %v", got, err)
	}
	// Ending the session revokes the tokens the user's servers got through it.
	if err := s.DeleteSession(ctx, secret); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SessionBySecret(ctx, secret); !errors.Is(err, ErrNotFound) {
		t.Fatalf("session after delete: %v", err)
	}
	if _, err := s.TokenBySecret(ctx, tok); !errors.Is(err, ErrNotFound) {
		t.Fatalf("oauth token after logout: %v", err)
	}
}

func TestSlug(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{"alice", "alice"},
		{"bunny_alice", "bunny-alice-"},
		{"Bunny_Alice", "bunny-alice-"},
		{"bunny_สมชาย ใจดี", "bunny-"},
		{"สมชาย", "u-"},
		{"bunny_" + string(bytes.Repeat([]byte("x"), 60)), "bunny-xxxxxxxxxxxxxxxxxxxxxxxx-"},
	} {
		got := Slug(tc.name)
		if got[:len(tc.want)] != tc.want || len(got) > 40 {
			t.Errorf("Slug(%q) = %q, want prefix %q", tc.name, got, tc.want)
		}
		for _, r := range got {
			if !('a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '-') {
				t.Errorf("Slug(%q) = %q has %q", tc.name, got, r)
			}
		}
	}
	if Slug("bunny_alice") == Slug("Bunny_Alice") || Slug("bunny_alice") == Slug("bunny-alice") {
		t.Error("different names share a slug")
	}
}

// TestUserNumbersUniqueAndStable: users are numbered 1, 2, 3… in order of creation; a user's
// number stays across logins and reopening the database, and hub.db is private to the hub.
func TestUserNumbersUniqueAndStable(t *testing.T) {
	dir := newDB(t)
	s := open(t, dir, key(1))
	a, b := withUser(t, s, "bunny_alice"), withUser(t, s, "bon_alice")
	if a.Number != 1 || b.Number != 2 {
		t.Fatalf("numbers %d %d, want 1 2", a.Number, b.Number)
	}
	if again := withUser(t, s, "bunny_alice"); again.Number != 1 {
		t.Fatalf("second login numbered %d", again.Number)
	}
	s.Close()
	s = open(t, dir, key(1))
	if u, err := s.User(t.Context(), "bon_alice"); err != nil || u.Number != 2 {
		t.Fatalf("after reopening: %+v %v", u, err)
	}
	if c := withUser(t, s, "bunny_carol"); c.Number != 3 {
		t.Fatalf("third user numbered %d", c.Number)
	}
	if backend != "sqlite" {
		return
	}
	for _, f := range []string{"hub.db", "hub.db-wal", "hub.db-shm"} {
		if fi, err := os.Stat(filepath.Join(dir.dir, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want mode 0600", f, fi.Mode(), err)
		}
	}
}
