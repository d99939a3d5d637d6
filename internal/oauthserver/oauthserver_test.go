package oauthserver

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ohtkhub/ohtkhub/internal/djangohash"
	"github.com/ohtkhub/ohtkhub/internal/ohtkdb"
)

const (
	invalidGrantCode   = `{"error":"invalid_grant","error_description":"Invalid or expired code, redirect URI or code verifier."}`
	invalidGrantRT     = `{"error":"invalid_grant","error_description":"Invalid refresh token."}`
	invalidClientBody  = `{"error":"invalid_client","error_description":"Client authentication failed."}`
	invalidTokenBody   = `{"error":"invalid_token","error_description":"Authentication credentials were missing, invalid or expired."}`
	csrfFailureBody    = "CSRF verification failed. Request aborted.\n"
	tooManySignInsBody = "Too many sign-in attempts. Try again later.\n"
)

func TestLoginCSRF(t *testing.T) {
	h := newHarness(t)
	form := url.Values{"username": {testUser}, "password": {testPassword}}

	// No CSRF cookie and no token.
	expect(t, h.post(http.DefaultClient, "/accounts/login/", form), http.StatusForbidden, csrfFailureBody)

	// A cookie, but a token made for another cookie.
	c := h.browser()
	h.get(c, "/accounts/login/")
	other := h.browser()
	tok := csrfFrom(t, h.get(other, "/accounts/login/").body)
	form.Set("csrfmiddlewaretoken", tok)
	expect(t, h.post(c, "/accounts/login/", form), http.StatusForbidden, csrfFailureBody)

	// The cookie's own token works.
	form.Set("csrfmiddlewaretoken", csrfFrom(t, h.get(c, "/accounts/login/").body))
	r := h.post(c, "/accounts/login/", form)
	if r.status != http.StatusFound || r.header.Get("Location") != "/accounts/login/" {
		t.Fatalf("login: %d %q", r.status, r.header.Get("Location"))
	}
	cookie := r.header.Get("Set-Cookie")
	for _, want := range []string{"sessionid=", "Path=/", "HttpOnly", "SameSite=Lax"} {
		if !strings.Contains(cookie, want) {
			t.Errorf("session cookie %q lacks %q", cookie, want)
		}
	}
	if strings.Contains(cookie, "Secure") {
		t.Errorf("session cookie on plain HTTP is Secure: %q", cookie)
	}
	// A cross-origin browser POST is refused even with a valid token.
	form.Set("csrfmiddlewaretoken", csrfFrom(t, h.get(c, "/accounts/login/").body))
	r = h.post(c, "/accounts/login/", form, "Sec-Fetch-Site", "cross-site")
	if r.status != http.StatusForbidden {
		t.Fatalf("cross-site login: %d %s", r.status, r.body)
	}
}

func TestLoginRateLimit(t *testing.T) {
	h := newHarness(t)
	c := h.browser()
	for i := range 5 {
		r := h.login(c, testUser, "wrong")
		if r.status != http.StatusOK || !strings.Contains(r.body, "Please enter a correct username and password.") {
			t.Fatalf("attempt %d: %d %s", i, r.status, r.body)
		}
	}
	// Even the right password is refused once the failures are used up.
	r := h.login(c, testUser, testPassword)
	expect(t, r, http.StatusTooManyRequests, tooManySignInsBody)
	if r.header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	// Other usernames from the same address are not affected.
	if r := h.login(c, "someone-else", "wrong"); r.status != http.StatusOK {
		t.Fatalf("other username: %d", r.status)
	}
	// One attempt comes back after the interval.
	h.advance(21 * time.Second)
	if r := h.login(c, testUser, testPassword); r.status != http.StatusFound {
		t.Fatalf("after waiting: %d %s", r.status, r.body)
	}
}

func TestLoginNext(t *testing.T) {
	h := newHarness(t)
	for next, want := range map[string]string{
		"/o/authorize/?client_id=x": "/o/authorize/?client_id=x",
		"//evil.example/":           "/accounts/login/",
		"https://evil.example/":     "/accounts/login/",
		"/\\evil.example":           "/accounts/login/",
		"javascript:alert(1)":       "/accounts/login/",
		"/\t/evil.example/":         "/accounts/login/",
		"/o/../../evil":             "/accounts/login/",
	} {
		c := h.browser()
		page := h.get(c, "/accounts/login/")
		r := h.post(c, "/accounts/login/", url.Values{"csrfmiddlewaretoken": {csrfFrom(t, page.body)},
			"username": {testUser}, "password": {testPassword}, "next": {next}})
		if r.status != http.StatusFound || r.header.Get("Location") != want {
			t.Errorf("next %q: %d %q, want %q", next, r.status, r.header.Get("Location"), want)
		}
	}
}

