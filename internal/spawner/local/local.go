// Package local runs each user's single-user server as a child process of the hub, in the
// user's own directory under the data directory.
//
// When the hub runs as root, each server runs under a uid and gid of its own (the configured
// base plus the user's number in the hub's store; no /etc/passwd entry), with no supplementary
// groups, in a directory only that uid may enter: users cannot read each other's files, each
// other's /proc/<pid>/environ (their tokens) or the hub's database. Without root, every server
// runs as the hub's user and nothing separates them: development only.
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ohtkhub/ohtkhub/internal/config"
	"github.com/ohtkhub/ohtkhub/internal/datadir"
	"github.com/ohtkhub/ohtkhub/internal/spawner"
)

var _ spawner.Spawner = (*Local)(nil)

// Local starts servers as processes.
type Local struct {
	cfg     config.LocalSpawner
	extra   map[string]string
	dataDir string
	log     *slog.Logger
	// isolate runs servers under their own uids; uidBase plus a user's number is the uid.
	isolate bool
	uidBase int64
	// lockDir holds the uid locks (LockDir).
	lockDir string

	mu    sync.Mutex
	procs map[string]*proc
}

type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	tail *tailBuffer
	// uid is the uid the server's sockets belong to.
	uid int

	mu sync.Mutex
	// sockets are the inodes of listening sockets found to be the server's (Verify).
	sockets map[uint64]bool
}

// New returns a Local spawner keeping users' directories under dataDir/users and server logs
// under dataDir/logs. extraEnv (the spawner-wide environment) is added to every server.
//
// With isolation (cfg.Isolate on, or auto as root) it makes the hub's files private: dataDir
// and dataDir/users become 0711 (servers pass through, nobody lists them), every other entry
// of dataDir loses group and other access except dataDir/python (the ohtk module, readable by
// all), and directories above dataDir that others cannot pass through get o+x.
func New(cfg config.LocalSpawner, extraEnv map[string]string, dataDir string, log *slog.Logger) (*Local, error) {
	if len(cfg.Command) == 0 {
		return nil, errors.New("local: no command")
	}
	if _, err := exec.LookPath(cfg.Command[0]); err != nil {
		return nil, fmt.Errorf("local: %s not found (on Debian: apt-get install jupyterhub jupyter-notebook): %w", cfg.Command[0], err)
	}
	dataDir, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, fmt.Errorf("local: %w", err)
	}
	l := &Local{cfg: cfg, extra: extraEnv, dataDir: dataDir, log: log, procs: map[string]*proc{}, uidBase: cfg.UIDBase, lockDir: LockDir}
	if l.uidBase == 0 {
		l.uidBase = config.DefaultUIDBase
	}
	root := os.Geteuid() == 0
	switch cfg.Isolate {
	case config.IsolateOn:
		if !root {
			return nil, errors.New("local: spawner.local.isolate is on, but the hub does not run as root and cannot run servers under their own uids")
		}
		l.isolate = true
	case config.IsolateOff:
	default:
		l.isolate = root
	}
	for _, d := range []string{"users", "logs"} {
		if err := os.MkdirAll(filepath.Join(dataDir, d), 0o700); err != nil {
			return nil, fmt.Errorf("local: %w", err)
		}
	}
	if !l.isolate {
		log.Warn("the local spawner does not isolate users from each other: every server runs as the hub's OS user and can read the other servers' files, environment and tokens and the hub's database; use it for development only (run the hub as root for a uid per user, or use the docker spawner)",
			"uid", os.Geteuid(), "isolate", cfg.Isolate)
		return l, nil
	}
	if err := l.privateLayout(); err != nil {
		return nil, fmt.Errorf("local: %w", err)
	}
	log.Info("local spawner: each user's server runs under its own uid", "uid_base", l.uidBase)
	return l, nil
}

