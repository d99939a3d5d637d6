package djangohash

import (
	"crypto/sha1"
	"testing"
)

func TestCheck(t *testing.T) {
	// Made with Django 4.2: make_password("s3cret", salt="abcdefghijklmnopqrstuv", hasher=...).
	tests := []struct {
		name, password, encoded string
		want                    bool
	}{
		{"made here", "รหัสผ่าน with space", Make("รหัสผ่าน with space", 1000), true},
		{"wrong password", "nope", Make("right", 1000), false},
		{"sha1", "password", encode("pbkdf2_sha1", sha1.New, "password", "salt", 1), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Check(tc.password, tc.encoded)
			if err != nil || got != tc.want {
				t.Fatalf("Check = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
	for _, bad := range []string{"", "!unusable", "argon2$x$y$z", "pbkdf2_sha256$0$salt$x", "pbkdf2_sha256$99999999999$s$x"} {
		if ok, err := Check("x", bad); ok || err == nil {
			t.Errorf("Check(%q) = %v, %v; want error", bad, ok, err)
		}
	}
}

// TestKnownVector checks against the RFC 6070 PBKDF2-HMAC-SHA1 vector, encoded the Django way.
func TestKnownVector(t *testing.T) {
	// RFC 6070: P="password", S="salt", c=2, dkLen=20 -> ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957
	const encoded = "pbkdf2_sha1$2$salt$6mwBTcctb4zNHtkqzh1B8NjeiVc="
	ok, err := Check("password", encoded)
	if err != nil || !ok {
		t.Fatalf("RFC 6070 vector: %v %v", ok, err)
	}
}
