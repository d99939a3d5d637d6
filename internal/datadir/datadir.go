// Package datadir keeps two ohtkhub processes from serving one data directory: the second
// would overwrite the first one's files (demo.json, the OAuth client's redirect URI, the
// hub's view of running servers) while the first goes on using them.
//
// A serving command (api, hub, demo) takes the directory's lock for its whole life; admin
// commands do not, since they write through SQLite, which lets them share the databases
// with a running server.
package datadir

import (
	"errors"
	"os"
	"path/filepath"
)

// LockFile is the name of the lock file in a locked directory. It holds the process id of
// the holder; the lock itself is an flock(2) on it, released when the process ends, so a
// crash leaves nothing to clean up.
const LockFile = "ohtkhub.lock"

// ErrInUse is returned when another process holds a directory's lock.
var ErrInUse = errors.New("in use by another ohtkhub")

// Lock is a held lock on a data directory.
type Lock struct {
	f *os.File
}

// Acquire creates dir if needed and takes its lock. If another process holds it, the
// error wraps ErrInUse and reads "<dir> is in use by another ohtkhub (pid N)".
func Acquire(dir string) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, LockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := lock(f, dir); err != nil {
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
