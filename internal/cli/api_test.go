package cli

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAPIMetricsListen: with metrics.listen the api serves /metrics there to anyone and not
// on its own address (no token_file); both stop together.
func TestAPIMetricsListen(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "api.yaml")
	os.WriteFile(cfg, []byte("listen: 127.0.0.1:0\ndata_dir: data\nmetrics:\n  listen: 127.0.0.1:0\n"), 0o600)
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- runAPI(ctx, []string{"--config", cfg}, pw, io.Discard)
		pw.Close()
	}()
	out := bufio.NewReader(pr)
	var lines [2]string
	for i := range lines {
		l, err := out.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		lines[i] = strings.TrimSpace(l)
	}
	go io.Copy(io.Discard, pr)
	base, ok := strings.CutPrefix(lines[0], "ohtkhub api listening on ")
	metrics, ok2 := strings.CutPrefix(lines[1], "ohtkhub api metrics on ")
	if !ok || !ok2 {
		t.Fatalf("api printed %q", lines)
	}
	get := func(u string) (int, string) {
		t.Helper()
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get(base + "/health"); code != 200 {
		t.Errorf("/health: %d", code)
	}
	if code, body := get(metrics); code != 200 || !strings.Contains(body, `ohtkhub_api_requests_total{code="200",handler="health",method="get"} 1`) {
		t.Errorf("metrics listener: %d\n%s", code, body)
	}
	if code, _ := get(base + "/metrics"); code != 404 {
		t.Errorf("/metrics on the api's address: %d, want 404", code)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("api returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("api did not stop")
	}
}
