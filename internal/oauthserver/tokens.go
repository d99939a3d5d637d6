package oauthserver

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ohtkhub/ohtkhub/internal/djangohash"
	"github.com/ohtkhub/ohtkhub/internal/ohtkdb"
)

// checksum is DOT's token_checksum: the sha256 hex digest of the token.
func checksum(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// newUUID returns a random (version 4) UUID for refresh token families, as DOT uses.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// user is the part of accounts_user the provider needs.
type user struct {
	ID          int64
	Username    string
	password    string
	Email       string
	FirstName   string
	LastName    string
	IsSuperuser bool
	IsActive    bool
}

var errNoUser = errors.New("oauthserver: no such user")

const userColumns = `id, username, password, email, first_name, last_name, is_superuser, is_active`

func scanUser(row *sql.Row) (*user, error) {
	var u user
	err := row.Scan(&u.ID, &u.Username, &u.password, &u.Email, &u.FirstName, &u.LastName, &u.IsSuperuser, &u.IsActive)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNoUser
	}
	if err != nil {
		return nil, fmt.Errorf("oauthserver: user: %w", err)
	}
	return &u, nil
}

func userByID(ctx context.Context, db *sql.DB, id int64) (*user, error) {
	return scanUser(db.QueryRowContext(ctx, `SELECT `+userColumns+` FROM accounts_user WHERE id = $1`, id))
}

// standIn returns the tenant's stand-in hash: it is checked when a username does not exist,
// so that a wrong username costs as much time as a wrong password and does not reveal which
// usernames exist.
func (s *Server) standIn(ctx context.Context, db *sql.DB) *djangohash.StandIn {
	return s.standIns.For(ctx, db, s.log)
}

// checkPassword returns the active user with that username and password, or errNoUser.
func (s *Server) checkPassword(ctx context.Context, db *sql.DB, username, password string) (*user, error) {
	u, err := scanUser(db.QueryRowContext(ctx, `SELECT `+userColumns+` FROM accounts_user WHERE username = $1`, username))
	standIn := s.standIn(ctx, db)
	if errors.Is(err, errNoUser) {
		standIn.Check(password)
		return nil, errNoUser
	}
	if err != nil {
		return nil, err
	}
	if !standIn.CheckUser(password, u.password) || !u.IsActive {
		return nil, errNoUser
	}
	return u, nil
}

// issued is what the token endpoint returns.
type issued struct {
	AccessToken  string `json:"access_token"`
	ExpiresIn    int64  `json:"expires_in"`
	TokenType    string `json:"token_type"`
	Scope        string `json:"scope"`
	RefreshToken string `json:"refresh_token,omitempty"`
}

// tokenRequest describes the tokens to write.
type tokenRequest struct {
	app    *application
	userID sql.NullInt64
	scope  string
	// refresh asks for a refresh token in family (a new family when empty).
	refresh bool
	family  string
	// source is the refresh token the access token is issued from, if any.
	source sql.NullInt64
}

// issueTokens writes an access token (and a refresh token) to DOT's tables within tx.
func (s *Server) issueTokens(ctx context.Context, tx *sql.Tx, req tokenRequest) (issued, string, error) {
	now := s.now()
	access := randomString(40)
	ts := ohtkdb.FormatTime(now)
	res, err := tx.ExecContext(ctx, `INSERT INTO oauth2_provider_accesstoken
		(user_id, source_refresh_token_id, token, token_checksum, application_id, expires, scope, created, updated)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)`,
		req.userID, req.source, access, checksum(access), req.app.ID,
		ohtkdb.FormatTime(now.Add(s.opts.AccessTokenLifetime)), req.scope, ts)
	if err != nil {
		return issued{}, "", fmt.Errorf("oauthserver: access token: %w", err)
	}
	accessID, err := res.LastInsertId()
	if err != nil {
		return issued{}, "", err
	}
	out := issued{AccessToken: access, ExpiresIn: int64(s.opts.AccessTokenLifetime / time.Second), TokenType: "Bearer", Scope: req.scope}
	family := req.family
	if req.refresh && req.userID.Valid {
		if family == "" {
			family = newUUID()
		}
		refresh := randomString(40)
		_, err := tx.ExecContext(ctx, `INSERT INTO oauth2_provider_refreshtoken
			(user_id, token, application_id, access_token_id, token_family, created, updated)
			VALUES ($1, $2, $3, $4, $5, $6, $6)`, req.userID, refresh, req.app.ID, accessID, family, ts)
		if err != nil {
			return issued{}, "", fmt.Errorf("oauthserver: refresh token: %w", err)
		}
		out.RefreshToken = refresh
	}
	return out, family, nil
}

// accessToken is a row of oauth2_provider_accesstoken with its client.
type accessToken struct {
	ID       int64
	UserID   sql.NullInt64
	ClientID string
	AppID    int64
	Expires  time.Time
	Scope    string
}

var errNoToken = errors.New("oauthserver: no such token")

