package djangohash

import (
	"crypto/sha1"
	"testing"
)

// TestStandInCostsWhatStoredHashesCost checks that the stand-in checked for unknown users
// follows the algorithm and iteration count of the real hashes it was shown, so a missing
// user costs what a present one costs.
func TestStandInCostsWhatStoredHashesCost(t *testing.T) {
	var s StandIn
	if algo, n := s.Cost(); algo != "pbkdf2_sha256" || n != DefaultIterations {
		t.Fatalf("before any real hash: %s %d, want pbkdf2_sha256 %d", algo, n, DefaultIterations)
	}
	stored := Make("right", 1000)
	if s.CheckUser("wrong", stored) {
		t.Fatal("wrong password accepted")
	}
	if algo, n := s.Cost(); algo != "pbkdf2_sha256" || n != 1000 {
		t.Fatalf("after a 1000-iteration hash: %s %d", algo, n)
	}
	if !s.CheckUser("right", stored) {
		t.Fatal("right password refused")
	}
	s.CheckUser("x", encode("pbkdf2_sha1", sha1.New, "x", "salt", 7))
	if algo, n := s.Cost(); algo != "pbkdf2_sha1" || n != 7 {
		t.Fatalf("after a sha1 hash: %s %d", algo, n)
	}
	// Hashes that cannot be checked neither match nor change the cost.
	for _, bad := range []string{"!unusable", "argon2$argon2id$v=19$m=102400,t=2,p=8$c2FsdA$aGFzaA", "pbkdf2_sha256$0$s$x", ""} {
		if s.CheckUser("x", bad) {
			t.Errorf("CheckUser(%q) matched", bad)
		}
		s.Observe(bad)
	}
	if algo, n := s.Cost(); algo != "pbkdf2_sha1" || n != 7 {
		t.Fatalf("after unusable hashes: %s %d", algo, n)
	}
	s.Check("anything") // works through the learned cost without panicking
}
