// Package local runs each user's single-user server as a child process of the hub, in the
// user's own directory under the data directory. For development and the demo: processes are
// not isolated from each other beyond their directories.
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
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ohtkhub/ohtkhub/internal/config"
	"github.com/ohtkhub/ohtkhub/internal/spawner"
)

var _ spawner.Spawner = (*Local)(nil)

// Local starts servers as processes.
type Local struct {
	cfg     config.LocalSpawner
	extra   map[string]string
	dataDir string
	log     *slog.Logger

	mu    sync.Mutex
	procs map[string]*proc
}

type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	tail *tailBuffer
}

// New returns a Local spawner keeping users' directories under dataDir/users and server logs
// under dataDir/logs. extraEnv (the spawner-wide environment) is added to every server.
func New(cfg config.LocalSpawner, extraEnv map[string]string, dataDir string, log *slog.Logger) (*Local, error) {
	if len(cfg.Command) == 0 {
		return nil, errors.New("local: no command")
	}
	if _, err := exec.LookPath(cfg.Command[0]); err != nil {
		return nil, fmt.Errorf("local: %s not found (on Debian: apt-get install jupyterhub jupyter-notebook): %w", cfg.Command[0], err)
	}
	for _, d := range []string{"users", "logs"} {
		if err := os.MkdirAll(filepath.Join(dataDir, d), 0o700); err != nil {
			return nil, fmt.Errorf("local: %w", err)
		}
	}
	return &Local{cfg: cfg, extra: extraEnv, dataDir: dataDir, log: log, procs: map[string]*proc{}}, nil
}

// UserDir is the directory a user's server runs in.
func (l *Local) UserDir(slug string) string { return filepath.Join(l.dataDir, "users", slug) }

// Start creates the user's directory (copying the skeleton the first time), picks a free port
// and starts the command.
func (l *Local) Start(ctx context.Context, spec spawner.Spec) (spawner.Handle, error) {
	dir := l.UserDir(spec.Slug)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return spawner.Handle{}, fmt.Errorf("create the user's directory: %w", err)
		}
		if l.cfg.SkeletonDir != "" {
			if err := copyTree(l.cfg.SkeletonDir, dir); err != nil {
				return spawner.Handle{}, fmt.Errorf("copy the starter files: %w", err)
			}
		}
	}
	port, err := freePort()
	if err != nil {
		return spawner.Handle{}, err
	}
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	args := append([]string{}, l.cfg.Command[1:]...)
	args = append(args, "--ip=127.0.0.1", "--port="+strconv.Itoa(port))
	if os.Geteuid() == 0 {
		args = append(args, "--allow-root")
	}
	// The server outlives the request that started it: no CommandContext.
	cmd := exec.Command(l.cfg.Command[0], args...)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	env := map[string]string{
		"HOME":   dir,
		"PATH":   filepath.Dir(l.cfg.Python) + ":/usr/local/bin:/usr/bin:/bin",
		"LANG":   "C.UTF-8",
		"USER":   os.Getenv("USER"),
		"TMPDIR": os.TempDir(),
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
	p := &proc{cmd: cmd, done: make(chan struct{}), tail: tail}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	id := strconv.Itoa(cmd.Process.Pid)
	l.mu.Lock()
	l.procs[id] = p
	l.mu.Unlock()
	l.log.Info("started server process", "user", spec.User, "pid", id, "url", base, "dir", dir)
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