// privateLayout sets the modes of the data directory for isolated servers (see New).
func (l *Local) privateLayout() error {
	for _, d := range []string{l.dataDir, filepath.Join(l.dataDir, "users")} {
		if err := os.Chmod(d, 0o711); err != nil {
			return err
		}
	}
	entries, err := os.ReadDir(l.dataDir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		p := filepath.Join(l.dataDir, e.Name())
		switch {
		case e.Name() == "users" || e.Type()&fs.ModeSymlink != 0:
		case e.Name() == "python":
			if err := readableTree(p); err != nil {
				return err
			}
		default:
			fi, err := e.Info()
			if err != nil {
				return err
			}
			if fi.Mode().Perm()&0o077 != 0 {
				if err := os.Chmod(p, fi.Mode().Perm()&^0o077); err != nil {
					return err
				}
			}
		}
	}
	// Every directory above the users' directories must let their uids pass.
	for d := filepath.Dir(l.dataDir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o001 == 0 {
			st, _ := fi.Sys().(*syscall.Stat_t)
			if st == nil || int(st.Uid) != os.Geteuid() {
				return fmt.Errorf("users' servers cannot reach their directories: %s (mode %#o) does not let others pass through; chmod o+x it or choose another data_dir", d, fi.Mode().Perm())
			}
			if err := os.Chmod(d, fi.Mode().Perm()|0o001); err != nil {
				return err
			}
			l.log.Warn("local spawner: let users' servers pass through a directory above the data directory (o+x, no listing)", "dir", d)
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// readableTree lets everyone read the files and enter the directories under dir.
func readableTree(dir string) error {
	return filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.Type()&fs.ModeSymlink != 0 {
			return err
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		want := fi.Mode().Perm() | 0o444
		if e.IsDir() {
			want |= 0o111
		}
		if want != fi.Mode().Perm() {
			return os.Chmod(p, want)
		}
		return nil
	})
}

// Isolated reports whether servers run under their own uids.
func (l *Local) Isolated() bool { return l.isolate }

// UID is the uid (and gid) of the server of the user with that number in the hub's store.
func (l *Local) UID(number int64) int { return int(l.uidBase + number) }

// UserDir is the directory a user's server runs in.
func (l *Local) UserDir(slug string) string { return filepath.Join(l.dataDir, "users", slug) }

// Start creates the user's directory (copying the skeleton the first time), picks a free port
// and starts the command.
func (l *Local) Start(ctx context.Context, spec spawner.Spec) (spawner.Handle, error) {
	dir := l.UserDir(spec.Slug)
	uid := -1
	var uidLock *datadir.Lock
	if l.isolate {
		if spec.Number <= 0 {
			return spawner.Handle{}, fmt.Errorf("local: user %s has no number in the hub's store", spec.User)
		}
		uid = l.UID(spec.Number)
		// A uid of an account of this machine would give the user that account's files.
		if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
			return spawner.Handle{}, fmt.Errorf("local: uid %d for user %s belongs to the account %q of this machine; choose another spawner.local.uid_base", uid, spec.User, u.Username)
		}
		lock, err := lockUID(l.lockDir, uid)
		if err != nil {
			return spawner.Handle{}, err
		}
		// Held while the server runs: released when its process has exited, or now if it
		// does not start.
		uidLock = lock
		defer func() { uidLock.Release() }() // nil once the server's process holds it
	}
	if err := l.prepareDir(dir, uid, spec.User); err != nil {
		return spawner.Handle{}, err
	}
	port, err := freePort()
	if err != nil {
		return spawner.Handle{}, err
	}
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	// The address goes only into JUPYTERHUB_SERVICE_URL, from which jupyterhub-singleuser
	// takes its ip and port (as JupyterHub's spawners do): unlike the command line, a
	// process's environment is hidden from other uids, so users cannot learn which port the
	// next server will bind.
	args := append([]string{}, l.cfg.Command[1:]...)
	if os.Geteuid() == 0 && !l.isolate {
		args = append(args, "--allow-root")
	}
	// The server outlives the request that started it: no CommandContext.
	cmd := exec.Command(l.cfg.Command[0], args...)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	env := map[string]string{
		"HOME":    dir,
		"PATH":    filepath.Dir(l.cfg.Python) + ":/usr/local/bin:/usr/bin:/bin",
		"LANG":    "C.UTF-8",
		"USER":    os.Getenv("USER"),
		"LOGNAME": os.Getenv("USER"),
		"TMPDIR":  os.TempDir(),
	}
	if l.isolate {
		// No supplementary groups: root's would open files of those groups.
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid), Groups: []uint32{}}
		// The uid has no passwd entry: tools that ask for the user's name or home
		// (getpass, expanduser) find them here.
		env["USER"], env["LOGNAME"] = spec.Slug, spec.Slug
	}
	for k, v := range l.extra {
		env[k] = v
	}
	for k, v := range l.cfg.Env {
		env[k] = v
	}
	for k, v := range spec.Env {
		env[k] = v
	}
	env["JUPYTERHUB_SERVICE_URL"] = base + spec.ServicePrefix
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	logFile, err := os.OpenFile(filepath.Join(l.dataDir, "logs", spec.Slug+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return spawner.Handle{}, err
	}
	tail := &tailBuffer{max: 4096}
	out := io.MultiWriter(logFile, tail)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return spawner.Handle{}, fmt.Errorf("start %s: %w", l.cfg.Command[0], err)
	}
	sockUID := os.Geteuid()
	if l.isolate {
		sockUID = uid
	}
	p := &proc{cmd: cmd, done: make(chan struct{}), tail: tail, uid: sockUID, sockets: map[uint64]bool{}}
	held := uidLock
	uidLock = nil
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		held.Release()
		close(p.done)
	}()
	id := strconv.Itoa(cmd.Process.Pid)
	l.mu.Lock()
	l.procs[id] = p
	l.mu.Unlock()
	l.log.Info("started server process", "user", spec.User, "pid", id, "url", base, "dir", dir, "uid", uid)
	return spawner.Handle{ID: id, URL: base}, nil
}

