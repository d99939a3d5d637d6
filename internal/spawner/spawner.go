// Package spawner defines how the hub starts users' single-user servers (the Spawner
// interface, implemented by spawner/local and later docker and kubernetes) and tracks them
// (Manager): progress, readiness, timeouts, failures and servers that die.
package spawner

import (
	"context"
	"errors"
)

// Spec is everything a spawner needs to start one user's server.
type Spec struct {
	// User is the hub user name; Slug its safe resource name.
	User string
	Slug string
	// Number is the user's number in the hub's store: unique and never reused. The local
	// spawner derives the uid of the user's server from it.
	Number int64
	// ServicePrefix is the server's URL path, e.g. /user/alice/. The spawner adds
	// JUPYTERHUB_SERVICE_URL once it knows the address it chose.
	ServicePrefix string
	// Env is the JupyterHub and OHTK environment.
	Env map[string]string
}

// Handle identifies a started server.
type Handle struct {
	// ID is the spawner's identifier (process id, container id, pod name).
	ID string
	// URL is where the hub reaches the server, without path: http://127.0.0.1:41234.
	URL string
}

// Spawner starts and stops servers. Implementations must allow concurrent calls for different
// users: one user's slow start never blocks another's.
type Spawner interface {
	// Start starts the server and returns once it is launched (not necessarily answering).
	Start(ctx context.Context, spec Spec) (Handle, error)
	// Stop stops the server; stopping a stopped server is not an error.
	Stop(ctx context.Context, h Handle) error
	// Poll returns nil while the server runs and an error wrapping ErrStopped, with the
	// reason, once it has stopped.
	Poll(ctx context.Context, h Handle) error
}

// ErrStopped is wrapped by Poll's error for a server that is no longer running.
var ErrStopped = errors.New("server stopped")
