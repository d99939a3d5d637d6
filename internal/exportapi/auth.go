package exportapi

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/ohtkhub/ohtkhub/internal/djangohash"
	"github.com/ohtkhub/ohtkhub/internal/ohtkdb"
	"github.com/ohtkhub/ohtkhub/internal/tenant"
)

// The ways a caller can authenticate, as recorded in the audit log.
const (
	methodBearer   = "bearer"
	methodPassword = "basic_password"
	methodAPIKey   = "api_key"
)

// APIKeyPrefix starts every ohtkhub API key; Basic passwords with it are looked up as keys.
const APIKeyPrefix = "ohtk_"

// principal is an authenticated caller.
type principal struct {
	userID      int64
	username    string
	firstName   string
	lastName    string
	email       string
	superuser   bool
	method      string
	role        string // ADM, OFC, REP or "" without an authority row
	authorityID int64
	authCode    string
	authName    string
}

const challenge = `Bearer realm="ohtk", Basic realm="ohtk", charset="UTF-8"`

func unauthorized(code, desc string) *apiError {
	return &apiError{status: http.StatusUnauthorized, code: code, desc: desc,
		header: http.Header{"Www-Authenticate": {challenge}}}
}

var (
	errNoCredentials = unauthorized("unauthorized", "authentication required: a Bearer token or HTTP Basic credentials")
	errBadToken      = unauthorized("invalid_token", "the access token is invalid, expired or revoked")
	errBadBasic      = unauthorized("unauthorized", "invalid username or password")
)

// HashAPIKey returns what ohtkhub_apikey.key_hash holds for key: the sha256 hex of the
// whole key. Keys start with APIKeyPrefix.
func HashAPIKey(key string) string { return checksum(key) }

func checksum(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func (h *handler) authenticate(r *http.Request, t *tenant.Tenant) (*principal, error) {
	auth := r.Header.Get("Authorization")
	scheme, cred, _ := strings.Cut(auth, " ")
	switch {
	case auth == "":
		return nil, errNoCredentials
	case strings.EqualFold(scheme, "Bearer"):
		return h.bearer(r.Context(), t.DB, strings.TrimSpace(cred))
	case strings.EqualFold(scheme, "Basic"):
		user, pass, ok := r.BasicAuth()
		if !ok {
			return nil, errBadBasic
		}
		// Failures are counted per client and username, and per client alone (with a larger
		// allowance) so that trying one password on many usernames is slowed down too.
		ipKey := t.SchemaName + "\x00" + clientIP(r)
		key := ipKey + "\x00" + user
		now := h.now()
		wait, blocked := h.limiter.blocked(key, now)
		if ipWait, ipBlocked := h.ipLimiter.blocked(ipKey, now); ipBlocked {
			wait, blocked = max(wait, ipWait), true
		}
		if blocked {
			secs := int(math.Ceil(wait.Seconds()))
			return nil, &apiError{status: http.StatusTooManyRequests, code: "too_many_requests",
				desc:   "too many failed logins; retry later",
				header: http.Header{"Retry-After": {strconv.Itoa(max(secs, 1))}}}
		}
		p, err := h.basic(r.Context(), t.DB, user, pass)
		if errors.Is(err, errBadBasic) {
			h.limiter.fail(key, now)
			h.ipLimiter.fail(ipKey, now)
			h.log.WarnContext(r.Context(), "export api: failed Basic login", "tenant", t.SchemaName, "username", user, "remote", clientIP(r))
		}
		return p, err
	}
	return nil, errNoCredentials
}

// bearer authenticates a DOT access token by its checksum.
func (h *handler) bearer(ctx context.Context, db *sql.DB, token string) (*principal, error) {
	if token == "" {
		return nil, errBadToken
	}
	var (
		expires any
		p       principal
		active  bool
	)
	// DOT 3.0 looks tokens up by their checksum; older databases have only the token.
	match, arg := "t.token_checksum = $1", checksum(token)
	if legacy, err := h.legacyTokens(ctx, db); err != nil {
		return nil, err
	} else if legacy {
		match, arg = "t.token = $1", token
	}
	err := db.QueryRowContext(ctx, `SELECT t.expires, u.id, u.username, u.first_name, u.last_name, u.email, u.is_superuser, u.is_active
		FROM oauth2_provider_accesstoken t JOIN accounts_user u ON u.id = t.user_id
		WHERE `+match, arg).
		Scan(&expires, &p.userID, &p.username, &p.firstName, &p.lastName, &p.email, &p.superuser, &active)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errBadToken
	}
	if err != nil {
		return nil, fmt.Errorf("exportapi: token: %w", err)
	}
	exp, ok := timeValue(expires)
	if !ok || !exp.After(h.now()) || !active {
		return nil, errBadToken
	}
	p.method = methodBearer
	return &p, nil
}

