package hubapi

import (
	"errors"
	"net/http"

	"github.com/ohtkhub/ohtkhub/internal/store"
)

// Admins decides who administers whom. A tenant's admin rules (admin_users,
// admin_if_superuser, recorded on the user at login) make a tenant admin, who manages the users
// of that tenant only; the hub's global_admin_users manage every tenant's users and read the
// hub's metrics.
type Admins struct {
	global func(name string) bool
}

// NewAdmins returns the policy whose global admins are the hub user names global reports
// (config.Hub.GlobalAdmin, which also lets them sign in).
func NewAdmins(global func(name string) bool) Admins { return Admins{global: global} }

// Global reports whether u administers every tenant.
func (a Admins) Global(u store.User) bool { return a.global(u.Name) }

// Any reports whether u administers anyone: their tenant's users, or everyone.
func (a Admins) Any(u store.User) bool { return u.Admin || a.Global(u) }

// Manages reports whether admin may list, read, start and stop target.
func (a Admins) Manages(admin, target store.User) bool {
	return a.Global(admin) || admin.Admin && admin.TenantKey == target.TenantKey
}

// Scope is the tenant whose users u may see, "" for every tenant; ok is false for non-admins.
func (a Admins) Scope(u store.User) (tenant string, ok bool) {
	switch {
	case a.Global(u):
		return "", true
	case u.Admin:
		return u.TenantKey, true
	}
	return "", false
}

// ErrNotGlobalAdmin is returned by GlobalAdmin for a caller who is signed in but does not
// administer every tenant.
var ErrNotGlobalAdmin = errors.New("hubapi: not a global admin")

// GlobalAdmin authenticates r by session cookie or by the user's own API token
// (Authorization: token …) and returns the user when they are a global admin. A request
// without valid credentials gives ErrNoCredentials.
func (a *API) GlobalAdmin(r *http.Request) (store.User, error) {
	c, err := a.identify(r)
	if err != nil {
		return store.User{}, ErrNoCredentials
	}
	if (c.kind != kindSession && c.kind != store.TokenUser) || !a.admins.Global(c.user) {
		return store.User{}, ErrNotGlobalAdmin
	}
	return c.user, nil
}

// ErrNoCredentials is returned by GlobalAdmin for a request without a valid session or token.
var ErrNoCredentials = errors.New("hubapi: missing or invalid credentials")
