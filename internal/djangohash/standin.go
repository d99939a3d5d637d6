package djangohash

import (
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"hash"
	"strconv"
	"strings"
	"sync"
)

// StandIn is what a password is checked against when there is no usable hash to check it
// against: a username that does not exist, or a user whose stored password cannot be
// checked. Such a check costs what checking a real hash costs, so the time a failed login
// takes does not tell whether the username exists.
//
// Stored hashes of one database need not use DefaultIterations: older Django versions wrote
// 260000 or 320000, and tools may write fewer. A StandIn therefore takes its algorithm and
// iteration count from the last real hash it was shown (Observe); until then it costs a
// pbkdf2_sha256 hash with DefaultIterations. Keep one StandIn per database of users.
//
// The zero value is ready to use. A StandIn is safe for concurrent use.
type StandIn struct {
	mu         sync.Mutex
	algo       string // "" until the first Check or Observe
	iterations int
	salt       string
}

// Observe shapes the stand-in like encoded, a hash read from the database for a real user.
// Hashes this package cannot check are ignored.
func (s *StandIn) Observe(encoded string) {
	algo, _, iterations, ok := parse(encoded)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	s.algo, s.iterations = algo, iterations
}

// Check does the work of checking password against a hash shaped like the last observed
// one. Nothing matches a stand-in, so there is no result.
func (s *StandIn) Check(password string) {
	s.mu.Lock()
	s.init()
	algo, iterations, salt := s.algo, s.iterations, s.salt
	s.mu.Unlock()
	h := sha256.New
	if algo == "pbkdf2_sha1" {
		h = sha1.New
	}
	encode(algo, h, password, salt, iterations)
}

// Cost returns the algorithm and iteration count a Check works through.
func (s *StandIn) Cost() (algo string, iterations int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	return s.algo, s.iterations
}

// CheckUser checks password against encoded, the stored hash of a user who exists, and
// learns the hash's cost. Where encoded cannot be checked (an unusable "!" password, an
// unknown algorithm) the stand-in does the work instead and the answer is false.
func (s *StandIn) CheckUser(password, encoded string) bool {
	ok, err := Check(password, encoded)
	if err != nil {
		s.Check(password)
		return false
	}
	s.Observe(encoded)
	return ok
}

func (s *StandIn) init() {
	if s.algo == "" {
		s.algo, s.iterations = "pbkdf2_sha256", DefaultIterations
	}
	if s.salt == "" {
		s.salt = rand.Text()[:22]
	}
}

// parse splits a hash this package can check into its algorithm, hash function and
// iteration count.
func parse(encoded string) (algo string, h func() hash.Hash, iterations int, ok bool) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 4 {
		return "", nil, 0, false
	}
	switch parts[0] {
	case "pbkdf2_sha256":
		h = sha256.New
	case "pbkdf2_sha1":
		h = sha1.New
	default:
		return "", nil, 0, false
	}
	iterations, err := strconv.Atoi(parts[1])
	if err != nil || iterations <= 0 || iterations > maxIterations {
		return "", nil, 0, false
	}
	return parts[0], h, iterations, true
}
