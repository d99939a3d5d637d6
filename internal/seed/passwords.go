package seed

import (
	"crypto/rand"
	"runtime"
	"sync"

	"github.com/ohtkhub/ohtkhub/internal/djangohash"
)

// makeHashes returns n hashes of password, each with its own salt, made on all CPUs: at
// Django's iteration count one hash takes about a tenth of a second.
func makeHashes(password string, iterations, n int) []string {
	out := make([]string, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for i := range out {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			out[i] = djangohash.Make(password, iterations)
		})
	}
	wg.Wait()
	return out
}

// unusablePassword is what Django's set_unusable_password stores: "!" and 40 random
// characters, which no password matches.
func unusablePassword() string {
	return "!" + rand.Text()[:26] + rand.Text()[:14]
}
