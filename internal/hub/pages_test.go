package hub

import (
	"net/http"
	"strings"
	"testing"
)

// TestLogoAndCSPReport: the logo single-user pages show is served, and the CSP reports their
// browsers send are accepted, as JupyterHub does.
func TestLogoAndCSPReport(t *testing.T) {
	h, _, _ := loginHub(t, "/notebooks/")
	b := newBrowser(t)
	resp, body := b.get(h.URL + "hub/logo")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/svg+xml" || !strings.HasPrefix(body, "<svg") ||
		!strings.Contains(resp.Header.Get("Cache-Control"), "max-age=") {
		t.Errorf("logo: %s %q %q %.40s", resp.Status, resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"), body)
	}

	report := `{"csp-report":{"document-uri":"http://127.0.0.1/notebooks/user/bunny_alice/tree","violated-directive":"frame-ancestors","blocked-uri":"https://evil.example"}}`
	post := func(body string, crossSite bool) *http.Response {
		req, _ := http.NewRequest("POST", h.URL+"hub/security/csp-report", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/csp-report")
		if crossSite {
			// A report about a user server on another origin.
			req.Header.Set("Origin", "https://bunny-alice.users.example")
			req.Header.Set("Sec-Fetch-Site", "cross-site")
		}
		resp, _ := b.do(req)
		return resp
	}
	if resp := post(report, false); resp.StatusCode != http.StatusNoContent {
		t.Errorf("CSP report: %s", resp.Status)
	}
	if resp := post(report, true); resp.StatusCode != http.StatusNoContent {
		t.Errorf("cross-site CSP report: %s", resp.Status)
	}
	if resp := post(strings.Repeat("x", 64<<10), false); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized CSP report: %s", resp.Status)
	}
	if resp, _ := b.get(h.URL + "hub/security/csp-report"); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET csp-report: %s", resp.Status)
	}
}
