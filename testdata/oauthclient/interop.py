#!/usr/bin/python3
"""Drive ohtkhub's OAuth2 provider with OAuth client libraries nobody here wrote.

usage: interop.py {authlib|requests-oauthlib}

Reads its parameters from the environment: OHTK_BASE (the tenant's base URL, e.g.
http://127.0.0.1:8001/t/alpha), OHTK_CLIENT_ID, OHTK_CLIENT_SECRET, OHTK_REDIRECT_URI,
OHTK_USERNAME, OHTK_PASSWORD, OHTK_EXPECT_USERINFO (the exact userinfo JSON) and
OHTK_EXPECT_TENANT (the tenant's schema name, for the Export API's "me").

Runs the authorization code flow with PKCE S256 (the script fills in the login form and
the consent page like a browser), then refresh (with rotation), introspection, the
userinfo and Export API calls, and revocation. Exits non-zero at the first mismatch.
"""

import base64
import hashlib
import html
import json
import os
import re
import secrets
import sys
import urllib.parse

import requests

BASE = os.environ["OHTK_BASE"].rstrip("/")
CLIENT_ID = os.environ["OHTK_CLIENT_ID"]
CLIENT_SECRET = os.environ["OHTK_CLIENT_SECRET"]
REDIRECT_URI = os.environ["OHTK_REDIRECT_URI"]
USERNAME = os.environ["OHTK_USERNAME"]
PASSWORD = os.environ["OHTK_PASSWORD"]
EXPECT_USERINFO = json.loads(os.environ["OHTK_EXPECT_USERINFO"])
EXPECT_TENANT = os.environ["OHTK_EXPECT_TENANT"]

AUTHORIZE = BASE + "/o/authorize/"
TOKEN = BASE + "/o/token/"
INTROSPECT = BASE + "/o/introspect/"
REVOKE = BASE + "/o/revoke_token/"
USERINFO = BASE + "/api/userinfo/"
EXPORT_ME = BASE + "/api/export/v1/me"


def fail(msg):
    print("interop: FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def absolute(location):
    return urllib.parse.urljoin(BASE + "/", location)


def hidden_inputs(page):
    return {html.unescape(n): html.unescape(v)
            for n, v in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page)}


def browser_login_and_consent(authorization_url):
    """Follow the authorization URL as a browser would; return the final redirect URL."""
    browser = requests.Session()
    r = browser.get(authorization_url, allow_redirects=False)
    check(r.status_code == 302, "authorize without session: want 302, got %d" % r.status_code)
    login_url = absolute(r.headers["Location"])
    check(urllib.parse.urlparse(login_url).path == urllib.parse.urlparse(BASE).path + "/accounts/login/",
          "authorize did not send to the login page: " + login_url)

    r = browser.get(login_url)
    check(r.status_code == 200, "login page: %d" % r.status_code)
    form = hidden_inputs(r.text)
    check("csrfmiddlewaretoken" in form and form.get("next"), "login form lacks csrf token or next: %r" % form)
    action = absolute(re.search(r'<form method="post" action="([^"]+)">', r.text).group(1))

    # Without the CSRF token the form is refused.
    bad = dict(form, username=USERNAME, password=PASSWORD)
    del bad["csrfmiddlewaretoken"]
    r = browser.post(action, data=bad, allow_redirects=False)
    check(r.status_code == 403, "login without csrf token: want 403, got %d" % r.status_code)

    r = browser.post(action, data=dict(form, username=USERNAME, password=PASSWORD), allow_redirects=False)
    check(r.status_code == 302, "login: want 302, got %d: %s" % (r.status_code, r.text[:300]))
    check("sessionid" in browser.cookies, "no session cookie after login")
    next_url = absolute(r.headers["Location"])

    r = browser.get(next_url, allow_redirects=False)
    if r.status_code == 200:  # the consent page
        consent = hidden_inputs(r.text)
        check("csrfmiddlewaretoken" in consent, "consent form lacks csrf token")
        action = absolute(re.search(r'<form method="post" action="([^"]+)" id="authorizationForm">', r.text).group(1))
        r = browser.post(action, data=dict(consent, allow="Authorize"), allow_redirects=False)
    check(r.status_code == 302, "authorize: want 302, got %d: %s" % (r.status_code, r.text[:300]))
    location = r.headers["Location"]
    check(location.startswith(REDIRECT_URI + "?"), "redirected elsewhere: " + location)
    return location


def check_resources(access_token, label):
    auth = {"Authorization": "Bearer " + access_token}
    r = requests.get(USERINFO, headers=auth)
    check(r.status_code == 200, "%s: userinfo: %d %s" % (label, r.status_code, r.text))
    check(r.json() == EXPECT_USERINFO, "%s: userinfo %r != %r" % (label, r.json(), EXPECT_USERINFO))
    check(list(r.json().keys()) == list(EXPECT_USERINFO.keys()), "%s: userinfo key order %r" % (label, list(r.json())))
    r = requests.get(EXPORT_ME, headers=auth)
    check(r.status_code == 200, "%s: export me: %d %s" % (label, r.status_code, r.text))
    me = r.json()
    check(me.get("username") == USERNAME and me.get("tenant") == EXPECT_TENANT and me.get("auth_method") == "bearer",
          "%s: export me: %r" % (label, me))


def introspect(token):
    r = requests.post(INTROSPECT, data={"token": token}, auth=(CLIENT_ID, CLIENT_SECRET))
    check(r.status_code == 200, "introspect: %d %s" % (r.status_code, r.text))
    return r.json()


