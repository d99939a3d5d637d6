package store

import (
	"errors"
	"sync"
	"testing"
	"time"
)

// replicas opens n stores on one database at once, as hub replicas starting together do:
// each migrates, and none fails for the others doing the same.
func replicas(t *testing.T, n int) []*Store {
	t.Helper()
	d := newDB(t)
	out := make([]*Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { out[i], errs[i] = Open(t.Context(), d.database, d.dir, [][]byte{key(1)}) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		t.Cleanup(func() { out[i].Close() })
	}
	return out
}

// race runs f n times at once, round robin over the stores, and returns how many calls
// succeeded and the errors of the others.
func race(stores []*Store, n int, f func(s *Store) error) (int, []error) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	ok := 0
	var errs []error
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			err := f(stores[i%len(stores)])
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				ok++
			} else {
				errs = append(errs, err)
			}
		})
	}
	close(start)
	wg.Wait()
	return ok, errs
}

// TestReplicasShareOneDatabase: hubs sharing a database agree on every read-modify-write. A
// code or login state works once among all of them, one of two refreshes racing from the
// same token version wins and the other learns of the conflict, and two first logins of one
// user make one user with one number.
func TestReplicasShareOneDatabase(t *testing.T) {
	const n = 8
	stores := replicas(t, 2)
	ctx := t.Context()
	a := stores[0]

	ok, errs := race(stores, n, func(s *Store) error {
		u, err := s.SaveUser(ctx, User{Name: "bunny_alice", TenantKey: "bunny", Subject: "7", Username: "alice", Slug: Slug("bunny_alice")})
		if err == nil && (u.Name != "bunny_alice" || u.Number != 1) {
			return errors.New("saved " + u.Name + " with another number")
		}
		return err
	})
	if ok != n {
		t.Fatalf("concurrent first logins: %d of %d saved, errors %v", ok, n, errs)
	}
	if users, err := a.Users(ctx); err != nil || len(users) != 1 {
		t.Fatalf("users after concurrent logins: %+v %v", users, err)
	}

	code, err := a.CreateCode(ctx, Code{User: "bunny_alice", ClientID: "c", RedirectURI: "/r", SessionID: "s"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	ok, errs = race(stores, n, func(s *Store) error { _, err := s.ConsumeCode(ctx, code); return err })
	if ok != 1 || !allAre(errs, ErrNotFound) {
		t.Fatalf("code consumed %d times, errors %v", ok, errs)
	}

	if err := a.SaveLoginState(ctx, "st", LoginState{TenantKey: "bunny", Verifier: "v", Next: "/hub/home"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	ok, errs = race(stores, n, func(s *Store) error { _, err := s.ConsumeLoginState(ctx, "st"); return err })
	if ok != 1 || !allAre(errs, ErrNotFound) {
		t.Fatalf("login state consumed %d times, errors %v", ok, errs)
	}

	ok, errs = race(stores, n, func(s *Store) error {
		return s.PutTenantToken(ctx, "bunny_alice", TenantToken{AccessToken: "login", RefreshToken: "r0", TokenType: "Bearer"})
	})
	if ok != n {
		t.Fatalf("concurrent logins storing the tenant token: %d of %d, errors %v", ok, n, errs)
	}
	tok, err := a.GetTenantToken(ctx, "bunny_alice")
	if err != nil || tok.Version != n {
		t.Fatalf("after %d puts: %+v %v", n, tok, err)
	}
	ok, errs = race(stores, n, func(s *Store) error {
		next := tok
		next.AccessToken, next.RefreshToken = "refreshed", "r1"
		_, err := s.SwapTenantToken(ctx, "bunny_alice", next)
		return err
	})
	if ok != 1 || !allAre(errs, ErrConflict) {
		t.Fatalf("swap from one version won %d times, errors %v", ok, errs)
	}
	if got, err := stores[1].GetTenantToken(ctx, "bunny_alice"); err != nil || got.RefreshToken != "r1" || got.Version != n+1 {
		t.Fatalf("after the swaps: %+v %v", got, err)
	}

	ok, errs = race(stores, n, func(s *Store) error {
		return s.SaveServer(ctx, ServerRecord{User: "bunny_alice", HandleID: "h", URL: "http://127.0.0.1:9/", Started: time.Now()})
	})
	if ok != n {
		t.Fatalf("concurrent server records: %d of %d, errors %v", ok, n, errs)
	}
	if recs, err := a.Servers(ctx); err != nil || len(recs) != 1 {
		t.Fatalf("server records: %+v %v", recs, err)
	}
}

func allAre(errs []error, target error) bool {
	for _, err := range errs {
		if !errors.Is(err, target) {
			return false
		}
	}
	return true
}
