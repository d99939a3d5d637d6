package api

import (
	"log/slog"
	"net/http"

	"github.com/ohtkhub/ohtkhub/internal/exportapi"
)

// exportHandler returns the handler mounted at /api/export/v1/. It receives requests with
// the tenant in their context and the tenant prefix removed from the path. The cursor key
// comes from the data directory, so replicas sharing it accept each other's cursors.
func exportHandler(cfg Config, log *slog.Logger, cursorKey []byte) http.Handler {
	return exportapi.New(exportapi.Options{BasicPasswords: cfg.Export.BasicPasswords, Logger: log, CursorKey: cursorKey})
}
