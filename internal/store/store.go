// Package store keeps the hub's state: users, sessions, API tokens, OAuth codes for
// single-user servers, login states and the tenants' tokens (encrypted).
//
// The state lives in SQLite (hub.db in the data directory) or in PostgreSQL, where several hub
// replicas may share it. One set of migrations and one SQL text serve both: $1 placeholders,
// TEXT keys chosen by the hub, timestamps as sortable UTC text, booleans as 0/1 integers, and
// every read-modify-write a single statement (DELETE … RETURNING, INSERT … ON CONFLICT,
// UPDATE … WHERE version = $n) or a transaction that first takes a row lock, so it stays
// atomic between replicas under PostgreSQL's READ COMMITTED as under SQLite's one writer.
// Secrets the hub hands out (sessions, tokens, codes, states) are stored as SHA-256 hashes;
// secrets it must use again (tenant tokens, PKCE verifiers) are encrypted with AES-GCM.
package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/ohtkhub/ohtkhub/internal/migrate"
)

// ErrNotFound is returned when a row does not exist (or has expired).
var ErrNotFound = errors.New("store: not found")

// ErrAlreadyExists is returned when creating something that exists.
var ErrAlreadyExists = errors.New("store: already exists")

// ErrConflict is returned by a compare-and-swap whose expected version is stale.
var ErrConflict = errors.New("store: changed concurrently")

const timeFormat = "2006-01-02T15:04:05.000000Z"

func formatTime(t time.Time) string { return t.UTC().Format(timeFormat) }

func parseTime(s string) time.Time {
	t, _ := time.Parse(timeFormat, s)
	return t
}

//go:embed migrations/*.sql
var migrations embed.FS

// Store is the hub's database.
type Store struct {
	db    *sql.DB
	crypt *crypter
	now   func() time.Time
}

// Open opens the hub's database, applies migrations and uses keys (32 bytes each; the first
// encrypts) for secrets at rest. database is a postgres:// URL, or empty for the SQLite
// database hub.db in dir (created if needed).
func Open(ctx context.Context, database, dir string, keys [][]byte) (*Store, error) {
	c, err := newCrypter(keys)
	if err != nil {
		return nil, err
	}
	var db *sql.DB
	var where string
	switch {
	case migrate.IsPostgresURL(database):
		db, where, err = openPostgres(ctx, database)
	case database != "":
		return nil, errors.New("store: database: want a postgres:// URL, or nothing for hub.db in the data directory")
	default:
		db, where, err = openSQLite(ctx, dir)
	}
	if err != nil {
		return nil, err
	}
	st := &Store{db: db, crypt: c, now: time.Now}
	if err := st.checkKeys(ctx); err != nil {
		db.Close()
		if errors.Is(err, ErrWrongKey) {
			return nil, fmt.Errorf("store: %s: %w", where, err)
		}
		return nil, fmt.Errorf("store: check the crypt keys against %s: %w", where, err)
	}
	return st, nil
}

// openSQLite opens and migrates hub.db in dir. One writer at a time (transactions take the
// write lock as they begin) and a busy timeout make concurrent writers wait, not fail.
func openSQLite(ctx context.Context, dir string) (*sql.DB, string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", fmt.Errorf("store: %w", err)
	}
	path := filepath.Join(dir, "hub.db")
	// Only the hub reads its database: SQLite gives the -wal and -shm files the mode of the
	// database file, so creating it 0600 keeps all three private.
	if err := privateFile(path); err != nil {
		return nil, "", fmt.Errorf("store: %w", err)
	}
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, "", fmt.Errorf("store: open %s: %w", path, err)
	}
	if err := migrate.Apply(ctx, db, migrations, "migrations", "hub_migrations"); err != nil {
		db.Close()
		return nil, "", fmt.Errorf("store: migrate %s: %w", path, err)
	}
	return db, path, nil
}

// openPostgres connects to the PostgreSQL database at url and migrates it. The returned name
// (host and database, never the password) is for messages.
func openPostgres(ctx context.Context, url string) (*sql.DB, string, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		// pgx's message may quote the URL, password and all.
		return nil, "", errors.New("store: database: not a valid postgres:// URL")
	}
	where := fmt.Sprintf("PostgreSQL database %s on %s", cfg.Database, cfg.Host)
	db := stdlib.OpenDB(*cfg)
	db.SetMaxIdleConns(4)
	err = migrate.WithAdvisoryLock(ctx, db, "ohtkhub:hub_migrations", func(conn *sql.Conn) error {
		return migrate.Apply(ctx, conn, migrations, "migrations", "hub_migrations")
	})
	if err != nil {
		db.Close()
		return nil, "", fmt.Errorf("store: migrate %s: %w", where, err)
	}
	return db, where, nil
}

