package spawner

import (
	"context"
	"time"
)

// Lister is implemented by spawners whose servers outlive the hub process (docker, kubernetes).
// At start the hub calls List once, before it accepts requests, to reconcile its records with
// what actually runs:
//
//   - a Running entry for a user the hub records as running is adopted: the hub keeps the
//     handle, marks the server running and proxies to Handle.URL without restarting it;
//   - a Running entry the hub has no record of is stopped with Stop;
//   - a user the hub records as running but who has no Running entry is marked stopped.
//
// List itself removes the hub's servers that are no longer running (exited, dead), keeping
// the users' data.
type Lister interface {
	List(ctx context.Context) ([]Running, error)
}

// Running is a server found running by Lister.List.
type Running struct {
	// User is the hub user name the server was started for.
	User string
	// Handle is what Start returned for it.
	Handle Handle
	// Started is when the server's process started.
	Started time.Time
}
