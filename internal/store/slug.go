package store

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Slug maps a hub user name to a deterministic resource name (directory, container, volume,
// pod): lowercase a-z, 0-9 and "-", at most 40 characters. When the mapping loses anything
// (case, other characters, length) a hash of the full name is appended, so two different
// names never share a slug.
func Slug(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		switch {
		case 'a' <= r && r <= 'z' || '0' <= r && r <= '9':
			b.WriteRune(r)
			dash = false
		default:
			if !dash && b.Len() > 0 {
				b.WriteByte('-')
				dash = true
			}
		}
	}
	s := strings.Trim(b.String(), "-")
	if len(s) > 30 {
		s = strings.TrimRight(s[:30], "-")
	}
	if s == name && s != "" {
		return s
	}
	sum := sha256.Sum256([]byte(name))
	if s == "" {
		return "u-" + hex.EncodeToString(sum[:])[:10]
	}
	return s + "-" + hex.EncodeToString(sum[:])[:8]
}