// privateFile creates path with mode 0600 if it is missing, or takes group and other access
// away from it and its SQLite companions.
func privateFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm", path + "-journal"} {
		fi, err := os.Lstat(p)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		if fi.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(p, fi.Mode().Perm()&^0o077); err != nil {
				return err
			}
		}
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// NewSecret returns a random URL-safe secret of 32 bytes.
func NewSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Hash returns the hex SHA-256 of a secret, the form secrets are stored in.
func Hash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// User is a hub user: one per (tenant, provider subject).
type User struct {
	Name      string // {tenant key}_{username}
	TenantKey string
	Subject   string // the provider's user id, or the username when it has none
	Username  string // the username at the tenant, prefix stripped
	Slug      string // safe resource name
	// Number is the user's number, 1, 2, 3… in order of creation: unique and never reused,
	// so a uid derived from it stays the user's across restarts.
	Number       int64
	Admin        bool
	CreatedAt    time.Time
	LastActivity time.Time
}

// SaveUser creates the user for (TenantKey, Subject) or updates its admin flag and username.
// It returns the stored user. A different subject already holding the name gives
// ErrAlreadyExists.
func (s *Store) SaveUser(ctx context.Context, u User) (User, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return User{}, err
	}
	defer tx.Rollback()
	// Lock the user numbering row first: two logins of one new user (on two replicas) then
	// run one after the other, and the second finds the user the first created.
	if _, err := tx.ExecContext(ctx, `UPDATE hub_sequences SET value = value WHERE name = 'user_number'`); err != nil {
		return User{}, err
	}
	var name string
	err = tx.QueryRowContext(ctx, `SELECT name FROM hub_users WHERE tenant_key = $1 AND subject = $2`, u.TenantKey, u.Subject).Scan(&name)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM hub_users WHERE name = $1 OR slug = $2`, u.Name, u.Slug).Scan(&n); err != nil {
			return User{}, err
		}
		if n > 0 {
			return User{}, fmt.Errorf("store: user %q: %w", u.Name, ErrAlreadyExists)
		}
		var number int64
		if err := tx.QueryRowContext(ctx, `UPDATE hub_sequences SET value = value + 1 WHERE name = 'user_number' RETURNING value`).Scan(&number); err != nil {
			return User{}, fmt.Errorf("store: number user %q: %w", u.Name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO hub_users (name, tenant_key, subject, username, slug, number, admin, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			u.Name, u.TenantKey, u.Subject, u.Username, u.Slug, number, boolInt(u.Admin), formatTime(s.now())); err != nil {
			return User{}, err
		}
		name = u.Name
	case err != nil:
		return User{}, err
	default:
		if _, err := tx.ExecContext(ctx, `UPDATE hub_users SET admin = $1 WHERE name = $2`, boolInt(u.Admin), name); err != nil {
			return User{}, err
		}
	}
	if err := tx.Commit(); err != nil {
		return User{}, err
	}
	return s.User(ctx, name)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

const userColumns = `name, tenant_key, subject, username, slug, number, admin, created_at, last_activity`

func scanUser(row interface{ Scan(...any) error }) (User, error) {
	var u User
	var admin int
	var created, activity string
	if err := row.Scan(&u.Name, &u.TenantKey, &u.Subject, &u.Username, &u.Slug, &u.Number, &admin, &created, &activity); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return User{}, ErrNotFound
		}
		return User{}, err
	}
	u.Admin = admin != 0
	u.CreatedAt = parseTime(created)
	u.LastActivity = parseTime(activity)
	return u, nil
}

// User returns the user with that hub name.
func (s *Store) User(ctx context.Context, name string) (User, error) {
	return scanUser(s.db.QueryRowContext(ctx, `SELECT `+userColumns+` FROM hub_users WHERE name = $1`, name))
}

// Users returns every user, ordered by name.
func (s *Store) Users(ctx context.Context) ([]User, error) {
	users, _, err := s.ListUsers(ctx, "", 0, 0)
	return users, err
}

// SetActivity records the user's last activity if it is later than the stored one.
func (s *Store) SetActivity(ctx context.Context, name string, t time.Time) error {
	v := formatTime(t)
	_, err := s.db.ExecContext(ctx, `UPDATE hub_users SET last_activity = $1 WHERE name = $2 AND last_activity < $1`, v, name)
	return err
}

// Session is a browser login.
type Session struct {
	ID        string // public identifier (a prefix of the hash), never the secret
	User      string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// CreateSession starts a session for user and returns the secret for the cookie.
func (s *Store) CreateSession(ctx context.Context, user string, maxAge time.Duration) (string, Session, error) {
	secret := NewSecret()
	now := s.now()
	sess := Session{ID: Hash(secret)[:16], User: user, CreatedAt: now, ExpiresAt: now.Add(maxAge)}
	_, err := s.db.ExecContext(ctx, `INSERT INTO hub_sessions (id_hash, user_name, created_at, expires_at) VALUES ($1, $2, $3, $4)`,
		Hash(secret), user, formatTime(now), formatTime(sess.ExpiresAt))
	if err != nil {
		return "", Session{}, err
	}
	return secret, sess, nil
}

// SessionBySecret returns the live session whose cookie secret is given.
func (s *Store) SessionBySecret(ctx context.Context, secret string) (Session, error) {
	if secret == "" {
		return Session{}, ErrNotFound
	}
	h := Hash(secret)
	var sess Session
	var created, expires string
	err := s.db.QueryRowContext(ctx, `SELECT user_name, created_at, expires_at FROM hub_sessions WHERE id_hash = $1 AND expires_at > $2`, h, formatTime(s.now())).
		Scan(&sess.User, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, ErrNotFound
	}
	if err != nil {
		return Session{}, err
	}
	sess.ID = h[:16]
	sess.CreatedAt, sess.ExpiresAt = parseTime(created), parseTime(expires)
	return sess, nil
}

// DeleteSession ends the session with that cookie secret and revokes the OAuth tokens the
// user's servers got through it.
func (s *Store) DeleteSession(ctx context.Context, secret string) error {
	h := Hash(secret)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM hub_tokens WHERE session_id = $1 AND kind = $2`, h[:16], TokenOAuth); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM hub_sessions WHERE id_hash = $1`, h); err != nil {
		return err
	}
	return tx.Commit()
}

// DeleteUserSessions ends every session of user and revokes its OAuth tokens.
func (s *Store) DeleteUserSessions(ctx context.Context, user string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM hub_tokens WHERE user_name = $1 AND kind = $2`, user, TokenOAuth); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM hub_sessions WHERE user_name = $1`, user); err != nil {
		return err
	}
	return tx.Commit()
}

// Token kinds.
const (
	TokenServer = "server" // a single-user server's JUPYTERHUB_API_TOKEN
	TokenOAuth  = "oauth"  // issued to a single-user server for a browser through the hub's OAuth
	TokenUser   = "user"   // created by the user on /hub/token
)

// Token is an API token's record (never its secret).
type Token struct {
	ID        string // public identifier (a prefix of the hash)
	User      string
	Kind      string
	ClientID  string
	SessionID string
	Note      string
	CreatedAt time.Time
	ExpiresAt time.Time // zero: no expiry
}

// CreateToken stores a new token and returns its secret.
func (s *Store) CreateToken(ctx context.Context, t Token, ttl time.Duration) (string, error) {
	secret := NewSecret()
	now := s.now()
	expires := ""
	if ttl > 0 {
		expires = formatTime(now.Add(ttl))
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO hub_tokens (hash, user_name, kind, client_id, session_id, note, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		Hash(secret), t.User, t.Kind, t.ClientID, t.SessionID, t.Note, formatTime(now), expires)
	if err != nil {
		return "", err
	}
	return secret, nil
}

// TokenBySecret returns the live token with that secret.
func (s *Store) TokenBySecret(ctx context.Context, secret string) (Token, error) {
	if secret == "" {
		return Token{}, ErrNotFound
	}
	h := Hash(secret)
	var t Token
	var created, expires string
	err := s.db.QueryRowContext(ctx, `SELECT user_name, kind, client_id, session_id, note, created_at, expires_at FROM hub_tokens
		WHERE hash = $1 AND (expires_at = '' OR expires_at > $2)`, h, formatTime(s.now())).
		Scan(&t.User, &t.Kind, &t.ClientID, &t.SessionID, &t.Note, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return Token{}, ErrNotFound
	}
	if err != nil {
		return Token{}, err
	}
	t.ID = h[:16]
	t.CreatedAt, t.ExpiresAt = parseTime(created), parseTime(expires)
	return t, nil
}

// Tokens lists a user's tokens of one kind.
func (s *Store) Tokens(ctx context.Context, user, kind string) ([]Token, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT hash, client_id, session_id, note, created_at, expires_at FROM hub_tokens
		WHERE user_name = $1 AND kind = $2 AND (expires_at = '' OR expires_at > $3) ORDER BY created_at`, user, kind, formatTime(s.now()))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Token
	for rows.Next() {
		t := Token{User: user, Kind: kind}
		var h, created, expires string
		if err := rows.Scan(&h, &t.ClientID, &t.SessionID, &t.Note, &created, &expires); err != nil {
			return nil, err
		}
		t.ID = h[:16]
		t.CreatedAt, t.ExpiresAt = parseTime(created), parseTime(expires)
		out = append(out, t)
	}
	return out, rows.Err()
}

