//go:build unix

package datadir

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
)

func lock(f *os.File, dir string) error {
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("lock %s: %w", f.Name(), err)
		}
		body, _ := io.ReadAll(io.LimitReader(f, 32))
		if pid, perr := strconv.Atoi(strings.TrimSpace(string(body))); perr == nil {
			return fmt.Errorf("%s is %w (pid %d)", dir, ErrInUse, pid)
		}
		return fmt.Errorf("%s is %w", dir, ErrInUse)
	}
	// The holder's pid, for the message the next process prints.
	if err := f.Truncate(0); err != nil {
		return fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	if _, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
		return fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return nil
}