def run_authlib():
    from authlib.common.security import generate_token
    from authlib.integrations.base_client.errors import OAuthError
    from authlib.integrations.requests_client import OAuth2Session

    client = OAuth2Session(CLIENT_ID, CLIENT_SECRET, scope="read write", redirect_uri=REDIRECT_URI,
                           code_challenge_method="S256", token_endpoint_auth_method="client_secret_basic")
    verifier = generate_token(64)
    url, state = client.create_authorization_url(AUTHORIZE, code_verifier=verifier)
    location = browser_login_and_consent(url)
    query = urllib.parse.parse_qs(urllib.parse.urlparse(location).query)
    check(query.get("state") == [state], "state not echoed: %r" % query)

    token = client.fetch_token(TOKEN, authorization_response=location, code_verifier=verifier)
    check(token["token_type"] == "Bearer" and token["scope"] == "read write" and token["expires_in"] == 36000,
          "token response: %r" % token)
    check_resources(token["access_token"], "first token")

    # A second exchange of the same code is refused.
    try:
        client.fetch_token(TOKEN, authorization_response=location, code_verifier=verifier)
        fail("code replay accepted")
    except OAuthError as e:
        check(e.error == "invalid_grant", "code replay: %s" % e.error)

    # The replay revoked the first tokens; start again for the rest.
    url, state = client.create_authorization_url(AUTHORIZE, code_verifier=verifier)
    location = browser_login_and_consent(url)
    token = client.fetch_token(TOKEN, authorization_response=location, code_verifier=verifier)
    old_refresh = token["refresh_token"]

    new = client.refresh_token(TOKEN, refresh_token=old_refresh)
    check(new["refresh_token"] != old_refresh and new["access_token"] != token["access_token"], "refresh did not rotate")
    check_resources(new["access_token"], "refreshed token")

    info = introspect(new["access_token"])
    check(info.get("active") is True and info.get("client_id") == CLIENT_ID and info.get("username") == USERNAME
          and info.get("scope") == "read write" and isinstance(info.get("exp"), int), "introspection: %r" % info)
    check(introspect(token["access_token"]) == {"active": False}, "rotated-out access token still active")

    r = client.revoke_token(REVOKE, token=new["access_token"], token_type_hint="access_token")
    check(r.status_code == 200, "revoke: %d %s" % (r.status_code, r.text))
    check(introspect(new["access_token"]) == {"active": False}, "revoked token still active")
    r = requests.get(USERINFO, headers={"Authorization": "Bearer " + new["access_token"]})
    check(r.status_code == 401, "userinfo with a revoked token: %d" % r.status_code)
    r = requests.get(EXPORT_ME, headers={"Authorization": "Bearer " + new["access_token"]})
    check(r.status_code == 401, "export with a revoked token: %d" % r.status_code)

    try:
        client.refresh_token(TOKEN, refresh_token=old_refresh)
        fail("rotated-out refresh token accepted")
    except OAuthError as e:
        check(e.error == "invalid_grant", "rotated-out refresh token: %s" % e.error)


def run_requests_oauthlib():
    from oauthlib.oauth2.rfc6749.errors import InvalidGrantError
    from requests.auth import HTTPBasicAuth
    from requests_oauthlib import OAuth2Session

    # requests-oauthlib 1.3 has no PKCE helper: the challenge and verifier travel as extra
    # parameters, which it passes through unchanged.
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    session = OAuth2Session(CLIENT_ID, redirect_uri=REDIRECT_URI, scope=["read", "write"])
    url, state = session.authorization_url(AUTHORIZE, code_challenge=challenge, code_challenge_method="S256")
    location = browser_login_and_consent(url)
    basic = HTTPBasicAuth(CLIENT_ID, CLIENT_SECRET)
    token = session.fetch_token(TOKEN, authorization_response=location, auth=basic, code_verifier=verifier)
    check(token["token_type"] == "Bearer" and token["scope"] == ["read", "write"], "token response: %r" % token)
    check_resources(token["access_token"], "first token")
    r = session.get(USERINFO)
    check(r.status_code == 200 and r.json() == EXPECT_USERINFO, "session userinfo: %d" % r.status_code)

    old_refresh = token["refresh_token"]
    new = session.refresh_token(TOKEN, refresh_token=old_refresh, auth=basic)
    check(new["refresh_token"] != old_refresh, "refresh did not rotate")
    check_resources(new["access_token"], "refreshed token")
    try:
        OAuth2Session(CLIENT_ID).refresh_token(TOKEN, refresh_token=old_refresh, auth=basic)
        fail("rotated-out refresh token accepted")
    except InvalidGrantError:
        pass

    # The reuse of the rotated-out refresh token revoked its family (the new token too).
    check(introspect(new["access_token"]) == {"active": False}, "family not revoked after refresh token reuse")

    url, state = session.authorization_url(AUTHORIZE, code_challenge=challenge, code_challenge_method="S256")
    location = browser_login_and_consent(url)
    token = session.fetch_token(TOKEN, authorization_response=location, auth=basic, code_verifier=verifier)
    info = introspect(token["access_token"])
    check(info.get("active") is True and info.get("username") == USERNAME, "introspection: %r" % info)
    r = requests.post(REVOKE, data={"token": token["refresh_token"], "token_type_hint": "refresh_token"}, auth=basic)
    check(r.status_code == 200, "revoke: %d" % r.status_code)
    r = session.get(USERINFO)
    check(r.status_code == 401, "userinfo after revoking the refresh token: %d" % r.status_code)


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in ("authlib", "requests-oauthlib"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    if sys.argv[1] == "authlib":
        run_authlib()
    else:
        run_requests_oauthlib()
    print("interop: %s: ok" % sys.argv[1])


if __name__ == "__main__":
    main()