// DeleteToken deletes the user's token with that public ID.
func (s *Store) DeleteToken(ctx context.Context, user, id string) error {
	if len(id) != 16 {
		return ErrNotFound
	}
	res, err := s.db.ExecContext(ctx, `DELETE FROM hub_tokens WHERE user_name = $1 AND substr(hash, 1, 16) = $2`, user, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// DeleteTokens deletes a user's tokens of one kind (all clients when clientID is empty).
func (s *Store) DeleteTokens(ctx context.Context, user, kind, clientID string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM hub_tokens WHERE user_name = $1 AND kind = $2 AND ($3 = '' OR client_id = $3)`, user, kind, clientID)
	return err
}

// Code is an authorization code the hub issued to a single-user server.
type Code struct {
	User        string
	ClientID    string
	RedirectURI string
	SessionID   string
}

// CreateCode stores a code valid for ttl and returns it.
func (s *Store) CreateCode(ctx context.Context, c Code, ttl time.Duration) (string, error) {
	secret := NewSecret()
	_, err := s.db.ExecContext(ctx, `INSERT INTO hub_oauth_codes (hash, user_name, client_id, redirect_uri, session_id, expires_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		Hash(secret), c.User, c.ClientID, c.RedirectURI, c.SessionID, formatTime(s.now().Add(ttl)))
	if err != nil {
		return "", err
	}
	return secret, nil
}

// ConsumeCode returns the live code and deletes it, so a code works once: of two requests
// racing with one code (even on two replicas), one deletes the row and the other finds none.
func (s *Store) ConsumeCode(ctx context.Context, code string) (Code, error) {
	var c Code
	var expires string
	err := s.db.QueryRowContext(ctx, `DELETE FROM hub_oauth_codes WHERE hash = $1 RETURNING user_name, client_id, redirect_uri, session_id, expires_at`, Hash(code)).
		Scan(&c.User, &c.ClientID, &c.RedirectURI, &c.SessionID, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return Code{}, ErrNotFound
	}
	if err != nil {
		return Code{}, err
	}
	if !parseTime(expires).After(s.now()) {
		return Code{}, ErrNotFound
	}
	return c, nil
}

// LoginState is what the hub remembers between sending a browser to a tenant and its return.
type LoginState struct {
	TenantKey string
	Verifier  string // PKCE code verifier
	Next      string
}

// SaveLoginState stores the state for ttl.
func (s *Store) SaveLoginState(ctx context.Context, state string, ls LoginState, ttl time.Duration) error {
	h := Hash(state)
	_, err := s.db.ExecContext(ctx, `INSERT INTO hub_login_states (hash, tenant_key, verifier, next_url, expires_at) VALUES ($1, $2, $3, $4, $5)`,
		h, ls.TenantKey, s.crypt.seal(ls.Verifier, "login-state:"+h), ls.Next, formatTime(s.now().Add(ttl)))
	// Expired states are swept on the way; a failure here only leaves garbage.
	s.db.ExecContext(ctx, `DELETE FROM hub_login_states WHERE expires_at < $1`, formatTime(s.now()))
	return err
}

// ConsumeLoginState returns the live state and deletes it, so a callback works once (as
// ConsumeCode, in one statement).
func (s *Store) ConsumeLoginState(ctx context.Context, state string) (LoginState, error) {
	h := Hash(state)
	var ls LoginState
	var verifier, expires string
	err := s.db.QueryRowContext(ctx, `DELETE FROM hub_login_states WHERE hash = $1 RETURNING tenant_key, verifier, next_url, expires_at`, h).
		Scan(&ls.TenantKey, &verifier, &ls.Next, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return LoginState{}, ErrNotFound
	}
	if err != nil {
		return LoginState{}, err
	}
	if !parseTime(expires).After(s.now()) {
		return LoginState{}, ErrNotFound
	}
	if ls.Verifier, err = s.crypt.open(verifier, "login-state:"+h); err != nil {
		return LoginState{}, err
	}
	return ls, nil
}

// TenantToken is a user's OAuth token at their tenant.
type TenantToken struct {
	AccessToken  string
	RefreshToken string
	TokenType    string
	Expiry       time.Time // zero: unknown
	// Version increases with every write; SwapTenantToken compares it.
	Version int64
}

// PutTenantToken stores the token got at login, replacing any earlier one (and moving its
// version on, so a refresh that read the earlier one cannot overwrite this).
func (s *Store) PutTenantToken(ctx context.Context, user string, t TenantToken) error {
	access, refresh := s.sealToken(user, t)
	_, err := s.db.ExecContext(ctx, `INSERT INTO hub_tenant_tokens (user_name, access_token, refresh_token, token_type, expires_at, version, updated_at)
		VALUES ($1, $2, $3, $4, $5, 1, $6)
		ON CONFLICT (user_name) DO UPDATE SET access_token = excluded.access_token, refresh_token = excluded.refresh_token,
			token_type = excluded.token_type, expires_at = excluded.expires_at, version = hub_tenant_tokens.version + 1, updated_at = excluded.updated_at`,
		user, access, refresh, t.TokenType, expiryText(t.Expiry), formatTime(s.now()))
	return err
}

// SwapTenantToken replaces the user's token only if its version is still t.Version, so two
// refreshes racing (in this process or another replica) cannot lose a rotated refresh token.
// It returns the stored token with its new version.
func (s *Store) SwapTenantToken(ctx context.Context, user string, t TenantToken) (TenantToken, error) {
	access, refresh := s.sealToken(user, t)
	res, err := s.db.ExecContext(ctx, `UPDATE hub_tenant_tokens SET access_token = $1, refresh_token = $2, token_type = $3, expires_at = $4, version = version + 1, updated_at = $5
		WHERE user_name = $6 AND version = $7`,
		access, refresh, t.TokenType, expiryText(t.Expiry), formatTime(s.now()), user, t.Version)
	if err != nil {
		return TenantToken{}, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return TenantToken{}, ErrConflict
	}
	t.Version++
	return t, nil
}

// GetTenantToken returns the user's tenant token.
func (s *Store) GetTenantToken(ctx context.Context, user string) (TenantToken, error) {
	var t TenantToken
	var access, refresh, expires string
	err := s.db.QueryRowContext(ctx, `SELECT access_token, refresh_token, token_type, expires_at, version FROM hub_tenant_tokens WHERE user_name = $1`, user).
		Scan(&access, &refresh, &t.TokenType, &expires, &t.Version)
	if errors.Is(err, sql.ErrNoRows) {
		return TenantToken{}, ErrNotFound
	}
	if err != nil {
		return TenantToken{}, err
	}
	if t.AccessToken, err = s.crypt.open(access, "tenant-token:access:"+user); err != nil {
		return TenantToken{}, err
	}
	if t.RefreshToken, err = s.crypt.open(refresh, "tenant-token:refresh:"+user); err != nil {
		return TenantToken{}, err
	}
	if expires != "" {
		t.Expiry = parseTime(expires)
	}
	return t, nil
}

func (s *Store) sealToken(user string, t TenantToken) (access, refresh string) {
	return s.crypt.seal(t.AccessToken, "tenant-token:access:"+user), s.crypt.seal(t.RefreshToken, "tenant-token:refresh:"+user)
}

func expiryText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return formatTime(t)
}
