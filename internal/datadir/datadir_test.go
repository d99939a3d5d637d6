package datadir

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestMain lets the test binary hold a lock as a separate process: with
// OHTKHUB_DATADIR_HOLD set it locks that directory, says so and waits for stdin to close.
func TestMain(m *testing.M) {
	if dir := os.Getenv("OHTKHUB_DATADIR_HOLD"); dir != "" {
		l, err := Acquire(dir)
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		fmt.Println("locked")
		bufio.NewReader(os.Stdin).ReadString('\n')
		l.Release()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestSecondProcessIsRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "OHTKHUB_DATADIR_HOLD="+dir)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "locked\n" {
		t.Fatalf("holder: %q %v", line, err)
	}

	_, err := Acquire(dir)
	want := fmt.Sprintf("%s is in use by another ohtkhub (pid %d)", dir, cmd.Process.Pid)
	if !errors.Is(err, ErrInUse) || err.Error() != want {
		t.Fatalf("second lock: %v, want %q", err, want)
	}

	// Once the holder has gone, the directory can be locked again; the stale file is no
	// obstacle.
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("holder: %v", err)
	}
	l, err := Acquire(dir)
	if err != nil {
		t.Fatalf("after the holder ended: %v", err)
	}
	defer l.Release()
	body, _ := os.ReadFile(filepath.Join(dir, LockFile))
	if string(body) != fmt.Sprintf("%d\n", os.Getpid()) {
		t.Errorf("lock file holds %q", body)
	}
}

// TestSameProcessTwice checks that two opens in one process exclude each other too (flock
// locks belong to the open file), which the command tests rely on.
func TestSameProcessTwice(t *testing.T) {
	dir := t.TempDir()
	l, err := Acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Acquire(dir); !errors.Is(err, ErrInUse) {
		t.Fatalf("second Acquire: %v", err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	l2, err := Acquire(dir)
	if err != nil {
		t.Fatalf("after Release: %v", err)
	}
	l2.Release()
}
