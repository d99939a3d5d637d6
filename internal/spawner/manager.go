package spawner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Server states.
const (
	StatePending  = "pending"
	StateRunning  = "running"
	StateStopping = "stopping"
	StateStopped  = "stopped"
)

// Event is one spawn progress event, in JupyterHub's progress JSON shape.
type Event struct {
	Progress    int    `json:"progress"`
	Message     string `json:"message"`
	HTMLMessage string `json:"html_message,omitempty"`
	Ready       bool   `json:"ready,omitempty"`
	Failed      bool   `json:"failed,omitempty"`
	URL         string `json:"url,omitempty"`
}

// Status is a snapshot of one user's server.
type Status struct {
	State  string
	Target *url.URL // the server's base URL (http://127.0.0.1:port); nil unless running
	// ID is the spawner's handle of the running server: the local server's process id, the
	// docker server's container id; "" unless running.
	ID        string
	Started   time.Time
	Ready     time.Time
	LastError string
}

// Options configure a Manager.
type Options struct {
	StartTimeout time.Duration
	HTTPTimeout  time.Duration
	PollInterval time.Duration
	// Prepare builds the spec of a user's server (environment, API token). It is called for
	// every start, so tokens are fresh.
	Prepare func(ctx context.Context, user string) (Spec, error)
	// Cleanup runs after a server stopped (revoke its API token).
	Cleanup func(ctx context.Context, user string)
	// PublicURL returns the browser path of a user's server, sent in the ready event.
	PublicURL func(user string) string
	// Records, when set, keeps which servers run, so that a restarted hub can adopt the
	// servers of spawners that outlive it (Lister).
	Records Records
}

// Records stores which users' servers run.
type Records interface {
	SaveServer(ctx context.Context, user string, h Handle, started time.Time) error
	DeleteServer(ctx context.Context, user string) error
	Servers(ctx context.Context) (map[string]Handle, error)
}

// Manager tracks every user's server.
type Manager struct {
	sp   Spawner
	opt  Options
	log  *slog.Logger
	http *http.Client

	mu      sync.Mutex
	servers map[string]*server
	closed  bool
	wg      sync.WaitGroup
	stop    chan struct{}
}

type server struct {
	user      string
	state     string
	handle    Handle
	target    *url.URL
	started   time.Time
	ready     time.Time
	lastError string
	events    []Event
	subs      map[chan Event]struct{}
	cancel    context.CancelFunc
	done      chan struct{} // closed when the spawn goroutine ends
}

