// Package safeurl checks redirect targets that arrive in requests ("next" parameters), so that
// they cannot send a browser to another site, nor out of the part of this site they belong to.
// The hub's login and the api's provider both redirect to them.
package safeurl

import (
	"net/url"
	"strings"
)

// LocalPath reports whether next is a path on this site at or under base, both in escaped form
// (an empty base or "/" allows every path). It must start with a single "/" and hold no control
// characters or backslashes: browsers drop tabs and newlines from URLs and read "\" as "/", so
// "/\t/evil.example" or "/\evil.example" lead to another host. It may have no scheme, host or
// user, and no "." or ".." segment (also percent-encoded): browsers resolve them, which would
// lead "/t/bunny/../../x" out of base.
func LocalPath(next, base string) bool {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") {
		return false
	}
	for i := 0; i < len(next); i++ {
		if c := next[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return false
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return false
	}
	p := u.EscapedPath()
	for seg := range strings.SplitSeq(p, "/") {
		if s, err := url.PathUnescape(seg); err != nil || s == "." || s == ".." {
			return false
		}
	}
	base = strings.TrimSuffix(base, "/")
	return base == "" || p == base || strings.HasPrefix(p, base+"/")
}
