package cli

import (
	"bufio"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runningAPI is an `ohtkhub api` command running inside the test.
type runningAPI struct {
	dir    string   // the directory holding its api.yaml
	cfg    string   // the api.yaml path
	lines  []string // the first lines it printed, trimmed
	cancel context.CancelFunc
	done   chan error
}

// startAPICommand writes yaml to api.yaml in a new directory, runs `ohtkhub api --config` on it
// and returns once the command has printed n lines.
func startAPICommand(t *testing.T, yaml string, n int) *runningAPI {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "api.yaml")
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	a := &runningAPI{dir: dir, cfg: cfg, cancel: cancel, done: make(chan error, 1)}
	go func() {
		a.done <- runAPI(ctx, []string{"--config", cfg}, pw, io.Discard)
		pw.Close()
	}()
	out := bufio.NewReader(pr)
	for range n {
		l, err := out.ReadString('\n')
		if err != nil {
			t.Fatalf("api printed %q, then: %v", a.lines, err)
		}
		a.lines = append(a.lines, strings.TrimSpace(l))
	}
	go io.Copy(io.Discard, pr)
	return a
}

// base is the URL the api said it listens on.
func (a *runningAPI) base(t *testing.T) string {
	t.Helper()
	base, ok := strings.CutPrefix(a.lines[0], "ohtkhub api listening on ")
	if !ok {
		t.Fatalf("api printed %q", a.lines[0])
	}
	return base
}

// stop stops the api and fails the test unless it returns without error within 10 s.
func (a *runningAPI) stop(t *testing.T) {
	t.Helper()
	a.cancel()
	select {
	case err := <-a.done:
		if err != nil {
			t.Fatalf("api returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("api did not stop")
	}
}
