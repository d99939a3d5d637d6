package oauthserver

import (
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxLimiters bounds the memory an attacker can make the limiter use by trying many
// usernames; beyond it, limiters that are full again (idle) are dropped.
const maxLimiters = 10000

// limiter rate-limits failed credential checks per key: (tenant, client IP, username) for
// passwords, (tenant, client IP, client id) for client secrets.
type limiter struct {
	burst int
	every rate.Limit
	now   func() time.Time

	mu   sync.Mutex
	keys map[string]*rate.Limiter
}

func newLimiter(burst int, interval time.Duration, now func() time.Time) *limiter {
	return &limiter{burst: burst, every: rate.Every(interval), now: now, keys: map[string]*rate.Limiter{}}
}

// blocked reports whether key has used up its failed attempts. Only failures are
// counted, so a user who types the password right is never slowed down.
func (l *limiter) blocked(key string) bool {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.keys[key]
	return ok && lim.TokensAt(now) < 1
}

// fail records a failed attempt for key.
func (l *limiter) fail(key string) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.keys[key]
	if !ok {
		if len(l.keys) >= maxLimiters {
			for k, v := range l.keys {
				if v.TokensAt(now) >= float64(l.burst) {
					delete(l.keys, k)
				}
			}
		}
		lim = rate.NewLimiter(l.every, l.burst)
		l.keys[key] = lim
	}
	lim.AllowN(now, 1)
}

// clientIP is the address the request came from. The api is expected to sit directly
// behind its listener or a proxy that sets RemoteAddr (X-Forwarded-For is not trusted:
// a client could rotate it to escape the limit).
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func limitKey(schema string, r *http.Request, username string) string {
	return schema + "\x00" + clientIP(r) + "\x00" + username
}

// credentialsBlocked reports whether a credential check for name (a username, or a client id
// with a "client" prefix) from r must be refused: that pair failed too often, or the client
// IP failed too often across all names (cycling through usernames would otherwise escape
// the per-name limit, and every check of an unknown name costs a full password hash).
func (s *Server) credentialsBlocked(schema string, r *http.Request, name string) bool {
	return s.limiter.blocked(limitKey(schema, r, name)) || s.ipLimiter.blocked(schema+"\x00"+clientIP(r))
}

// credentialsFailed records a failed credential check.
func (s *Server) credentialsFailed(schema string, r *http.Request, name string) {
	s.limiter.fail(limitKey(schema, r, name))
	s.ipLimiter.fail(schema + "\x00" + clientIP(r))
}
