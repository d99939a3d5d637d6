package oauthserver

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ohtkhub/ohtkhub/internal/djangohash"
	"github.com/ohtkhub/ohtkhub/internal/ohtkdb"
)

// Client types and grant types as DOT spells them in oauth2_provider_application.
const (
	ClientConfidential = "confidential"
	ClientPublic       = "public"

	GrantAuthorizationCode = "authorization-code"
	GrantPassword          = "password"
	GrantClientCredentials = "client-credentials"
)

// Application is an OAuth client registration to create with CreateApplication.
type Application struct {
	Name string
	// ClientType is ClientConfidential (the default) or ClientPublic.
	ClientType string
	// GrantType is GrantAuthorizationCode (the default), GrantPassword or GrantClientCredentials.
	GrantType string
	// RedirectURIs are compared exactly; required for GrantAuthorizationCode.
	RedirectURIs      []string
	SkipAuthorization bool
	// ClientID and ClientSecret are generated when empty. Public clients get no secret.
	ClientID     string
	ClientSecret string
	// UserID is the owner (oauth2_provider_application.user_id); 0 for none. Tokens of the
	// client_credentials grant act as this user.
	UserID int64
}

// CreateApplication registers app in the tenant database db and returns its client id and
// its secret in plain text; only a Django hash of the secret is stored (hash_client_secret = 1).
// A client id that already exists gives an error wrapping ohtkdb.ErrAlreadyExists.
func CreateApplication(ctx context.Context, db *sql.DB, app Application) (clientID, clientSecret string, err error) {
	if app.ClientType == "" {
		app.ClientType = ClientConfidential
	}
	if app.GrantType == "" {
		app.GrantType = GrantAuthorizationCode
	}
	if app.ClientType != ClientConfidential && app.ClientType != ClientPublic {
		return "", "", fmt.Errorf("oauthserver: client type %q: want %q or %q", app.ClientType, ClientConfidential, ClientPublic)
	}
	switch app.GrantType {
	case GrantAuthorizationCode, GrantPassword:
	case GrantClientCredentials:
		if app.ClientType == ClientPublic {
			return "", "", errors.New("oauthserver: the client-credentials grant needs a confidential client")
		}
	default:
		return "", "", fmt.Errorf("oauthserver: grant type %q: want %q, %q or %q", app.GrantType, GrantAuthorizationCode, GrantPassword, GrantClientCredentials)
	}
	for _, u := range app.RedirectURIs {
		if err := checkRedirectURI(u); err != nil {
			return "", "", err
		}
	}
	if app.GrantType == GrantAuthorizationCode && len(app.RedirectURIs) == 0 {
		return "", "", errors.New("oauthserver: the authorization-code grant needs a redirect URI")
	}
	clientID = app.ClientID
	if clientID == "" {
		clientID = randomString(40)
	}
	clientSecret = app.ClientSecret
	if clientSecret == "" && app.ClientType == ClientConfidential {
		clientSecret = randomString(64)
	}
	stored := ""
	if clientSecret != "" {
		stored = djangohash.Make(clientSecret, SecretIterations)
	}
	var owner any
	if app.UserID != 0 {
		owner = app.UserID
	}
	now := ohtkdb.FormatTime(time.Now())
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return "", "", err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM oauth2_provider_application WHERE client_id = $1`, clientID).Scan(&n); err != nil {
		return "", "", fmt.Errorf("oauthserver: %w", err)
	}
	if n > 0 {
		return "", "", fmt.Errorf("oauthserver: client id %q: %w", clientID, ohtkdb.ErrAlreadyExists)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO oauth2_provider_application
		(client_id, user_id, redirect_uris, post_logout_redirect_uris, client_type, authorization_grant_type,
		 client_secret, hash_client_secret, name, skip_authorization, created, updated, algorithm, allowed_origins)
		VALUES ($1, $2, $3, '', $4, $5, $6, 1, $7, $8, $9, $9, '', '')`,
		clientID, owner, strings.Join(app.RedirectURIs, " "), app.ClientType, app.GrantType,
		stored, app.Name, app.SkipAuthorization, now)
	if err != nil {
		return "", "", fmt.Errorf("oauthserver: create application: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return "", "", fmt.Errorf("oauthserver: %w", err)
	}
	return clientID, clientSecret, nil
}