func TestAuthorizeRequiresLogin(t *testing.T) {
	h := newHarness(t)
	q := url.Values{"response_type": {"code"}, "client_id": {h.clientID}, "redirect_uri": {h.redirectURI}, "state": {"s1"}}
	r := h.get(h.browser(), "/o/authorize/?"+q.Encode())
	want := "/accounts/login/?" + url.Values{"next": {"/o/authorize/?" + q.Encode()}}.Encode()
	if r.status != http.StatusFound || r.header.Get("Location") != want {
		t.Fatalf("got %d %q, want %q", r.status, r.header.Get("Location"), want)
	}
}

func TestAuthorizeErrors(t *testing.T) {
	h := newHarness(t)
	c := h.browser()
	h.login(c, testUser, testPassword)
	// Errors that cannot go back to the client are shown as a page.
	for name, q := range map[string]url.Values{
		"unknown client":    {"response_type": {"code"}, "client_id": {"nope"}, "redirect_uri": {h.redirectURI}},
		"foreign redirect":  {"response_type": {"code"}, "client_id": {h.clientID}, "redirect_uri": {"https://evil.example/cb"}},
		"redirect prefix":   {"response_type": {"code"}, "client_id": {h.clientID}, "redirect_uri": {h.redirectURI + "/more"}},
		"missing client_id": {"response_type": {"code"}},
	} {
		r := h.get(c, "/o/authorize/?"+q.Encode())
		if r.status != http.StatusBadRequest || r.header.Get("Location") != "" || !strings.Contains(r.body, "<h2>Error: ") {
			t.Errorf("%s: %d %q", name, r.status, r.header.Get("Location"))
		}
	}
	// The others go to the redirect URI with the state.
	for name, tc := range map[string]struct {
		q    url.Values
		want string
	}{
		"response type": {url.Values{"response_type": {"token"}}, "unsupported_response_type"},
		"scope":         {url.Values{"response_type": {"code"}, "scope": {"read admin"}}, "invalid_scope"},
		"pkce method":   {url.Values{"response_type": {"code"}, "code_challenge": {strings.Repeat("a", 43)}, "code_challenge_method": {"S512"}}, "invalid_request"},
		"short pkce":    {url.Values{"response_type": {"code"}, "code_challenge": {"abc"}}, "invalid_request"},
	} {
		tc.q.Set("client_id", h.clientID)
		tc.q.Set("redirect_uri", h.redirectURI)
		tc.q.Set("state", "st")
		r := h.get(c, "/o/authorize/?"+tc.q.Encode())
		loc, _ := url.Parse(r.header.Get("Location"))
		if r.status != http.StatusFound || !strings.HasPrefix(loc.String(), h.redirectURI+"?") ||
			loc.Query().Get("error") != tc.want || loc.Query().Get("state") != "st" {
			t.Errorf("%s: %d %q", name, r.status, loc)
		}
	}
	// Deny on the consent page.
	q := url.Values{"response_type": {"code"}, "client_id": {h.clientID}, "redirect_uri": {h.redirectURI}, "state": {"d"}}
	page := h.get(c, "/o/authorize/?"+q.Encode())
	q.Set("csrfmiddlewaretoken", csrfFrom(t, page.body))
	q.Set("cancel", "Cancel")
	r := h.post(c, "/o/authorize/", q)
	loc, _ := url.Parse(r.header.Get("Location"))
	if r.status != http.StatusFound || loc.Query().Get("error") != "access_denied" || loc.Query().Get("state") != "d" || loc.Query().Get("code") != "" {
		t.Errorf("deny: %d %q", r.status, loc)
	}
	// Consent POST without CSRF token.
	q.Del("csrfmiddlewaretoken")
	q.Set("allow", "Authorize")
	expect(t, h.post(c, "/o/authorize/", q), http.StatusForbidden, csrfFailureBody)
}

