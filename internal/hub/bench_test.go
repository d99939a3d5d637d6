package hub

import (
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ohtkhub/ohtkhub/internal/config"
)

// BenchmarkIntegrationProxyJupyter compares GET /user/{name}/api/status on a real
// jupyterhub-singleuser server through the hub's proxy with the same request sent directly to
// the server, from eight concurrent clients. It reports requests/s and p50/p99 latency.
//
//	go test ./internal/hub/ -run '^$' -bench IntegrationProxyJupyter -benchtime 2000x
func BenchmarkIntegrationProxyJupyter(b *testing.B) {
	if _, err := lookJupyter(); err != nil {
		b.Fatal(err)
	}
	bunny := newFakeProvider(b, "Bunny Province")
	h := startHub(b, listen(b), "/", config.Hub{Tenants: []config.Tenant{bunny.tenant("bunny")}})
	br := newBrowser(b)
	loginFake(b, br, h, bunny, "bunny", 1, "alice")
	spawn(b, br, h, "bunny_alice")
	token := createToken(b, br, h)
	target, ok := h.Hub.servers.Target("bunny_alice")
	if !ok {
		b.Fatal("no target")
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	for _, tc := range []struct{ name, url string }{
		{"direct", target.String() + "/user/bunny_alice/api/status"},
		{"proxied", h.URL + "user/bunny_alice/api/status"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var mu sync.Mutex
			var all []time.Duration
			b.SetParallelism(4)
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				var mine []time.Duration
				for pb.Next() {
					req, _ := http.NewRequest("GET", tc.url, nil)
					req.Header.Set("Authorization", "token "+token)
					t0 := time.Now()
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Errorf("%s: %s", tc.url, resp.Status)
						return
					}
					mine = append(mine, time.Since(t0))
				}
				mu.Lock()
				all = append(all, mine...)
				mu.Unlock()
			})
			elapsed := time.Since(start)
			if len(all) == 0 {
				return
			}
			slices.Sort(all)
			b.ReportMetric(float64(len(all))/elapsed.Seconds(), "req/s")
			b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}
