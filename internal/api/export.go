package api

import (
	"log/slog"
	"net/http"
)

// exportHandler returns the handler mounted at /api/export/v1/. It receives requests with
// the tenant in their context and the tenant prefix removed from the path.
func exportHandler(cfg Config, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "The Export API is not available in this build.")
	})
}