func TestAuthorizationCodeFlowWithPKCE(t *testing.T) {
	h := newHarness(t)
	code, verifier := h.code("verifier-")
	if len(code) < 30 {
		t.Fatalf("code %q", code)
	}
	r := h.tokenCall(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {h.redirectURI}, "code_verifier": {verifier}})
	if r.status != http.StatusOK || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("token: %d %q %s", r.status, r.header.Get("Cache-Control"), r.body)
	}
	tok := decode(t, r.body)
	var keys []string
	for k := range tok {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if strings.Join(keys, ",") != "access_token,expires_in,refresh_token,scope,token_type" ||
		tok["token_type"] != "Bearer" || tok["scope"] != "read write" || tok["expires_in"] != float64(36000) {
		t.Fatalf("token response %s", r.body)
	}
	// DOT's tables hold the token with its checksum, the refresh token with a family.
	var checksumCol, family string
	var userID int64
	access := tok["access_token"].(string)
	if err := h.db.QueryRow(`SELECT token_checksum, user_id FROM oauth2_provider_accesstoken WHERE token = $1`, access).Scan(&checksumCol, &userID); err != nil {
		t.Fatal(err)
	}
	if checksumCol != checksum(access) || userID != h.userID {
		t.Errorf("access token row: %s %d", checksumCol, userID)
	}
	if err := h.db.QueryRow(`SELECT token_family FROM oauth2_provider_refreshtoken WHERE token = $1`, tok["refresh_token"]).Scan(&family); err != nil || len(family) != 36 {
		t.Errorf("refresh token family %q %v", family, err)
	}
	expect(t, h.userinfo(access), http.StatusOK,
		`{"id":1,"username":"Tenant Alpha_oauth-user","email":"oauth@example.com","first_name":"OAuth","last_name":"User","is_superuser":true,"authority":{"id":1,"name":"Thailand","code":"TH"}}`)
}

func TestCodeReplayRevokesTokens(t *testing.T) {
	h := newHarness(t)
	code, verifier := h.code("replay-")
	tok := h.exchange(code, verifier)
	r := h.tokenCall(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {h.redirectURI}, "code_verifier": {verifier}})
	expect(t, r, http.StatusBadRequest, invalidGrantCode)
	// RFC 6749 section 4.1.2: the tokens issued for the replayed code are revoked.
	expect(t, h.userinfo(tok["access_token"].(string)), http.StatusUnauthorized, invalidTokenBody)
	r = h.tokenCall(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}})
	expect(t, r, http.StatusBadRequest, invalidGrantRT)
}

func TestCodeExchangeFailures(t *testing.T) {
	h := newHarness(t)
	other, otherSecret := h.createApp(Application{Name: "Other", RedirectURIs: []string{h.redirectURI}})
	for name, tc := range map[string]struct {
		form    func(code, verifier string) url.Values
		advance time.Duration
		auth    string
	}{
		"wrong redirect_uri": {form: func(c, v string) url.Values {
			return url.Values{"code": {c}, "redirect_uri": {"http://127.0.0.1:9/other"}, "code_verifier": {v}}
		}},
		"wrong verifier": {form: func(c, v string) url.Values {
			return url.Values{"code": {c}, "redirect_uri": {h.redirectURI}, "code_verifier": {strings.Repeat("x", 50)}}
		}},
		"missing verifier": {form: func(c, v string) url.Values { return url.Values{"code": {c}, "redirect_uri": {h.redirectURI}} }},
		"expired code": {advance: CodeLifetime + time.Second, form: func(c, v string) url.Values {
			return url.Values{"code": {c}, "redirect_uri": {h.redirectURI}, "code_verifier": {v}}
		}},
		"other client": {auth: basicAuth(other, otherSecret), form: func(c, v string) url.Values {
			return url.Values{"code": {c}, "redirect_uri": {h.redirectURI}, "code_verifier": {v}}
		}},
		"unknown code": {form: func(c, v string) url.Values {
			return url.Values{"code": {"nope"}, "redirect_uri": {h.redirectURI}, "code_verifier": {v}}
		}},
	} {
		t.Run(name, func(t *testing.T) {
			code, verifier := h.code("fail-")
			h.advance(tc.advance)
			form := tc.form(code, verifier)
			form.Set("grant_type", "authorization_code")
			auth := tc.auth
			if auth == "" {
				auth = basicAuth(h.clientID, h.clientSecret)
			}
			expect(t, h.post(http.DefaultClient, "/o/token/", form, "Authorization", auth), http.StatusBadRequest, invalidGrantCode)
		})
	}
}