// Poll reports whether the process still runs; when it has exited, the error holds its exit
// status and the last line it printed.
func (l *Local) Poll(ctx context.Context, h spawner.Handle) error {
	l.mu.Lock()
	p := l.procs[h.ID]
	l.mu.Unlock()
	if p == nil {
		return fmt.Errorf("%w: no such process", spawner.ErrStopped)
	}
	select {
	case <-p.done:
		return fmt.Errorf("%w: the server process exited (%v): %s", spawner.ErrStopped, p.err, p.tail.lastLine())
	default:
		return nil
	}
}

// Stop sends SIGTERM to the server's process group and SIGKILL if it is still there after
// five seconds.
func (l *Local) Stop(ctx context.Context, h spawner.Handle) error {
	l.mu.Lock()
	p := l.procs[h.ID]
	delete(l.procs, h.ID)
	l.mu.Unlock()
	if p == nil {
		return nil
	}
	pgid := p.cmd.Process.Pid
	syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(5 * time.Second):
	case <-ctx.Done():
	}
	syscall.Kill(-pgid, syscall.SIGKILL)
	<-p.done
	return nil
}

// prepareDir creates the user's directory with the skeleton's files the first time. For an
// isolated server (uid >= 0) the directory and everything in it belong to uid, and the
// directory is 0700; a directory owned by someone else (made before isolation, or under
// another uid_base) is given to uid.
func (l *Local) prepareDir(dir string, uid int, name string) error {
	fi, err := os.Lstat(dir)
	fresh := errors.Is(err, fs.ErrNotExist)
	switch {
	case fresh:
		if err := os.Mkdir(dir, 0o700); err != nil {
			return fmt.Errorf("create the user's directory: %w", err)
		}
		if l.cfg.SkeletonDir != "" {
			if err := copyTree(l.cfg.SkeletonDir, dir); err != nil {
				return fmt.Errorf("copy the starter files: %w", err)
			}
		}
	case err != nil:
		return fmt.Errorf("the user's directory: %w", err)
	case !fi.IsDir():
		return fmt.Errorf("the user's directory %s is not a directory", dir)
	}
	if uid < 0 {
		return nil
	}
	owned := false
	if !fresh {
		st, ok := fi.Sys().(*syscall.Stat_t)
		owned = ok && int(st.Uid) == uid && int(st.Gid) == uid
	}
	if !owned {
		if !fresh {
			l.log.Info("giving the user's directory to the server's uid", "user", name, "dir", dir, "uid", uid)
		}
		if err := chownTree(dir, uid); err != nil {
			return fmt.Errorf("give the user's directory to uid %d: %w", uid, err)
		}
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("the user's directory: %w", err)
	}
	return nil
}

// chownTree gives dir and everything under it to uid (and the gid of the same number),
// changing symbolic links themselves, never what they point at.
func chownTree(dir string, uid int) error {
	return filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, uid)
	})
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func copyTree(src, dst string) error {
	return os.CopyFS(dst, os.DirFS(src))
}

// tailBuffer keeps the last max bytes written, to explain why a server died.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) lastLine() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := strings.Split(strings.TrimSpace(string(t.buf)), "\n")
	last := strings.TrimSpace(lines[len(lines)-1])
	if last == "" {
		return "no output"
	}
	return last
}
