package cli

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestAPIMetricsListen: with metrics.listen the api serves /metrics there to anyone and not
// on its own address (no token_file); both stop together.
func TestAPIMetricsListen(t *testing.T) {
	a := startAPICommand(t, "listen: 127.0.0.1:0\ndata_dir: data\nmetrics:\n  listen: 127.0.0.1:0\n", 2)
	base := a.base(t)
	metrics, ok := strings.CutPrefix(a.lines[1], "ohtkhub api metrics on ")
	if !ok {
		t.Fatalf("api printed %q", a.lines)
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
	a.stop(t)
}