// NewManager returns a Manager using sp and starts its poller.
func NewManager(sp Spawner, opt Options, log *slog.Logger) *Manager {
	m := &Manager{sp: sp, opt: opt, log: log, servers: map[string]*server{}, stop: make(chan struct{}),
		http: &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	m.wg.Add(1)
	go m.pollLoop()
	return m
}

// ErrClosed is returned after Close.
var ErrClosed = errors.New("spawner: hub is shutting down")

// ErrStopping is returned when starting a server that is still stopping.
var ErrStopping = errors.New("spawner: server is stopping")

// Start starts user's server in the background; a pending or running server is left alone.
func (m *Manager) Start(user string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	s := m.servers[user]
	if s != nil {
		switch s.state {
		case StatePending, StateRunning:
			return nil
		case StateStopping:
			return ErrStopping
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), m.opt.StartTimeout)
	s = &server{user: user, state: StatePending, started: time.Now(), subs: map[chan Event]struct{}{}, cancel: cancel, done: make(chan struct{})}
	if old := m.servers[user]; old != nil {
		// Keep subscribers following the user across restarts.
		s.subs = old.subs
		s.lastError = ""
	}
	m.servers[user] = s
	m.emitLocked(s, Event{Progress: 0, Message: "Server requested"})
	m.wg.Add(1)
	go m.spawn(ctx, s)
	return nil
}

func (m *Manager) spawn(ctx context.Context, s *server) {
	defer m.wg.Done()
	defer close(s.done)
	defer s.cancel()
	fail := func(reason string) {
		m.log.Warn("spawn failed", "user", s.user, "reason", reason)
		m.mu.Lock()
		h := s.handle
		m.mu.Unlock()
		if h.ID != "" {
			sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			m.sp.Stop(sctx, h)
			cancel()
		}
		m.forget(context.Background(), s.user)
		m.mu.Lock()
		if s.state == StateStopping {
			reason = "stopped before it was ready"
		}
		s.state = StateStopped
		s.target = nil
		s.lastError = reason
		m.emitLocked(s, Event{Progress: 100, Failed: true, Message: "Spawn failed: " + reason})
		m.mu.Unlock()
	}
	spec, err := m.opt.Prepare(ctx, s.user)
	if err != nil {
		fail(err.Error())
		return
	}
	m.event(s, Event{Progress: 10, Message: "Starting the server"})
	h, err := m.sp.Start(ctx, spec)
	if err != nil {
		fail(describe(ctx, err, m.opt.StartTimeout))
		return
	}
	target, err := url.Parse(h.URL)
	if err != nil {
		fail("the spawner returned a bad URL " + h.URL)
		return
	}
	m.mu.Lock()
	s.handle = h
	m.mu.Unlock()
	m.event(s, Event{Progress: 50, Message: "Server process started; waiting for it to answer"})
	if err := m.waitReady(ctx, h, target.String()+spec.ServicePrefix); err != nil {
		fail(describe(ctx, err, m.opt.StartTimeout))
		return
	}
	if m.opt.Records != nil {
		if err := m.opt.Records.SaveServer(context.WithoutCancel(ctx), s.user, h, s.started); err != nil {
			m.log.Error("record server", "user", s.user, "err", err)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if s.state != StatePending {
		return // stopped meanwhile
	}
	s.state = StateRunning
	s.target = target
	s.ready = time.Now()
	m.log.Info("server ready", "user", s.user, "url", h.URL, "after", time.Since(s.started).Round(time.Millisecond))
	m.emitLocked(s, Event{Progress: 100, Ready: true, Message: "Server ready at " + m.opt.PublicURL(s.user), URL: m.opt.PublicURL(s.user)})
	m.watchLocked(s, h)
}

// watchLocked stops routing to s the moment a Watcher spawner reports that h ended, so that
// no request reaches whatever binds its address next.
func (m *Manager) watchLocked(s *server, h Handle) {
	w, ok := m.sp.(Watcher)
	if !ok || m.closed {
		return
	}
	exited := w.Exited(h)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		select {
		case <-exited:
		case <-m.stop:
			return
		}
		err := m.sp.Poll(context.Background(), h)
		if err == nil {
			err = fmt.Errorf("%w: the server process exited", ErrStopped)
		}
		m.died(context.Background(), s, h, err)
	}()
}

func describe(ctx context.Context, err error, timeout time.Duration) string {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Sprintf("the server did not start within %s", timeout)
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return "the start was cancelled"
	}
	return err.Error()
}

// waitReady polls the server's URL until it answers with a status below 500, the process
// dies or the HTTP timeout passes.
func (m *Manager) waitReady(parent context.Context, h Handle, u string) error {
	ctx, cancel := context.WithTimeout(parent, m.opt.HTTPTimeout)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := m.sp.Poll(ctx, h); err != nil {
			return err
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if resp, err := m.http.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode < 500 {
				return m.verify(ctx, h)
			}
		}
		select {
		case <-ctx.Done():
			if parent.Err() == nil {
				return fmt.Errorf("the server did not answer HTTP within %s", m.opt.HTTPTimeout)
			}
			return parent.Err()
		case <-tick.C:
		}
	}
}

// verify checks, with a Verifier spawner, that what answers at h is the server that was started.
func (m *Manager) verify(ctx context.Context, h Handle) error {
	v, ok := m.sp.(Verifier)
	if !ok {
		return nil
	}
	return v.Verify(ctx, h)
}

