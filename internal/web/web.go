// Package web holds the hub's pages: server-rendered templates and embedded static assets
// (nothing is loaded from a CDN).
package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"time"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Page is the data every page template gets.
type Page struct {
	Base  string // the hub's base path, e.g. "/" or "/notebooks/"
	User  string // the signed-in hub user, empty when anonymous
	Admin bool
	XSRF  string
	Title string
	Data  any // page specific
}

// Renderer renders the hub's pages.
type Renderer struct {
	pages map[string]*template.Template
	log   *slog.Logger
}

var funcs = template.FuncMap{
	// pathEscape percent-encodes a user name for a URL path segment.
	"pathEscape":  PathEscape,
	"queryEscape": url.QueryEscape,
}

// NewRenderer parses the templates.
func NewRenderer(log *slog.Logger) (*Renderer, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	r := &Renderer{pages: map[string]*template.Template{}, log: log}
	for _, n := range names {
		if n == "templates/layout.html" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("web: %s: %w", n, err)
		}
		r.pages[n[len("templates/"):len(n)-len(".html")]] = t
	}
	return r, nil
}

// Render writes page name with status.
func (r *Renderer) Render(w http.ResponseWriter, status int, name string, p Page) {
	t, ok := r.pages[name]
	if !ok {
		http.Error(w, "no such page", http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, p); err != nil {
		r.log.Error("render page", "page", name, "err", err)
		http.Error(w, "page error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// ErrorData is the data of the error page.
type ErrorData struct {
	Status  int
	Message string
}

// Error renders the error page with a message for the user.
func (r *Renderer) Error(w http.ResponseWriter, p Page, status int, message string) {
	p.Title = http.StatusText(status)
	p.Data = ErrorData{Status: status, Message: message}
	r.Render(w, status, "error", p)
}

// Static serves the embedded assets (mount under {base}hub/static/).
func Static() http.Handler {
	sub, _ := fs.Sub(staticFS, "static")
	h := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		h.ServeHTTP(w, r)
	})
}

// Logo serves the hub's logo (mount at {base}hub/logo, where JupyterHub serves its logo and
// single-user pages look for it).
func Logo() http.Handler {
	logo, err := staticFS.ReadFile("static/logo.svg")
	if err != nil {
		panic(err) // embedded at build time
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/svg+xml")
		w.Header().Set("Cache-Control", "public, max-age=86400")
		// An SVG opened on its own is a document: no scripts, whatever it holds.
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
		http.ServeContent(w, r, "logo.svg", time.Time{}, bytes.NewReader(logo))
	})
}

// PathEscape percent-encodes s as Python's urllib.parse.quote(s, safe="@~") does, which is how
// JupyterHub writes user names in URLs: letters, digits, "_.-~@" stay, everything else is
// encoded from UTF-8.
func PathEscape(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-' || c == '~' || c == '@' {
			b = append(b, c)
			continue
		}
		b = append(b, '%', hexDigits[c>>4], hexDigits[c&15])
	}
	return string(b)
}
