package api

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ohtkhub/ohtkhub/internal/djangohash"
	"github.com/ohtkhub/ohtkhub/internal/oauthserver"
	"github.com/ohtkhub/ohtkhub/internal/ohtkdb"
)

// debianPython is Debian's interpreter, which has the packages installed by apt
// (python3-authlib, python3-requests-oauthlib); python3 on PATH may be another one.
const debianPython = "/usr/bin/python3"

// TestInteropRequestsOAuthlib runs testdata/oauthclient/interop.py against a live api server:
// Debian's python3-authlib and python3-requests-oauthlib go through the authorization code
// flow with PKCE (filling in the login form and the consent page), exchange, refresh with
// rotation, introspection, revocation, userinfo and the Export API. It fails when Python or
// a package is missing: .ci/run installs them.
func TestInteropRequestsOAuthlib(t *testing.T) {
	if _, err := os.Stat(debianPython); err != nil {
		t.Fatalf("%s is missing: install python3-requests-oauthlib and python3-authlib", debianPython)
	}
	script, err := filepath.Abs("../../testdata/oauthclient/interop.py")
	if err != nil {
		t.Fatal(err)
	}
	a := newTestAPI(t)
	db := a.db("alpha")
	now := ohtkdb.FormatTime(time.Now())
	// A Thai username with a space, to carry Unicode through the login form and the tokens.
	const username, password = "สมหญิง รักษ์ดี", "ขอบคุณ-pass-2026"
	if _, err := db.Exec(`INSERT INTO accounts_authority (code, name, created_at, updated_at) VALUES ('CM', 'เชียงใหม่', $1, $1)`, now); err != nil {
		t.Fatal(err)
	}
	res, err := db.Exec(`INSERT INTO accounts_user (password, is_superuser, username, first_name, last_name, email, date_joined)
		VALUES ($1, 0, $2, 'สมหญิง', 'รักษ์ดี', 'somying@example.org', $3)`, djangohash.Make(password, 1000), username, now)
	if err != nil {
		t.Fatal(err)
	}
	userID, _ := res.LastInsertId()
	if _, err := db.Exec(`INSERT INTO accounts_authorityuser (user_ptr_id, authority_id, role) VALUES ($1, 1, 'OFC')`, userID); err != nil {
		t.Fatal(err)
	}
	const redirect = "http://127.0.0.1:1/hub/alpha/oauth_callback"
	clientID, secret, err := oauthserver.CreateApplication(t.Context(), db, oauthserver.Application{
		Name: "ohtkhub notebooks", RedirectURIs: []string{redirect}})
	if err != nil {
		t.Fatal(err)
	}
	userinfo := `{"id": ` + strconv.FormatInt(userID, 10) + `, "username": "Tenant Alpha_` + username + `", "email": "somying@example.org", ` +
		`"first_name": "สมหญิง", "last_name": "รักษ์ดี", "is_superuser": false, "authority": {"id": 1, "name": "เชียงใหม่", "code": "CM"}}`

	for _, lib := range []string{"authlib", "requests-oauthlib"} {
		t.Run(lib, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, debianPython, script, lib)
			cmd.Env = append(os.Environ(),
				"OHTK_BASE="+a.ts.URL+"/t/alpha",
				"OHTK_CLIENT_ID="+clientID,
				"OHTK_CLIENT_SECRET="+secret,
				"OHTK_REDIRECT_URI="+redirect,
				"OHTK_USERNAME="+username,
				"OHTK_PASSWORD="+password,
				"OHTK_EXPECT_USERINFO="+userinfo,
				"OHTK_EXPECT_TENANT=alpha",
				// Both libraries refuse plain http unless told it is a test.
				"AUTHLIB_INSECURE_TRANSPORT=1",
				"OAUTHLIB_INSECURE_TRANSPORT=1",
				"PYTHONPATH=",
				"PYTHONDONTWRITEBYTECODE=1",
			)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("interop.py %s: %v\n%s", lib, err, out)
			}
			if want := "interop: " + lib + ": ok\n"; string(out) != want {
				t.Fatalf("interop.py %s output %q, want %q", lib, out, want)
			}
		})
	}
}
