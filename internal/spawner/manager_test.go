package spawner

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// survivors is a spawner whose servers outlive the hub, as Docker's do: each "server" is an
// httptest server that keeps running until stopped.
type survivors struct {
	mu      sync.Mutex
	servers map[string]*httptest.Server // by handle ID
	users   map[string]string           // handle ID → user
	stopped []string
}

func (s *survivors) Start(ctx context.Context, spec Spec) (Handle, error) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	s.mu.Lock()
	defer s.mu.Unlock()
	id := "c-" + spec.User
	s.servers[id] = srv
	s.users[id] = spec.User
	return Handle{ID: id, URL: srv.URL}, nil
}

func (s *survivors) Stop(ctx context.Context, h Handle) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if srv := s.servers[h.ID]; srv != nil {
		srv.Close()
	}
	delete(s.servers, h.ID)
	s.stopped = append(s.stopped, h.ID)
	return nil
}

func (s *survivors) Poll(ctx context.Context, h Handle) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.servers[h.ID] == nil {
		return ErrStopped
	}
	return nil
}

func (s *survivors) List(ctx context.Context) ([]Running, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Running
	for id, srv := range s.servers {
		out = append(out, Running{User: s.users[id], Handle: Handle{ID: id, URL: srv.URL}, Started: time.Now()})
	}
	return out, nil
}

// memRecords keeps server records in memory, as the store does on disk.
type memRecords struct {
	mu sync.Mutex
	m  map[string]Handle
}

func (r *memRecords) SaveServer(ctx context.Context, user string, h Handle, started time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.m[user] = h
	return nil
}

func (r *memRecords) DeleteServer(ctx context.Context, user string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.m, user)
	return nil
}

func (r *memRecords) Servers(ctx context.Context) (map[string]Handle, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]Handle{}
	for k, v := range r.m {
		out[k] = v
	}
	return out, nil
}

func manager(sp Spawner, rec Records, cleaned *[]string) *Manager {
	var mu sync.Mutex
	return NewManager(sp, Options{StartTimeout: 10 * time.Second, HTTPTimeout: 5 * time.Second,
		Prepare: func(ctx context.Context, user string) (Spec, error) {
			return Spec{User: user, ServicePrefix: "/user/" + user + "/"}, nil
		},
		Cleanup:   func(ctx context.Context, user string) { mu.Lock(); *cleaned = append(*cleaned, user); mu.Unlock() },
		PublicURL: func(user string) string { return "/user/" + user + "/" },
		Records:   rec,
	}, slog.New(slog.DiscardHandler))
}

func waitRunning(t *testing.T, m *Manager, user string) {
	t.Helper()
	for range 200 {
		if m.Status(user).State == StateRunning {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s not running: %+v", user, m.Status(user))
}

// TestRestartAdoptsSurvivingServers: a hub restarted over a spawner whose servers outlive it
// adopts the recorded ones without restarting them, stops unrecorded ones and forgets
// recorded ones that are gone.
func TestRestartAdoptsSurvivingServers(t *testing.T) {
	sp := &survivors{servers: map[string]*httptest.Server{}, users: map[string]string{}}
	rec := &memRecords{m: map[string]Handle{}}
	var cleaned []string
	first := manager(sp, rec, &cleaned)
	first.Start("alice")
	first.Start("bob")
	waitRunning(t, first, "alice")
	waitRunning(t, first, "bob")
	before, _ := first.Target("alice")
	if err := first.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if len(sp.stopped) != 0 {
		t.Fatalf("closing the hub stopped %v", sp.stopped)
	}
	// While the hub was down: bob's server died, and a server nobody recorded appeared.
	sp.Stop(t.Context(), Handle{ID: "c-bob"})
	sp.Start(t.Context(), Spec{User: "mallory"})
	sp.stopped = nil

	second := manager(sp, rec, &cleaned)
	defer second.Close(t.Context())
	if err := second.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	after, ok := second.Target("alice")
	if !ok || after.String() != before.String() {
		t.Fatalf("alice not adopted: %v %v (was %v)", after, ok, before)
	}
	if st := second.Status("bob"); st.State != StateStopped {
		t.Errorf("bob: %+v", st)
	}
	if len(sp.stopped) != 1 || sp.stopped[0] != "c-mallory" {
		t.Errorf("stopped %v, want the unrecorded c-mallory", sp.stopped)
	}
	recs, _ := rec.Servers(t.Context())
	if _, ok := recs["bob"]; ok || len(recs) != 1 {
		t.Errorf("records after reconcile: %v", recs)
	}
	if len(cleaned) != 1 || cleaned[0] != "bob" {
		t.Errorf("tokens revoked for %v, want bob's", cleaned)
	}
}