func TestCodeWithoutPKCEAndPlain(t *testing.T) {
	h := newHarness(t)
	c := h.browser()
	h.login(c, testUser, testPassword)
	// PKCE is optional (OHTK: PKCE_REQUIRED = False), but a verifier for a code issued
	// without a challenge is a downgrade and refused.
	u := h.authorize(c, url.Values{"response_type": {"code"}, "client_id": {h.clientID}})
	r := h.tokenCall(url.Values{"grant_type": {"authorization_code"}, "code": {u.Query().Get("code")}, "code_verifier": {strings.Repeat("v", 43)}})
	expect(t, r, http.StatusBadRequest, invalidGrantCode)
	u = h.authorize(c, url.Values{"response_type": {"code"}, "client_id": {h.clientID}})
	r = h.tokenCall(url.Values{"grant_type": {"authorization_code"}, "code": {u.Query().Get("code")}})
	if r.status != http.StatusOK {
		t.Fatalf("without PKCE: %d %s", r.status, r.body)
	}
	plain := strings.Repeat("p", 43)
	u = h.authorize(c, url.Values{"response_type": {"code"}, "client_id": {h.clientID}, "code_challenge": {plain}, "code_challenge_method": {"plain"}})
	r = h.tokenCall(url.Values{"grant_type": {"authorization_code"}, "code": {u.Query().Get("code")}, "code_verifier": {plain}})
	if r.status != http.StatusOK {
		t.Fatalf("plain PKCE: %d %s", r.status, r.body)
	}
}

func TestPublicClientSkipAuthorization(t *testing.T) {
	h := newHarness(t)
	id, secret := h.createApp(Application{Name: "Public", ClientType: ClientPublic, SkipAuthorization: true, RedirectURIs: []string{h.redirectURI}})
	if secret != "" {
		t.Fatalf("public client got a secret")
	}
	c := h.browser()
	h.login(c, testUser, testPassword)
	verifier, challenge := pkce("pub-")
	r := h.get(c, "/o/authorize/?"+url.Values{"response_type": {"code"}, "client_id": {id}, "redirect_uri": {h.redirectURI},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}}.Encode())
	if r.status != http.StatusFound {
		t.Fatalf("skip authorization: %d %s", r.status, r.body)
	}
	loc, _ := url.Parse(r.header.Get("Location"))
	form := url.Values{"grant_type": {"authorization_code"}, "client_id": {id}, "code": {loc.Query().Get("code")}, "redirect_uri": {h.redirectURI}}
	expect(t, h.post(http.DefaultClient, "/o/token/", form), http.StatusBadRequest, invalidGrantCode)
	form.Set("code_verifier", verifier)
	if r := h.post(http.DefaultClient, "/o/token/", form); r.status != http.StatusOK {
		t.Fatalf("public exchange: %d %s", r.status, r.body)
	}
}

func TestRefreshRotation(t *testing.T) {
	h := newHarness(t)
	code, verifier := h.code("refresh-")
	first := h.exchange(code, verifier)
	r := h.tokenCall(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first["refresh_token"].(string)}})
	if r.status != http.StatusOK {
		t.Fatalf("refresh: %d %s", r.status, r.body)
	}
	second := decode(t, r.body)
	if second["refresh_token"] == first["refresh_token"] || second["access_token"] == first["access_token"] || second["scope"] != "read write" {
		t.Fatalf("refresh did not rotate: %s", r.body)
	}
	// The old access token is gone, the new one works.
	expect(t, h.userinfo(first["access_token"].(string)), http.StatusUnauthorized, invalidTokenBody)
	if r := h.userinfo(second["access_token"].(string)); r.status != http.StatusOK {
		t.Fatalf("new token: %d", r.status)
	}
	// The rotated-out refresh token is rejected, and its reuse revokes the family.
	r = h.tokenCall(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first["refresh_token"].(string)}})
	expect(t, r, http.StatusBadRequest, invalidGrantRT)
	expect(t, h.userinfo(second["access_token"].(string)), http.StatusUnauthorized, invalidTokenBody)
	r = h.tokenCall(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {second["refresh_token"].(string)}})
	expect(t, r, http.StatusBadRequest, invalidGrantRT)
}

func TestRefreshScope(t *testing.T) {
	h := newHarness(t)
	code, verifier := h.code("scope-")
	tok := h.exchange(code, verifier)
	r := h.tokenCall(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}, "scope": {"read introspection"}})
	expect(t, r, http.StatusBadRequest, `{"error":"invalid_scope","error_description":"The requested scope is invalid, unknown, or malformed."}`)
	r = h.tokenCall(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}, "scope": {"read"}})
	if r.status != http.StatusOK || decode(t, r.body)["scope"] != "read" {
		t.Fatalf("narrowed refresh: %d %s", r.status, r.body)
	}
}

