// Package djangohash makes and checks Django password hashes
// ("pbkdf2_sha256$<iterations>$<salt>$<base64>", and the older "pbkdf2_sha1").
package djangohash

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"hash"
	"strconv"
	"strings"
)

// DefaultIterations is Django 4.2's iteration count for pbkdf2_sha256.
const DefaultIterations = 600000

// maxIterations bounds the work a stored hash can demand.
const maxIterations = 10_000_000

// ErrUnknownAlgorithm is returned for hashes this package cannot check (e.g. argon2, unusable "!" passwords).
var ErrUnknownAlgorithm = errors.New("djangohash: unknown algorithm")

// Make returns a pbkdf2_sha256 hash of password with a random salt.
func Make(password string, iterations int) string {
	if iterations <= 0 {
		iterations = DefaultIterations
	}
	salt := rand.Text()[:22]
	return encode("pbkdf2_sha256", sha256.New, password, salt, iterations)
}

func encode(algo string, h func() hash.Hash, password, salt string, iterations int) string {
	size := h().Size()
	key, err := pbkdf2.Key(h, password, []byte(salt), iterations, size)
	if err != nil {
		panic(err) // only for invalid parameters, which callers never pass
	}
	return algo + "$" + strconv.Itoa(iterations) + "$" + salt + "$" + base64.StdEncoding.EncodeToString(key)
}

// Check reports whether password matches the Django hash encoded. The comparison is constant-time.
func Check(password, encoded string) (bool, error) {
	algo, h, iterations, ok := parse(encoded)
	if !ok {
		return false, ErrUnknownAlgorithm
	}
	salt := strings.Split(encoded, "$")[2]
	want := encode(algo, h, password, salt, iterations)
	return subtle.ConstantTimeCompare([]byte(want), []byte(encoded)) == 1, nil
}
