package local

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/ohtkhub/ohtkhub/internal/datadir"
)

// LockDir holds a lock file per uid that a hub's isolated server runs under, shared by every
// hub of the machine: two hubs with overlapping uid ranges would give two different users one
// uid, each able to read the other's files and /proc/<pid>/environ (tokens).
const LockDir = "/run/ohtkhub"

// lockUID takes the exclusive lock of uid, held until it is released. It fails if another hub
// (or another server of this one) holds it.
func lockUID(dir string, uid int) (*datadir.Lock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("local: the uid lock directory: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return nil, fmt.Errorf("local: the uid lock directory: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok || int(st.Uid) != os.Geteuid() {
		return nil, fmt.Errorf("local: the uid lock directory %s is not a directory of the hub's user", dir)
	}
	if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return nil, fmt.Errorf("local: the uid lock directory: %w", err)
		}
	}
	l, err := datadir.AcquireFile(filepath.Join(dir, "uid-"+strconv.Itoa(uid)+".lock"), "uid "+strconv.Itoa(uid))
	var inUse *datadir.InUseError
	switch {
	case errors.As(err, &inUse):
		holder := "unknown pid"
		if inUse.PID != 0 {
			holder = "pid " + strconv.Itoa(inUse.PID)
		}
		return nil, fmt.Errorf("local: uid %d is in use by another ohtkhub hub (%s); give each hub its own uid_base, with ranges that do not overlap", uid, holder)
	case err != nil:
		return nil, fmt.Errorf("local: lock uid %d: %w", uid, err)
	}
	return l, nil
}