func TestRevokeThenUserinfo(t *testing.T) {
	h := newHarness(t)
	code, verifier := h.code("revoke-")
	tok := h.exchange(code, verifier)
	access := tok["access_token"].(string)
	if r := h.userinfo(access); r.status != http.StatusOK {
		t.Fatalf("before revoke: %d", r.status)
	}
	r := h.post(http.DefaultClient, "/o/revoke_token/", url.Values{"token": {access}, "token_type_hint": {"access_token"}},
		"Authorization", basicAuth(h.clientID, h.clientSecret))
	expect(t, r, http.StatusOK, "")
	expect(t, h.userinfo(access), http.StatusUnauthorized, invalidTokenBody)
	// The refresh token issued with it is revoked too.
	r = h.tokenCall(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}})
	expect(t, r, http.StatusBadRequest, invalidGrantRT)
	// Unknown tokens: still 200, nothing to tell.
	r = h.post(http.DefaultClient, "/o/revoke_token/", url.Values{"token": {"unknown"}}, "Authorization", basicAuth(h.clientID, h.clientSecret))
	expect(t, r, http.StatusOK, "")
	// Another client cannot revoke this client's tokens.
	code, verifier = h.code("revoke2-")
	tok = h.exchange(code, verifier)
	other, otherSecret := h.createApp(Application{Name: "Other", RedirectURIs: []string{h.redirectURI}})
	r = h.post(http.DefaultClient, "/o/revoke_token/", url.Values{"token": {tok["access_token"].(string)}}, "Authorization", basicAuth(other, otherSecret))
	expect(t, r, http.StatusOK, "")
	if r := h.userinfo(tok["access_token"].(string)); r.status != http.StatusOK {
		t.Fatalf("revoked by another client: %d", r.status)
	}
	// Revoking the refresh token ends its access token as well.
	r = h.post(http.DefaultClient, "/o/revoke_token/", url.Values{"token": {tok["refresh_token"].(string)}, "token_type_hint": {"refresh_token"}},
		"Authorization", basicAuth(h.clientID, h.clientSecret))
	expect(t, r, http.StatusOK, "")
	expect(t, h.userinfo(tok["access_token"].(string)), http.StatusUnauthorized, invalidTokenBody)
}

func TestIntrospect(t *testing.T) {
	h := newHarness(t)
	code, verifier := h.code("intro-")
	tok := h.exchange(code, verifier)
	access := tok["access_token"].(string)
	auth := basicAuth(h.clientID, h.clientSecret)
	exp := h.clock().Add(DefaultAccessTokenLifetime).Unix()
	active := `{"active":true,"client_id":"` + h.clientID + `","exp":` + strconv.FormatInt(exp, 10) + `,"scope":"read write","username":"oauth-user"}`
	expect(t, h.post(http.DefaultClient, "/o/introspect/", url.Values{"token": {access}}, "Authorization", auth), http.StatusOK, active)
	expect(t, h.post(http.DefaultClient, "/o/introspect/", url.Values{"token": {"nope"}}, "Authorization", auth), http.StatusOK, `{"active":false}`)
	// A resource server's Bearer token needs the introspection scope.
	expect(t, h.get(http.DefaultClient, "/o/introspect/?token="+access, "Authorization", "Bearer "+access), http.StatusUnauthorized,
		`{"error":"invalid_token","error_description":"The Bearer token is invalid, expired or lacks the introspection scope."}`)
	rs, rsSecret := h.createApp(Application{Name: "Resource server", GrantType: GrantClientCredentials})
	r := h.post(http.DefaultClient, "/o/token/", url.Values{"grant_type": {"client_credentials"}, "scope": {"introspection"}}, "Authorization", basicAuth(rs, rsSecret))
	if r.status != http.StatusOK {
		t.Fatalf("client credentials: %d %s", r.status, r.body)
	}
	rsToken := decode(t, r.body)
	if _, ok := rsToken["refresh_token"]; ok {
		t.Errorf("client_credentials issued a refresh token")
	}
	expect(t, h.get(http.DefaultClient, "/o/introspect/?token="+access, "Authorization", "Bearer "+rsToken["access_token"].(string)), http.StatusOK, active)
	// Expired tokens are inactive; no client credentials at all is invalid_client.
	h.advance(DefaultAccessTokenLifetime)
	expect(t, h.post(http.DefaultClient, "/o/introspect/", url.Values{"token": {access}}, "Authorization", auth), http.StatusOK, `{"active":false}`)
	expect(t, h.post(http.DefaultClient, "/o/introspect/", url.Values{"token": {access}}), http.StatusUnauthorized, invalidClientBody)
}

