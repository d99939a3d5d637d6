package oauthserver

import (
	"encoding/json"
	"net/http"
)

// oauthError is an RFC 6749 section 5.2 error. It is written by writeOAuthError only.
type oauthError struct {
	Code        string
	Description string
}

func (e *oauthError) Error() string { return e.Code + ": " + e.Description }

func errInvalidRequest(desc string) *oauthError { return &oauthError{"invalid_request", desc} }
func errInvalidGrant(desc string) *oauthError   { return &oauthError{"invalid_grant", desc} }
func errInvalidClient() *oauthError {
	return &oauthError{"invalid_client", "Client authentication failed."}
}
func errUnauthorizedClient() *oauthError {
	return &oauthError{"unauthorized_client", "The client is not allowed to use this grant type."}
}
func errInvalidScope() *oauthError {
	return &oauthError{"invalid_scope", "The requested scope is invalid, unknown, or malformed."}
}

// writeOAuthError writes e as DOT does: JSON, no caching, and for invalid_client a 401 with
// a WWW-Authenticate challenge (RFC 6749 section 5.2).
func writeOAuthError(w http.ResponseWriter, e *oauthError) {
	status := http.StatusBadRequest
	switch e.Code {
	case "invalid_client":
		status = http.StatusUnauthorized
		w.Header().Set("WWW-Authenticate", `Basic realm="oauth2", error="invalid_client"`)
	case "slow_down":
		status = http.StatusTooManyRequests
	case "server_error":
		status = http.StatusInternalServerError
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, status, map[string]string{"error": e.Code, "error_description": e.Description})
}

// writeJSON writes v as the JSON body of a response with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"error":"server_error"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}

// writeText writes a short plain-text page, used for the browser errors that carry no form.
func writeText(w http.ResponseWriter, status int, text string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write([]byte(text + "\n"))
}