// DialContext opens a connection to a running server's address (host:port of its Target) for
// the proxy. With a Verifier spawner every new connection is checked to reach the server
// itself; a server whose address another process holds is stopped and never reached.
func (m *Manager) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	if _, ok := m.sp.(Verifier); !ok {
		return d.DialContext(ctx, network, addr)
	}
	m.mu.Lock()
	var s *server
	var h Handle
	for _, cur := range m.servers {
		if cur.state == StateRunning && cur.target != nil && cur.target.Host == addr {
			s, h = cur, cur.handle
			break
		}
	}
	m.mu.Unlock()
	if s == nil {
		return nil, fmt.Errorf("spawner: no running server at %s", addr)
	}
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if err := m.verify(ctx, h); err != nil {
		conn.Close()
		m.log.Error("refusing to proxy to a server", "user", s.user, "addr", addr, "reason", err)
		if errors.Is(err, ErrImpostor) {
			m.sp.Stop(context.WithoutCancel(ctx), h)
		}
		m.died(context.WithoutCancel(ctx), s, h, err)
		return nil, err
	}
	return conn, nil
}

func (m *Manager) event(s *server, e Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.emitLocked(s, e)
}

func (m *Manager) emitLocked(s *server, e Event) {
	s.events = append(s.events, e)
	for ch := range s.subs {
		select {
		case ch <- e:
		default: // a slow reader misses intermediate events, never blocks a spawn
		}
	}
}

// Subscribe returns the events of the user's current or last spawn so far and a channel of
// the following ones. Call cancel when done.
func (m *Manager) Subscribe(user string) (past []Event, ch <-chan Event, cancel func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.servers[user]
	if s == nil {
		s = &server{user: user, state: StateStopped, subs: map[chan Event]struct{}{}}
		m.servers[user] = s
	}
	c := make(chan Event, 16)
	s.subs[c] = struct{}{}
	past = append([]Event(nil), s.events...)
	return past, c, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if cur := m.servers[user]; cur != nil {
			delete(cur.subs, c)
		}
	}
}

// Status returns a snapshot of the user's server.
func (m *Manager) Status(user string) Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.servers[user]
	if s == nil {
		return Status{State: StateStopped}
	}
	return Status{State: s.state, Target: s.target, ID: s.handle.ID, Started: s.started, Ready: s.ready, LastError: s.lastError}
}

// Target returns the base URL of the user's server if it is running.
func (m *Manager) Target(user string) (*url.URL, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.servers[user]
	if s == nil || s.state != StateRunning {
		return nil, false
	}
	return s.target, true
}

// Stop stops the user's server (cancelling a pending start) and waits for it to end.
func (m *Manager) Stop(ctx context.Context, user string) error {
	m.mu.Lock()
	s := m.servers[user]
	if s == nil || s.state == StateStopped || s.state == StateStopping {
		m.mu.Unlock()
		return nil
	}
	wasPending := s.state == StatePending
	s.state = StateStopping
	s.cancel()
	m.mu.Unlock()
	if wasPending {
		select {
		case <-s.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	m.mu.Lock()
	h := s.handle
	m.mu.Unlock()
	var err error
	if h.ID != "" {
		err = m.sp.Stop(ctx, h)
	}
	m.forget(ctx, user)
	m.mu.Lock()
	s.state = StateStopped
	s.target = nil
	s.handle = Handle{}
	m.emitLocked(s, Event{Progress: 100, Failed: true, Message: "Server stopped"})
	m.mu.Unlock()
	m.log.Info("server stopped", "user", user)
	return err
}

func (m *Manager) pollLoop() {
	defer m.wg.Done()
	if m.opt.PollInterval <= 0 {
		return
	}
	tick := time.NewTicker(m.opt.PollInterval)
	defer tick.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-tick.C:
			m.PollAll(context.Background())
		}
	}
}

// PollAll checks every running server and marks dead ones stopped with the reason.
func (m *Manager) PollAll(ctx context.Context) {
	m.mu.Lock()
	var running []*server
	for _, s := range m.servers {
		if s.state == StateRunning {
			running = append(running, s)
		}
	}
	m.mu.Unlock()
	for _, s := range running {
		m.mu.Lock()
		h := s.handle
		m.mu.Unlock()
		err := m.sp.Poll(ctx, h)
		if err == nil {
			continue
		}
		m.died(ctx, s, h, err)
	}
}