func TestUserinfoRefusals(t *testing.T) {
	h := newHarness(t)
	code, verifier := h.code("ui-")
	access := h.exchange(code, verifier)["access_token"].(string)
	r := h.get(http.DefaultClient, "/api/userinfo/")
	expect(t, r, http.StatusUnauthorized, invalidTokenBody)
	if r.header.Get("WWW-Authenticate") != `Bearer realm="api", error="invalid_token"` {
		t.Errorf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
	}
	// A deactivated user's unexpired token.
	h.exec(`UPDATE accounts_user SET is_active = 0 WHERE id = $1`, h.userID)
	expect(t, h.userinfo(access), http.StatusUnauthorized, invalidTokenBody)
	h.exec(`UPDATE accounts_user SET is_active = 1 WHERE id = $1`, h.userID)
	if r := h.userinfo(access); r.status != http.StatusOK {
		t.Fatalf("reactivated: %d", r.status)
	}
	// An expired token.
	h.advance(DefaultAccessTokenLifetime)
	expect(t, h.userinfo(access), http.StatusUnauthorized, invalidTokenBody)
}

func TestUserinfoPlainSuperuser(t *testing.T) {
	h := newHarness(t)
	h.exec(`DELETE FROM accounts_authorityuser`)
	code, verifier := h.code("plain-")
	access := h.exchange(code, verifier)["access_token"].(string)
	expect(t, h.userinfo(access), http.StatusOK,
		`{"id":1,"username":"Tenant Alpha_oauth-user","email":"oauth@example.com","first_name":"OAuth","last_name":"User","is_superuser":true,"authority":null}`)
}

func TestInvalidClient(t *testing.T) {
	h := newHarness(t)
	code, verifier := h.code("client-")
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {h.redirectURI}, "code_verifier": {verifier}}
	for name, auth := range map[string]string{
		"wrong secret":   basicAuth(h.clientID, "wrong"),
		"unknown client": basicAuth("nobody", h.clientSecret),
		"garbage basic":  "Basic !!!",
		"none":           "",
	} {
		r := h.post(http.DefaultClient, "/o/token/", form, "Authorization", auth)
		expect(t, r, http.StatusUnauthorized, invalidClientBody)
		if r.header.Get("WWW-Authenticate") == "" || r.header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: headers %v", name, r.header)
		}
	}
	// Credentials in the body work like Basic ones, and the code is still good.
	form.Set("client_id", h.clientID)
	form.Set("client_secret", h.clientSecret)
	if r := h.post(http.DefaultClient, "/o/token/", form); r.status != http.StatusOK {
		t.Fatalf("body credentials: %d %s", r.status, r.body)
	}
}

func TestClientSecretRateLimit(t *testing.T) {
	h := newHarness(t)
	form := url.Values{"grant_type": {"client_credentials"}}
	for range 5 {
		expect(t, h.post(http.DefaultClient, "/o/token/", form, "Authorization", basicAuth(h.clientID, "wrong")), http.StatusUnauthorized, invalidClientBody)
	}
	expect(t, h.post(http.DefaultClient, "/o/token/", form, "Authorization", basicAuth(h.clientID, h.clientSecret)), http.StatusTooManyRequests,
		`{"error":"slow_down","error_description":"Too many failed client authentications. Try again later."}`)
}

func TestPasswordGrant(t *testing.T) {
	h := newHarness(t)
	id, _, err := CreateApplication(t.Context(), h.db, Application{Name: "Mobile", GrantType: GrantPassword, ClientID: "mobile", ClientSecret: "plain-secret"})
	if err != nil || id != "mobile" {
		t.Fatal(id, err)
	}
	if _, _, err := CreateApplication(t.Context(), h.db, Application{Name: "Again", GrantType: GrantPassword, ClientID: "mobile"}); !errors.Is(err, ohtkdb.ErrAlreadyExists) {
		t.Fatalf("duplicate client id: %v", err)
	}
	// A secret stored in plain text (hash_client_secret = false), as DOT allows.
	h.exec(`UPDATE oauth2_provider_application SET client_secret = 'plain-secret', hash_client_secret = 0 WHERE client_id = 'mobile'`)
	form := url.Values{"grant_type": {"password"}, "username": {testUser}, "password": {testPassword}, "client_id": {"mobile"}, "client_secret": {"plain-secret"}, "scope": {"read write"}}
	r := h.post(http.DefaultClient, "/o/token/", form)
	if r.status != http.StatusOK {
		t.Fatalf("password grant: %d %s", r.status, r.body)
	}
	form.Set("password", "wrong")
	expect(t, h.post(http.DefaultClient, "/o/token/", form), http.StatusBadRequest, `{"error":"invalid_grant","error_description":"Invalid credentials given."}`)
	// The code client may not use the password grant.
	form.Set("password", testPassword)
	r = h.post(http.DefaultClient, "/o/token/", form, "Authorization", basicAuth(h.clientID, h.clientSecret))
	if r.status != http.StatusBadRequest {
		t.Fatalf("mixed client auth: %d %s", r.status, r.body)
	}
	form.Del("client_id")
	form.Del("client_secret")
	expect(t, h.post(http.DefaultClient, "/o/token/", form, "Authorization", basicAuth(h.clientID, h.clientSecret)), http.StatusBadRequest,
		`{"error":"unauthorized_client","error_description":"The client is not allowed to use this grant type."}`)
}

