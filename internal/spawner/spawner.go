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

// Verifier is implemented by spawners whose servers listen where another process of the
// machine could listen too (a TCP port of 127.0.0.1): a user's code that binds a server's port
// before it, or after it died, would otherwise receive that user's browser on the hub's
// origin. The Manager calls Verify before it declares a server ready and the proxy before
// every new connection it opens to a server; an error means the server must not be used.
type Verifier interface {
	Verify(ctx context.Context, h Handle) error
}

// Watcher is implemented by spawners that learn at once when a server ends (a child
// process's exit). The Manager stops routing to the server as soon as Exited's channel is
// closed, without waiting for its next poll.
type Watcher interface {
	Exited(h Handle) <-chan struct{}
}

// ErrImpostor is wrapped by Verify's error when the address of a server is held by a process
// that is not the server.
var ErrImpostor = errors.New("another process listens at the server's address")
