package local_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ohtkhub/ohtkhub/internal/config"
)

// squatterUID is the uid of another user's kernel in the squatting tests.
const squatterUID = config.DefaultUIDBase + 99

// squat starts, as another user's code would (under squatterUID when the tests run as root),
// an HTTP server on 127.0.0.1:port answering 200 "squatter" to everything.
func squat(t *testing.T, port string) {
	t.Helper()
	// Passed as -c: the other uid need not be able to read the repository.
	code, err := os.ReadFile("../../../testdata/squatter.py")
	if err != nil {
		t.Fatal(err)
	}
	asOtherUser(t, "-c", string(code), port)
}

// asOtherUser runs /usr/bin/python3 with args, as another user's code would (under squatterUID
// when the tests run as root), and returns once it has printed "bound". It ends with the test.
func asOtherUser(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command("/usr/bin/python3", args...)
	cmd.Dir = "/"
	cmd.Stderr = os.Stderr
	if os.Geteuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: squatterUID, Gid: squatterUID, Groups: []uint32{}}}
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "bound\n" {
		t.Fatalf("python %v did not bind: %q %v", args, line, err)
	}
}

// pendingPort finds the port a starting server of user will listen on, as root reads it from
// the server's environment (other users cannot).
func pendingPort(t *testing.T, user string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			if _, err := strconv.Atoi(e.Name()); err != nil {
				continue
			}
			environ, _ := os.ReadFile("/proc/" + e.Name() + "/environ")
			vars := strings.Split(string(environ), "\x00")
			var mine bool
			var service string
			for _, v := range vars {
				mine = mine || v == "JUPYTERHUB_USER="+user
				if s, ok := strings.CutPrefix(v, "JUPYTERHUB_SERVICE_URL="); ok {
					service = s
				}
			}
			if mine && service != "" {
				u, err := url.Parse(service)
				if err != nil {
					t.Fatal(err)
				}
				return u.Port()
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no starting server of %s", user)
	return ""
}

// TestSquatterBeforeServerFailsSpawn: another user's process that binds a starting server's
// port first and answers HTTP is not taken for the server: the spawn fails with the reason and
// the user is never routed to it.
func TestSquatterBeforeServerFailsSpawn(t *testing.T) {
	m, _, _ := newManager(t, map[string]string{"alice": "slowbind"}, 10*time.Second)
	m.Start("alice")
	squat(t, pendingPort(t, "alice"))
	e := wait(t, m, "alice")
	if e.Ready {
		t.Fatal("the squatter was taken for alice's server")
	}
	if !strings.Contains(e.Message, "another process listens at the server's address") {
		t.Fatalf("reason %q", e.Message)
	}
	if _, ok := m.Target("alice"); ok {
		t.Fatal("alice routed to the squatter")
	}
}

// TestDeadServerUnroutedAtOnce: once a server's process has died the hub stops routing to it
// at once, long before its next poll, and never connects to a process that took its port.
func TestDeadServerUnroutedAtOnce(t *testing.T) {
	m, _, _ := newManagerPolling(t, t.TempDir(), config.LocalSpawner{}, nil, 10*time.Second, time.Hour)
	m.Start("bob")
	if e := wait(t, m, "bob"); !e.Ready {
		t.Fatalf("%+v", e)
	}
	target, _ := m.Target("bob")
	syscall.Kill(serverPID(t, m, "bob"), syscall.SIGKILL)
	squat(t, target.Port())
	deadline := time.Now().Add(2 * time.Second)
	for {
		if _, ok := m.Target("bob"); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("dead server still routed 2s after it died")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st := m.Status("bob"); !strings.Contains(st.LastError, "the server process exited") {
		t.Fatalf("reason %q", st.LastError)
	}
	if c, err := m.DialContext(t.Context(), "tcp", target.Host); err == nil {
		c.Close()
		t.Fatal("the proxy may connect to the squatter on the dead server's port")
	}
}

// TestDialChecksServer: the proxy's connections to a running server are checked; one to a
// port the server does not hold is refused.
func TestDialChecksServer(t *testing.T) {
	m, _, _ := newManager(t, nil, 10*time.Second)
	m.Start("carol")
	if e := wait(t, m, "carol"); !e.Ready {
		t.Fatalf("%+v", e)
	}
	target, _ := m.Target("carol")
	c, err := m.DialContext(t.Context(), "tcp", target.Host)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	tr := &http.Transport{DialContext: m.DialContext}
	resp, err := (&http.Client{Transport: tr}).Get(target.String() + "/user/carol/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if c, err := m.DialContext(t.Context(), "tcp", ln.Addr().String()); err == nil {
		c.Close()
		t.Fatal("dialled an address that is no server's")
	}
}

// TestUIDHeldByAnotherHub: two hubs with the same uid_base would run two users under one uid;
// while one hub's server runs under a uid, another hub cannot start a server under it, and
// says why. Once the first server stops the uid is free again.
func TestUIDHeldByAnotherHub(t *testing.T) {
	requireRoot(t)
	m1, _, _ := newManager(t, nil, 10*time.Second)
	m2, _, _ := newManager(t, nil, 10*time.Second)
	m1.Start("alice")
	if e := wait(t, m1, "alice"); !e.Ready {
		t.Fatalf("%+v", e)
	}
	m2.Start("alice")
	e := wait(t, m2, "alice")
	want := fmt.Sprintf("uid %d is in use by another ohtkhub hub (pid %d); give each hub its own uid_base", config.DefaultUIDBase+1, os.Getpid())
	if e.Ready || !strings.Contains(e.Message, want) {
		t.Fatalf("second hub: %+v, want %q", e, want)
	}
	if err := m1.Stop(t.Context(), "alice"); err != nil {
		t.Fatal(err)
	}
	m2.Start("alice")
	if e := wait(t, m2, "alice"); !e.Ready {
		t.Fatalf("after the first hub's server stopped: %+v", e)
	}
}

// TestIPv6ListenerBesideServerIsHarmless: another user may bind a running server's port on
// [::1] or [::] with IPV6_V6ONLY (nothing stops that beside the server's 127.0.0.1 socket).
// Those sockets never receive the hub's connections, so they neither count against the server
// nor get it stopped.
func TestIPv6ListenerBesideServerIsHarmless(t *testing.T) {
	for _, host := range []string{"::1", "::"} {
		t.Run(host, func(t *testing.T) {
			m, _, _ := newManager(t, nil, 10*time.Second)
			m.Start("dave")
			if e := wait(t, m, "dave"); !e.Ready {
				t.Fatalf("%+v", e)
			}
			target, _ := m.Target("dave")
			code := `
import socket, sys, time
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen()
print("bound", flush=True)
time.sleep(60)
`
			asOtherUser(t, "-c", code, host, target.Port())
			for range 3 {
				c, err := m.DialContext(t.Context(), "tcp", target.Host)
				if err != nil {
					t.Fatalf("connection to dave's server refused beside a listener on [%s]: %v", host, err)
				}
				c.Close()
			}
			if _, ok := m.Target("dave"); !ok {
				t.Fatal("dave's server was stopped")
			}
		})
	}
}

// TestIsolatedServerWithoutPtrace: the check of a server's port needs no CAP_SYS_PTRACE, which
// root lacks in a container with Docker's default capabilities (the server's /proc/<pid>/fd
// is unreadable there): an isolated server under its own uid still starts and is reached.
// The test runs itself again without that capability.
func TestIsolatedServerWithoutPtrace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("isolated servers need the hub to run as root")
	}
	if os.Getenv("OHTKHUB_TEST_NO_PTRACE") == "" {
		cmd := exec.Command("setpriv", "--bounding-set", "-sys_ptrace", "--inh-caps", "-sys_ptrace",
			os.Args[0], "-test.run=^TestIsolatedServerWithoutPtrace$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "OHTKHUB_TEST_NO_PTRACE=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestIsolatedServerWithoutPtrace") {
			t.Fatalf("without CAP_SYS_PTRACE: %v\n%s", err, out)
		}
		return
	}
	status, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(status), "\n") {
		if hex, ok := strings.CutPrefix(line, "CapEff:"); ok {
			if caps, _ := strconv.ParseUint(strings.TrimSpace(hex), 16, 64); caps&(1<<19) != 0 {
				t.Fatal("the test still holds CAP_SYS_PTRACE")
			}
		}
	}
	m, _, _ := newManager(t, nil, 10*time.Second)
	m.Start("erin")
	if e := wait(t, m, "erin"); !e.Ready {
		t.Fatalf("%+v", e)
	}
	target, _ := m.Target("erin")
	c, err := m.DialContext(t.Context(), "tcp", target.Host)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}