// died marks s, still running with handle h, stopped for reason err.
func (m *Manager) died(ctx context.Context, s *server, h Handle, err error) {
	m.mu.Lock()
	if s.state != StateRunning || s.handle != h {
		m.mu.Unlock()
		return
	}
	s.state = StateStopped
	s.target = nil
	s.handle = Handle{}
	s.lastError = err.Error()
	m.emitLocked(s, Event{Progress: 100, Failed: true, Message: "Server stopped: " + err.Error()})
	m.mu.Unlock()
	m.log.Warn("server died", "user", s.user, "reason", err)
	m.forget(ctx, s.user)
}

// Close stops every server and the poller.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	close(m.stop)
	_, detach := m.sp.(Lister)
	var users []string
	for name, s := range m.servers {
		// Servers of spawners that outlive the hub keep running; the next hub adopts them.
		if detach && s.state == StateRunning {
			continue
		}
		users = append(users, name)
	}
	m.mu.Unlock()
	var errs []error
	var wg sync.WaitGroup
	var emu sync.Mutex
	for _, u := range users {
		wg.Go(func() {
			if err := m.Stop(ctx, u); err != nil {
				emu.Lock()
				errs = append(errs, fmt.Errorf("stop %s: %w", u, err))
				emu.Unlock()
			}
		})
	}
	wg.Wait()
	m.wg.Wait()
	return errors.Join(errs...)
}

// forget removes the record of a stopped server and revokes its token.
func (m *Manager) forget(ctx context.Context, user string) {
	if m.opt.Records != nil {
		if err := m.opt.Records.DeleteServer(ctx, user); err != nil {
			m.log.Error("forget server", "user", user, "err", err)
		}
	}
	if m.opt.Cleanup != nil {
		m.opt.Cleanup(ctx, user)
	}
}

// Reconcile runs once at start, before requests are served. With a spawner whose servers
// outlive the hub (Lister), the servers recorded as running and still running are adopted
// without a restart, unrecorded ones are stopped; recorded servers no longer running are
// forgotten (their tokens revoked).
func (m *Manager) Reconcile(ctx context.Context) error {
	if m.opt.Records == nil {
		return nil
	}
	recorded, err := m.opt.Records.Servers(ctx)
	if err != nil {
		return fmt.Errorf("spawner: read server records: %w", err)
	}
	var running []Running
	var errs []error
	if l, ok := m.sp.(Lister); ok {
		if running, err = l.List(ctx); err != nil {
			// List reports per-container problems next to what it found; adopt what it found.
			errs = append(errs, err)
		}
	}
	adopted := map[string]bool{}
	for _, r := range running {
		rec, ok := recorded[r.User]
		target, perr := url.Parse(r.Handle.URL)
		if !ok || rec.ID != r.Handle.ID || perr != nil || adopted[r.User] {
			m.log.Info("stopping a server the hub has no record of", "user", r.User, "id", r.Handle.ID)
			if err := m.sp.Stop(ctx, r.Handle); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		adopted[r.User] = true
		m.mu.Lock()
		ready := Event{Progress: 100, Ready: true, Message: "Server ready at " + m.opt.PublicURL(r.User), URL: m.opt.PublicURL(r.User)}
		m.servers[r.User] = &server{user: r.User, state: StateRunning, handle: r.Handle, target: target, started: r.Started,
			ready: time.Now(), events: []Event{ready}, subs: map[chan Event]struct{}{}, cancel: func() {}, done: closedChan()}
		m.mu.Unlock()
		if m.opt.Records != nil && r.Handle.URL != "" {
			m.opt.Records.SaveServer(ctx, r.User, r.Handle, r.Started)
		}
		m.log.Info("adopted running server", "user", r.User, "id", r.Handle.ID, "url", r.Handle.URL)
	}
	for user := range recorded {
		if !adopted[user] {
			m.forget(ctx, user)
		}
	}
	return errors.Join(errs...)
}

func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}