// legacyTokens reports whether the tenant's access tokens predate DOT 3.0 (no
// token_checksum column). The answer is kept per database.
func (h *handler) legacyTokens(ctx context.Context, db *sql.DB) (bool, error) {
	if v, ok := h.tokenColumns.Load(db); ok {
		return v.(bool), nil
	}
	has, err := ohtkdb.HasColumn(ctx, db, "oauth2_provider_accesstoken", "token_checksum")
	if err != nil {
		return false, fmt.Errorf("exportapi: token: %w", err)
	}
	h.tokenColumns.Store(db, !has)
	return !has, nil
}

// standIn returns the tenant's stand-in hash, checked for unknown usernames so they take as
// long as known ones.
func (h *handler) standIn(ctx context.Context, db *sql.DB) *djangohash.StandIn {
	return h.standIns.For(ctx, db, h.log)
}

// basic authenticates HTTP Basic credentials: an API key, or the user's Django password.
func (h *handler) basic(ctx context.Context, db *sql.DB, username, secret string) (*principal, error) {
	if strings.HasPrefix(secret, APIKeyPrefix) {
		return h.apiKey(ctx, db, username, secret)
	}
	if !h.opts.BasicPasswords {
		return nil, errBadBasic
	}
	var (
		p       principal
		encoded string
		active  bool
	)
	err := db.QueryRowContext(ctx, `SELECT id, username, first_name, last_name, email, is_superuser, is_active, password
		FROM accounts_user WHERE username = $1`, username).
		Scan(&p.userID, &p.username, &p.firstName, &p.lastName, &p.email, &p.superuser, &active, &encoded)
	standIn := h.standIn(ctx, db)
	if errors.Is(err, sql.ErrNoRows) {
		standIn.Check(secret)
		return nil, errBadBasic
	}
	if err != nil {
		return nil, fmt.Errorf("exportapi: user: %w", err)
	}
	if !standIn.CheckUser(secret, encoded) || !active {
		return nil, errBadBasic
	}
	p.method = methodPassword
	return &p, nil
}

func (h *handler) apiKey(ctx context.Context, db *sql.DB, username, key string) (*principal, error) {
	var (
		id               int64
		expires, revoked any
		p                principal
		active           bool
	)
	err := db.QueryRowContext(ctx, `SELECT k.id, k.expires, k.revoked, u.id, u.username, u.first_name, u.last_name, u.email, u.is_superuser, u.is_active
		FROM ohtkhub_apikey k JOIN accounts_user u ON u.id = k.user_id
		WHERE k.key_hash = $1`, checksum(key)).
		Scan(&id, &expires, &revoked, &p.userID, &p.username, &p.firstName, &p.lastName, &p.email, &p.superuser, &active)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errBadBasic
	}
	if err != nil {
		return nil, fmt.Errorf("exportapi: api key: %w", err)
	}
	now := h.now()
	if p.username != username || !active || revoked != nil {
		return nil, errBadBasic
	}
	if expires != nil {
		exp, ok := timeValue(expires)
		if !ok || !exp.After(now) {
			return nil, errBadBasic
		}
	}
	if _, err := db.ExecContext(ctx, `UPDATE ohtkhub_apikey SET last_used = $1 WHERE id = $2`, ohtkdb.FormatTime(now), id); err != nil {
		return nil, fmt.Errorf("exportapi: api key last used: %w", err)
	}
	p.method = methodAPIKey
	return &p, nil
}

// timeValue reads a timestamp column: a time.Time (PostgreSQL) or stored text (SQLite).
func timeValue(v any) (time.Time, bool) {
	switch v := v.(type) {
	case time.Time:
		return v, true
	case string:
		t, err := ohtkdb.ParseTime(v)
		if err != nil {
			t, err = time.Parse(time.RFC3339Nano, v)
		}
		return t, err == nil
	case []byte:
		return timeValue(string(v))
	}
	return time.Time{}, false
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// failureLimiter counts failed logins per key with a token bucket per key.
type failureLimiter struct {
	limit rate.Limit
	burst int

	mu sync.Mutex
	m  map[string]*rate.Limiter
}

func newFailureLimiter(limit rate.Limit, burst int) *failureLimiter {
	return &failureLimiter{limit: limit, burst: burst, m: map[string]*rate.Limiter{}}
}

// blocked reports whether key has used up its failures, and how long until it may retry.
func (l *failureLimiter) blocked(key string, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.m[key]
	if !ok {
		return 0, false
	}
	tokens := lim.TokensAt(now)
	if tokens >= 1 {
		return 0, false
	}
	return time.Duration((1 - tokens) / float64(l.limit) * float64(time.Second)), true
}

// fail records a failed login for key.
func (l *failureLimiter) fail(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.m[key]
	if !ok {
		if len(l.m) >= 10000 {
			l.prune(now)
		}
		lim = rate.NewLimiter(l.limit, l.burst)
		l.m[key] = lim
	}
	lim.AllowN(now, 1)
}

// prune forgets keys whose bucket has refilled: they would behave as new keys anyway.
func (l *failureLimiter) prune(now time.Time) {
	for k, lim := range l.m {
		if lim.TokensAt(now) >= float64(l.burst) {
			delete(l.m, k)
		}
	}
}