func TestTokenRequestErrors(t *testing.T) {
	h := newHarness(t)
	auth := basicAuth(h.clientID, h.clientSecret)
	expect(t, h.post(http.DefaultClient, "/o/token/", url.Values{}, "Authorization", auth), http.StatusBadRequest,
		`{"error":"invalid_request","error_description":"Missing grant type."}`)
	expect(t, h.post(http.DefaultClient, "/o/token/", url.Values{"grant_type": {"implicit"}}, "Authorization", auth), http.StatusBadRequest,
		`{"error":"unsupported_grant_type","error_description":"The grant type is not supported."}`)
	expect(t, h.post(http.DefaultClient, "/o/token/", url.Values{"grant_type": {"authorization_code"}}, "Authorization", auth), http.StatusBadRequest,
		`{"error":"invalid_request","error_description":"Missing code parameter."}`)
}

func TestServers(t *testing.T) {
	h := newHarness(t)
	if _, err := h.store.CreateTenant(t.Context(), "beta", "เบต้า", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := h.store.Public().Exec(`INSERT INTO tenants_externaldomain (name, domain) VALUES ('Lao PDR', 'lao.example.org')`); err != nil {
		t.Fatal(err)
	}
	expect(t, h.get(http.DefaultClient, "/api/servers/"), http.StatusOK,
		`{"tenants":[{"label":"Tenant Alpha","domain":"alpha.example.org","external":false},{"label":"Lao PDR","domain":"lao.example.org","external":true}]}`)
}

func TestLogout(t *testing.T) {
	h := newHarness(t)
	c := h.browser()
	h.login(c, testUser, testPassword)
	q := url.Values{"response_type": {"code"}, "client_id": {h.clientID}}
	if r := h.get(c, "/o/authorize/?"+q.Encode()); r.status != http.StatusOK {
		t.Fatalf("consent page: %d", r.status)
	}
	page := h.get(c, "/accounts/logout/")
	expect(t, h.post(c, "/accounts/logout/", url.Values{}), http.StatusForbidden, csrfFailureBody)
	if r := h.post(c, "/accounts/logout/", url.Values{"csrfmiddlewaretoken": {csrfFrom(t, page.body)}}); r.status != http.StatusFound {
		t.Fatalf("logout: %d", r.status)
	}
	if r := h.get(c, "/o/authorize/?"+q.Encode()); r.status != http.StatusFound || !strings.HasPrefix(r.header.Get("Location"), "/accounts/login/") {
		t.Fatalf("after logout: %d %q", r.status, r.header.Get("Location"))
	}
}

func TestLoginRateLimitPerAddress(t *testing.T) {
	h := newHarness(t)
	now := ohtkdb.FormatTime(h.clock())
	for i := range 4 {
		h.exec(`INSERT INTO accounts_user (password, username, date_joined) VALUES ($1, $2, $3)`,
			djangohash.Make("pw", 1000), "user"+strconv.Itoa(i), now)
	}
	c := h.browser()
	// Cycling through usernames does not escape the limit: one address gets 4 × 5 failures.
	for i := range 4 {
		for range 5 {
			if r := h.login(c, "user"+strconv.Itoa(i), "wrong"); r.status != http.StatusOK {
				t.Fatalf("user%d: %d", i, r.status)
			}
		}
	}
	expect(t, h.login(c, testUser, "wrong"), http.StatusTooManyRequests, tooManySignInsBody)
}

func TestSessionExpiry(t *testing.T) {
	h := newHarness(t)
	c := h.browser()
	h.login(c, testUser, testPassword)
	q := url.Values{"response_type": {"code"}, "client_id": {h.clientID}}
	if r := h.get(c, "/o/authorize/?"+q.Encode()); r.status != http.StatusOK {
		t.Fatalf("consent page: %d", r.status)
	}
	h.advance(DefaultSessionLifetime)
	if r := h.get(c, "/o/authorize/?"+q.Encode()); r.status != http.StatusFound || !strings.HasPrefix(r.header.Get("Location"), "/accounts/login/?next=") {
		t.Fatalf("expired session: %d %q", r.status, r.header.Get("Location"))
	}
}

func TestSecureCookies(t *testing.T) {
	h := newHarness(t)
	h.srv.opts.SecureCookies = true
	r := h.get(h.browser(), "/accounts/login/")
	if c := r.header.Get("Set-Cookie"); !strings.Contains(c, "; Secure") || !strings.Contains(c, "HttpOnly") {
		t.Fatalf("cookie %q", c)
	}
}

// TestSecretHashAcceptedByDjango checks with Django itself that the client secret hashes
// this package stores are ones DOT can verify.
func TestSecretHashAcceptedByDjango(t *testing.T) {
	h := newHarness(t)
	var stored string
	if err := h.db.QueryRow(`SELECT client_secret FROM oauth2_provider_application WHERE client_id = $1`, h.clientID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	script := `import sys
from django.conf import settings
settings.configure()
from django.contrib.auth.hashers import check_password
print(check_password(sys.argv[1], sys.argv[2]), check_password("wrong", sys.argv[2]))`
	out, err := exec.CommandContext(t.Context(), "/usr/bin/python3", "-c", script, h.clientSecret, stored).CombinedOutput()
	if err != nil {
		t.Fatalf("Django (python3-django) is needed: %v\n%s", err, out)
	}
	if string(out) != "True False\n" {
		t.Fatalf("Django says %q", out)
	}
}

func TestConcurrentRefreshOneWins(t *testing.T) {
	h := newHarness(t)
	code, verifier := h.code("race-")
	tok := h.exchange(code, verifier)
	const n = 6
	statuses := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			r := h.post(http.DefaultClient, "/o/token/", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}},
				"Authorization", basicAuth(h.clientID, h.clientSecret))
			statuses <- r.status
		})
	}
	wg.Wait()
	close(statuses)
	ok := 0
	for s := range statuses {
		switch s {
		case http.StatusOK:
			ok++
		case http.StatusBadRequest:
		default:
			t.Errorf("status %d", s)
		}
	}
	if ok != 1 {
		t.Fatalf("%d of %d concurrent refreshes succeeded, want exactly 1", ok, n)
	}
}

