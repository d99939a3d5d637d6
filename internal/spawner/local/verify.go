package local

import (
	"bufio"
	"context"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/ohtkhub/ohtkhub/internal/spawner"
)

var (
	_ spawner.Verifier = (*Local)(nil)
	_ spawner.Watcher  = (*Local)(nil)
)

// Verify checks that every socket listening on the server's port belongs to the server: it
// is owned by the server's uid and, unless that uid is the user's own (isolation), held open
// by the started process or one of its descendants. Any process of the machine may bind a free port of 127.0.0.1, before the
// server does (the hub would take its answer for the server's) or after the server died (the
// hub would send it the user's browser). Once a listening socket is known to be the server's,
// a check reads only /proc/net/tcp and /proc/net/tcp6.
func (l *Local) Verify(ctx context.Context, h spawner.Handle) error {
	l.mu.Lock()
	p := l.procs[h.ID]
	l.mu.Unlock()
	if p == nil {
		return fmt.Errorf("%w: no such process", spawner.ErrStopped)
	}
	if p.exited() {
		return fmt.Errorf("%w: the server process exited", spawner.ErrStopped)
	}
	u, err := url.Parse(h.URL)
	if err != nil {
		return fmt.Errorf("local: %w", err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		return fmt.Errorf("local: bad server URL %s", h.URL)
	}
	socks, err := listening(port)
	if err != nil {
		return fmt.Errorf("local: %w", err)
	}
	if len(socks) == 0 {
		return fmt.Errorf("local: nothing listens on port %d", port)
	}
	var held map[uint64]bool
	for _, s := range socks {
		if s.uid != p.uid {
			return fmt.Errorf("%w: port %d is held by uid %d, not by the server's uid %d", spawner.ErrImpostor, port, s.uid, p.uid)
		}
		if l.isolate {
			// The uid is the user's alone (no other hub hands it out: lockUID), so the socket
			// is the server's or that of another process of the same user, who can only stand
			// in for their own server. Reading the server's fds would also need CAP_SYS_PTRACE,
			// which root lacks in a container with Docker's default capabilities.
			continue
		}
		p.mu.Lock()
		known := p.sockets[s.inode]
		p.mu.Unlock()
		if known {
			continue
		}
		if held == nil {
			held = socketsOf(descendants(p.cmd.Process.Pid))
		}
		if !held[s.inode] {
			return fmt.Errorf("%w: port %d is held by a process other than the server (pid %d)", spawner.ErrImpostor, port, p.cmd.Process.Pid)
		}
		p.mu.Lock()
		p.sockets[s.inode] = true
		p.mu.Unlock()
	}
	// The fds were read from the server's pid: it must not have been reused meanwhile.
	if p.exited() {
		return fmt.Errorf("%w: the server process exited", spawner.ErrStopped)
	}
	return nil
}

// Exited returns a channel closed when the server's process has exited.
func (l *Local) Exited(h spawner.Handle) <-chan struct{} {
	l.mu.Lock()
	p := l.procs[h.ID]
	l.mu.Unlock()
	if p == nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	return p.done
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// socket is a listening TCP socket from /proc/net/tcp or tcp6.
type socket struct {
	uid   int
	inode uint64
}

// loopbackListen holds the local addresses, as /proc/net/tcp and tcp6 print them, of listening
// sockets that a connection to 127.0.0.1 reaches: 127.0.0.1 and 0.0.0.0, and their IPv4-mapped
// IPv6 forms. An IPv6 socket on [::] or [::1] is left out: one that accepts IPv4 too cannot be
// bound beside the server's 127.0.0.1 socket (nor the server's beside it), and one that does
// not (IPV6_V6ONLY) never receives the hub's connections, so counting it would let any user
// make the hub stop another user's server.
var loopbackListen = map[string]bool{
	"0100007F":                         true,
	"00000000":                         true,
	"0000000000000000FFFF00000100007F": true,
	"0000000000000000FFFF000000000000": true,
}

// listening returns the TCP sockets of this network namespace listening on port where a
// connection to 127.0.0.1 arrives.
func listening(port int) ([]socket, error) {
	var out []socket
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		file, err := os.Open(f)
		if err != nil {
			if f == "/proc/net/tcp6" && os.IsNotExist(err) {
				continue
			}
			return nil, err
		}
		sc := bufio.NewScanner(file)
		sc.Scan() // header
		for sc.Scan() {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode …
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "0A" { // TCP_LISTEN
				continue
			}
			hexAddr, hexPort, ok := strings.Cut(fields[1], ":")
			if !ok || !loopbackListen[hexAddr] {
				continue
			}
			if p, err := strconv.ParseUint(hexPort, 16, 16); err != nil || int(p) != port {
				continue
			}
			uid, err1 := strconv.Atoi(fields[7])
			inode, err2 := strconv.ParseUint(fields[9], 10, 64)
			if err1 != nil || err2 != nil {
				continue
			}
			out = append(out, socket{uid: uid, inode: inode})
		}
		err = sc.Err()
		file.Close()
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// descendants returns pid and the pids of all its descendants.
func descendants(pid int) []int {
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		tasks, _ := os.ReadDir("/proc/" + strconv.Itoa(out[i]) + "/task")
		for _, t := range tasks {
			children, _ := os.ReadFile("/proc/" + strconv.Itoa(out[i]) + "/task/" + t.Name() + "/children")
			for _, c := range strings.Fields(string(children)) {
				if n, err := strconv.Atoi(c); err == nil {
					out = append(out, n)
				}
			}
		}
	}
	return out
}

// socketsOf returns the inodes of the sockets the processes hold open.
func socketsOf(pids []int) map[uint64]bool {
	out := map[uint64]bool{}
	for _, pid := range pids {
		dir := "/proc/" + strconv.Itoa(pid) + "/fd/"
		fds, _ := os.ReadDir(dir)
		for _, fd := range fds {
			target, err := os.Readlink(dir + fd.Name())
			if err != nil {
				continue
			}
			if rest, ok := strings.CutPrefix(target, "socket:["); ok {
				if n, err := strconv.ParseUint(strings.TrimSuffix(rest, "]"), 10, 64); err == nil {
					out[n] = true
				}
			}
		}
	}
	return out
}
