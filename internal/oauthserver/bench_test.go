package oauthserver

import (
	"net/http"
	"net/url"
	"testing"
)

// BenchmarkClientCredentialsToken measures one /o/token/ call end to end over HTTP: client
// authentication (a pbkdf2_sha256 hash of SecretIterations) and writing the token.
func BenchmarkClientCredentialsToken(b *testing.B) {
	h := newHarness(b)
	id, secret := h.createApp(Application{Name: "bench", GrantType: GrantClientCredentials})
	form := url.Values{"grant_type": {"client_credentials"}}
	auth := basicAuth(id, secret)
	for b.Loop() {
		if r := h.post(http.DefaultClient, "/o/token/", form, "Authorization", auth); r.status != http.StatusOK {
			b.Fatalf("%d %s", r.status, r.body)
		}
	}
}