// TestLoginUnknownUserCostsWhatKnownUsersCost checks that the sign-in page checks a missing
// username against a stand-in with the cost of the tenant's stored hashes (here 1000
// iterations, not Django's default), so the time a failed sign-in takes does not tell
// whether the username exists.
func TestLoginUnknownUserCostsWhatKnownUsersCost(t *testing.T) {
	h := newHarness(t)
	cost := func() string {
		algo, n := h.srv.standIn(t.Context(), h.db).Cost()
		return fmt.Sprintf("%s$%d", algo, n)
	}
	if r := h.login(h.browser(), "no-such-user", "guess"); r.status != http.StatusOK || !strings.Contains(r.body, "Please enter a correct username and password") {
		t.Fatalf("unknown user: %d %s", r.status, r.body)
	}
	if got := cost(); got != "pbkdf2_sha256$1000" {
		t.Fatalf("stand-in after an unknown user first: %s, want pbkdf2_sha256$1000", got)
	}
	h.exec(`INSERT INTO accounts_user (password, is_superuser, username, date_joined) VALUES ($1, 0, 'older', $2)`,
		djangohash.Make("older-pass", 2000), ohtkdb.FormatTime(h.now))
	h.login(h.browser(), "older", "guess")
	if got := cost(); got != "pbkdf2_sha256$2000" {
		t.Fatalf("stand-in after checking a 2000-iteration hash: %s", got)
	}
	// A user whose password is unusable costs a stand-in check too, and cannot sign in.
	h.exec(`INSERT INTO accounts_user (password, is_superuser, username, date_joined) VALUES ('!unusable', 0, 'no-password', $1)`, ohtkdb.FormatTime(h.now))
	if r := h.login(h.browser(), "no-password", "!unusable"); !strings.Contains(r.body, "Please enter a correct username and password") {
		t.Fatalf("unusable password: %d %s", r.status, r.body)
	}
	if got := cost(); got != "pbkdf2_sha256$2000" {
		t.Fatalf("stand-in after an unusable hash: %s", got)
	}
}
