// Package datadir keeps two ohtkhub processes from serving one data directory: the second
// would overwrite the first one's files (demo.json, the OAuth client's redirect URI, the
// hub's view of running servers) while the first goes on using them.
//
// A serving command (api, hub, demo) takes the directory's lock for its whole life; admin
// commands do not, since they write through SQLite, which lets them share the databases
// with a running server.
//
// AcquireFile locks any file the same way (the local spawner locks a file per uid its servers
// run under, so that two hubs never hand one uid to two users).
package datadir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// LockFile is the name of the lock file in a locked directory. It holds the process id of
// the holder; the lock itself is an flock(2) on it, released when the process ends, so a
// crash leaves nothing to clean up.
const LockFile = "ohtkhub.lock"

// ErrInUse is wrapped by the error of a lock another process holds.
var ErrInUse = errors.New("in use by another ohtkhub")

// InUseError is the error of a lock another process holds: "<Name> is in use by another
// ohtkhub (pid N)". It wraps ErrInUse.
type InUseError struct {
	Name string
	PID  int // 0 when the holder did not write it
}

func (e *InUseError) Error() string {
	if e.PID == 0 {
		return fmt.Sprintf("%s is %v", e.Name, ErrInUse)
	}
	return fmt.Sprintf("%s is %v (pid %d)", e.Name, ErrInUse, e.PID)
}

func (e *InUseError) Unwrap() error { return ErrInUse }

// Lock is a held lock on a data directory.
type Lock struct {
	f *os.File
}

// Acquire creates dir if needed and takes its lock. If another process holds it, the
// error is an *InUseError reading "<dir> is in use by another ohtkhub (pid N)".
func Acquire(dir string) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return AcquireFile(filepath.Join(dir, LockFile), dir)
}

// AcquireFile takes the lock of the file path, creating it (never through a symbolic link).
// name is what an *InUseError calls the locked thing.
func AcquireFile(path, name string) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	if err := lock(f, name); err != nil {
		f.Close()
		return nil, err
	}
	return &Lock{f: f}, nil
}

// Release gives the lock up. The file stays: removing it would let a third process lock a
// new file while a second still waits on the old one.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
