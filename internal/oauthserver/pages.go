package oauthserver

import (
	"bytes"
	"html/template"
	"net/http"
)

// The pages are deliberately plain: they exist so that people can approve notebook access,
// and scripts (tests, interoperability checks) can drive them by their Django field names.
var pages = template.Must(template.New("pages").Parse(`
{{define "head"}}<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · {{.TenantName}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem}
label,input,button{display:block;margin:.4rem 0}input{width:100%;padding:.4rem}.error{color:#b00020}
.buttons{display:flex;gap:1rem}</style></head><body>
<h1>{{.TenantName}}</h1>{{end}}

{{define "login"}}{{template "head" .}}
{{if .User}}<p>Signed in as <strong>{{.User}}</strong>.</p>
<form method="post" action="{{.LogoutURL}}"><input type="hidden" name="csrfmiddlewaretoken" value="{{.CSRF}}">
<button type="submit">Sign out</button></form>{{end}}
<h2>Sign in</h2>
{{if .Error}}<p class="error" role="alert">{{.Error}}</p>{{end}}
<form method="post" action="{{.Action}}">
<input type="hidden" name="csrfmiddlewaretoken" value="{{.CSRF}}">
<input type="hidden" name="next" value="{{.Next}}">
<label for="id_username">Username</label><input type="text" name="username" id="id_username" value="{{.Username}}" autocomplete="username" required autofocus>
<label for="id_password">Password</label><input type="password" name="password" id="id_password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form></body></html>{{end}}

{{define "logout"}}{{template "head" .}}
<h2>Sign out</h2>
<form method="post" action="{{.Action}}"><input type="hidden" name="csrfmiddlewaretoken" value="{{.CSRF}}">
<input type="hidden" name="next" value="{{.Next}}"><button type="submit">Sign out</button></form></body></html>{{end}}

{{define "consent"}}{{template "head" .}}
<h2>Authorize {{.AppName}}?</h2>
<p>Signed in as <strong>{{.User}}</strong>. The application asks for:</p>
<ul>{{range .Scopes}}<li>{{.}}</li>{{end}}</ul>
<form method="post" action="{{.Action}}" id="authorizationForm">
<input type="hidden" name="csrfmiddlewaretoken" value="{{.CSRF}}">
{{range .Hidden}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">{{end}}
<div class="buttons"><button type="submit" name="allow" value="Authorize">Authorize</button>
<button type="submit" name="cancel" value="Cancel">Deny</button></div>
</form></body></html>{{end}}

{{define "error"}}{{template "head" .}}
<h2>Error: {{.Error}}</h2><p>{{.Description}}</p></body></html>{{end}}
`))

// hiddenField is one hidden input of the consent form.
type hiddenField struct{ Name, Value string }

// pageData is what the page templates read; each page uses a few fields.
type pageData struct {
	Title, TenantName       string
	Action, LogoutURL, Next string
	CSRF, User, Username    string
	Error, Description      string
	AppName                 string
	Scopes                  []string
	Hidden                  []hiddenField
}

// renderPage writes one of the templates above. Pages may not be framed (clickjacking on
// the consent button) nor cached (they carry CSRF tokens).
func renderPage(w http.ResponseWriter, status int, name string, d pageData) {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, d); err != nil {
		writeText(w, http.StatusInternalServerError, "Internal server error.")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "same-origin")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}
