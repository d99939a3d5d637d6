package local

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// LockDir holds a lock file per uid that a hub's isolated server runs under, shared by every
// hub of the machine: two hubs with overlapping uid ranges would give two different users one
// uid, each able to read the other's files and /proc/<pid>/environ (tokens).
const LockDir = "/run/ohtkhub"

// lockUID takes the exclusive lock of uid, held until the returned file is closed. It fails
// if another hub (or another server of this one) holds it.
func lockUID(dir string, uid int) (*os.File, error) {
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
	path := filepath.Join(dir, "uid-"+strconv.Itoa(uid)+".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("local: lock uid %d: %w", uid, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			holder := "unknown pid"
			if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) != "" {
				holder = "pid " + strings.TrimSpace(string(b))
			}
			return nil, fmt.Errorf("local: uid %d is in use by another ohtkhub hub (%s); give each hub its own uid_base, with ranges that do not overlap", uid, holder)
		}
		return nil, fmt.Errorf("local: lock uid %d: %w", uid, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}