// lookupAccessToken finds a token by its checksum, as DOT 3 does. It does not check expiry.
func lookupAccessToken(ctx context.Context, db *sql.DB, token string) (*accessToken, error) {
	if token == "" {
		return nil, errNoToken
	}
	var t accessToken
	var expires string
	var clientID sql.NullString
	var appID sql.NullInt64
	err := db.QueryRowContext(ctx, `SELECT t.id, t.user_id, a.client_id, t.application_id, t.expires, t.scope
		FROM oauth2_provider_accesstoken t LEFT JOIN oauth2_provider_application a ON a.id = t.application_id
		WHERE t.token_checksum = $1`, checksum(token)).Scan(&t.ID, &t.UserID, &clientID, &appID, &expires, &t.Scope)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNoToken
	}
	if err != nil {
		return nil, fmt.Errorf("oauthserver: access token: %w", err)
	}
	t.ClientID, t.AppID = clientID.String, appID.Int64
	if t.Expires, err = ohtkdb.ParseTime(expires); err != nil {
		return nil, fmt.Errorf("oauthserver: access token %d: bad expiry %q", t.ID, expires)
	}
	return &t, nil
}

// activeToken returns the token and its user when the token exists, has not expired and
// belongs to an active user. Client-credentials tokens (no user) are returned with a nil user.
func (s *Server) activeToken(ctx context.Context, db *sql.DB, token string) (*accessToken, *user, error) {
	t, err := lookupAccessToken(ctx, db, token)
	if err != nil {
		return nil, nil, err
	}
	if !s.now().Before(t.Expires) {
		return nil, nil, errNoToken
	}
	if !t.UserID.Valid {
		return t, nil, nil
	}
	u, err := userByID(ctx, db, t.UserID.Int64)
	if errors.Is(err, errNoUser) {
		return nil, nil, errNoToken
	}
	if err != nil {
		return nil, nil, err
	}
	if !u.IsActive {
		return nil, nil, errNoToken
	}
	return t, u, nil
}

// deleteAccessToken removes an access token, detaching the refresh token that points at it
// first (DOT's foreign key is ON DELETE SET NULL; the SQLite schema leaves that to us).
func deleteAccessToken(ctx context.Context, tx *sql.Tx, id int64) error {
	if _, err := tx.ExecContext(ctx, `UPDATE oauth2_provider_refreshtoken SET access_token_id = NULL WHERE access_token_id = $1`, id); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `DELETE FROM oauth2_provider_accesstoken WHERE id = $1`, id)
	return err
}

// revokeFamily revokes every live refresh token of a token family and deletes their access
// tokens. It answers the reuse of a rotated-out refresh token or of an exchanged code: one
// of the two parties holding the family is an attacker, so neither keeps access.
func (s *Server) revokeFamily(ctx context.Context, tx *sql.Tx, family string) error {
	rows, err := tx.QueryContext(ctx, `SELECT id, access_token_id FROM oauth2_provider_refreshtoken
		WHERE token_family = $1 AND revoked IS NULL`, family)
	if err != nil {
		return err
	}
	type live struct {
		id     int64
		access sql.NullInt64
	}
	var all []live
	for rows.Next() {
		var l live
		if err := rows.Scan(&l.id, &l.access); err != nil {
			rows.Close()
			return err
		}
		all = append(all, l)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	now := ohtkdb.FormatTime(s.now())
	for _, l := range all {
		if _, err := tx.ExecContext(ctx, `UPDATE oauth2_provider_refreshtoken SET revoked = $1, updated = $1, access_token_id = NULL WHERE id = $2`, now, l.id); err != nil {
			return err
		}
		if l.access.Valid {
			if _, err := tx.ExecContext(ctx, `DELETE FROM oauth2_provider_accesstoken WHERE id = $1`, l.access.Int64); err != nil {
				return err
			}
		}
	}
	return nil
}

// Scopes are DOT's default SCOPES plus "introspection", which lets a resource server's token
// call /o/introspect/ (DOT's convention).
var knownScopes = []string{"read", "write", "introspection"}

// defaultScope is granted when a client asks for none (DOT's DEFAULT_SCOPES = __all__ minus
// introspection, which must be asked for).
const defaultScope = "read write"

// normalizeScope checks a requested space-separated scope and returns it deduplicated in
// canonical order, or defaultScope when empty.
func normalizeScope(requested string) (string, bool) {
	fields := strings.Fields(requested)
	if len(fields) == 0 {
		return defaultScope, true
	}
	set := map[string]bool{}
	for _, f := range fields {
		ok := false
		for _, k := range knownScopes {
			if f == k {
				ok = true
			}
		}
		if !ok {
			return "", false
		}
		set[f] = true
	}
	var out []string
	for _, k := range knownScopes {
		if set[k] {
			out = append(out, k)
		}
	}
	return strings.Join(out, " "), true
}

// scopeSubset reports whether every scope of sub is in super.
func scopeSubset(sub, super string) bool {
	have := map[string]bool{}
	for _, f := range strings.Fields(super) {
		have[f] = true
	}
	for _, f := range strings.Fields(sub) {
		if !have[f] {
			return false
		}
	}
	return true
}