// SetRedirectURIs replaces the redirect URIs of an existing application, as editing it in
// Django's admin does; for example when a hub moves to another address.
func SetRedirectURIs(ctx context.Context, db *sql.DB, clientID string, uris []string) error {
	for _, u := range uris {
		if err := checkRedirectURI(u); err != nil {
			return fmt.Errorf("oauthserver: redirect URI %q: %w", u, err)
		}
	}
	res, err := db.ExecContext(ctx, `UPDATE oauth2_provider_application SET redirect_uris = $1, updated = $2 WHERE client_id = $3`,
		strings.Join(uris, " "), ohtkdb.FormatTime(time.Now()), clientID)
	if err != nil {
		return fmt.Errorf("oauthserver: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("oauthserver: client id %q: %w", clientID, ohtkdb.ErrNotFound)
	}
	return nil
}

// SetClientSecret gives an existing application a new secret, stored as a Django hash as
// CreateApplication stores it; for example when the hub's copy of the old one was lost.
func SetClientSecret(ctx context.Context, db *sql.DB, clientID, secret string) error {
	res, err := db.ExecContext(ctx, `UPDATE oauth2_provider_application SET client_secret = $1, hash_client_secret = 1, updated = $2 WHERE client_id = $3`,
		djangohash.Make(secret, SecretIterations), ohtkdb.FormatTime(time.Now()), clientID)
	if err != nil {
		return fmt.Errorf("oauthserver: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("oauthserver: client id %q: %w", clientID, ohtkdb.ErrNotFound)
	}
	return nil
}

// checkRedirectURI accepts absolute http(s) URIs without a fragment (RFC 6749 section 3.1.2).
func checkRedirectURI(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" || strings.ContainsAny(raw, " \t\n") {
		return fmt.Errorf("oauthserver: redirect URI %q: want an absolute http(s) URI without fragment or spaces", raw)
	}
	return nil
}

// application is one row of oauth2_provider_application.
type application struct {
	ID                int64
	ClientID          string
	UserID            sql.NullInt64
	RedirectURIs      []string
	ClientType        string
	GrantType         string
	secret            string
	hashSecret        bool
	Name              string
	SkipAuthorization bool
}

var errNoApplication = errors.New("oauthserver: no such application")

func loadApplication(ctx context.Context, db *sql.DB, clientID string) (*application, error) {
	var a application
	var uris string
	err := db.QueryRowContext(ctx, `SELECT id, client_id, user_id, redirect_uris, client_type, authorization_grant_type,
		client_secret, hash_client_secret, name, skip_authorization FROM oauth2_provider_application WHERE client_id = $1`, clientID).
		Scan(&a.ID, &a.ClientID, &a.UserID, &uris, &a.ClientType, &a.GrantType, &a.secret, &a.hashSecret, &a.Name, &a.SkipAuthorization)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNoApplication
	}
	if err != nil {
		return nil, fmt.Errorf("oauthserver: application: %w", err)
	}
	a.RedirectURIs = strings.Fields(uris)
	return &a, nil
}

// checkSecret compares secret with the stored one: a Django hash when hash_client_secret is
// set (DOT's default), else the plain text, in constant time.
func (a *application) checkSecret(secret string) bool {
	if secret == "" || a.secret == "" {
		return false
	}
	if !a.hashSecret {
		return subtle.ConstantTimeCompare([]byte(secret), []byte(a.secret)) == 1
	}
	ok, err := djangohash.Check(secret, a.secret)
	return err == nil && ok
}

// allowsGrant reports whether the client may use an RFC 6749 grant_type, as DOT's
// Application.allows_grant_type does: refresh_token goes with the code and password grants.
func (a *application) allowsGrant(grantType string) bool {
	switch grantType {
	case "authorization_code":
		return a.GrantType == GrantAuthorizationCode
	case "password":
		return a.GrantType == GrantPassword
	case "client_credentials":
		return a.GrantType == GrantClientCredentials
	case "refresh_token":
		return a.GrantType == GrantAuthorizationCode || a.GrantType == GrantPassword
	}
	return false
}

// redirectURIAllowed reports whether uri is exactly one of the registered redirect URIs.
func (a *application) redirectURIAllowed(uri string) bool {
	return slices.Contains(a.RedirectURIs, uri)
}

// clientCredentials extracts client credentials from HTTP Basic (each part form-urlencoded,
// RFC 6749 section 2.3.1) or from the body. form must already be parsed.
func clientCredentials(r *http.Request) (id, secret string, basic bool, err *oauthError) {
	h := r.Header.Get("Authorization")
	if scheme, cred, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Basic") {
		raw, derr := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
		if derr != nil {
			return "", "", true, errInvalidClient()
		}
		u, p, ok := strings.Cut(string(raw), ":")
		if !ok {
			return "", "", true, errInvalidClient()
		}
		uid, e1 := url.QueryUnescape(u)
		pw, e2 := url.QueryUnescape(p)
		if e1 != nil || e2 != nil {
			return "", "", true, errInvalidClient()
		}
		if r.PostForm.Get("client_secret") != "" {
			return "", "", true, errInvalidRequest("Use one client authentication method only.")
		}
		return uid, pw, true, nil
	}
	return r.PostForm.Get("client_id"), r.PostForm.Get("client_secret"), false, nil
}

// authenticateClient identifies the client of a token, revocation or introspection request.
// Confidential clients must prove their secret; public clients only name themselves
// (DOT's authenticate_client_id), unless requireConfidential is set.
func authenticateClient(ctx context.Context, r *http.Request, db *sql.DB, requireConfidential bool) (*application, *oauthError) {
	id, secret, _, oerr := clientCredentials(r)
	if oerr != nil {
		return nil, oerr
	}
	if id == "" {
		return nil, errInvalidClient()
	}
	app, err := loadApplication(ctx, db, id)
	if errors.Is(err, errNoApplication) {
		return nil, errInvalidClient()
	}
	if err != nil {
		return nil, &oauthError{"server_error", "The server could not read the client."}
	}
	if app.ClientType == ClientPublic {
		if requireConfidential {
			return nil, errInvalidClient()
		}
		return app, nil
	}
	if !app.checkSecret(secret) {
		return nil, errInvalidClient()
	}
	return app, nil
}
