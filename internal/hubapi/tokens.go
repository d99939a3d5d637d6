package hubapi

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/ohtkhub/ohtkhub/internal/store"
)

// tokenModel is an API token in JupyterHub's JSON shape (never its secret, except once on
// creation).
type tokenModel struct {
	ID        string  `json:"id"`
	Kind      string  `json:"kind"`
	User      string  `json:"user"`
	Note      string  `json:"note"`
	Created   string  `json:"created"`
	ExpiresAt *string `json:"expires_at"`
	Token     string  `json:"token,omitempty"`
}

func toModel(t store.Token) tokenModel {
	m := tokenModel{ID: t.ID, Kind: "api_token", User: t.User, Note: t.Note, Created: t.CreatedAt.UTC().Format(time.RFC3339Nano)}
	if !t.ExpiresAt.IsZero() {
		e := t.ExpiresAt.UTC().Format(time.RFC3339Nano)
		m.ExpiresAt = &e
	}
	return m
}

// tokenCaller reports whether c may manage tokens: only people (sessions, their own API
// tokens), never servers or the tokens servers got for browsers.
func tokenCaller(w http.ResponseWriter, c caller) bool {
	if c.kind == kindSession || c.kind == store.TokenUser {
		return true
	}
	writeError(w, http.StatusForbidden, "This token may not manage API tokens.")
	return false
}

func (a *API) listTokens(w http.ResponseWriter, r *http.Request, c caller) {
	if !tokenCaller(w, c) {
		return
	}
	u, ok := a.target(w, r, c, false)
	if !ok {
		return
	}
	toks, err := a.store.Tokens(r.Context(), u.Name, store.TokenUser)
	if err != nil {
		a.internal(w, err)
		return
	}
	out := make([]tokenModel, 0, len(toks))
	for _, t := range toks {
		out = append(out, toModel(t))
	}
	writeJSON(w, http.StatusOK, map[string]any{"api_tokens": out})
}

func (a *API) createToken(w http.ResponseWriter, r *http.Request, c caller) {
	if !tokenCaller(w, c) {
		return
	}
	u, ok := a.target(w, r, c, false)
	if !ok {
		return
	}
	var body struct {
		Note      string `json:"note"`
		ExpiresIn int64  `json:"expires_in"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<14)).Decode(&body); err != nil && !errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, "Body must be JSON: {\"note\": text, \"expires_in\": seconds}.")
		return
	}
	if body.ExpiresIn < 0 || len(body.Note) > 200 {
		writeError(w, http.StatusBadRequest, "expires_in must be positive and note at most 200 characters.")
		return
	}
	ttl := time.Duration(body.ExpiresIn) * time.Second
	secret, err := a.store.CreateToken(r.Context(), store.Token{User: u.Name, Kind: store.TokenUser, Note: body.Note}, ttl)
	if err != nil {
		a.internal(w, err)
		return
	}
	t, err := a.store.TokenBySecret(r.Context(), secret)
	if err != nil {
		a.internal(w, err)
		return
	}
	m := toModel(t)
	m.Token = secret
	writeJSON(w, http.StatusCreated, m)
}

func (a *API) deleteToken(w http.ResponseWriter, r *http.Request, c caller) {
	if !tokenCaller(w, c) {
		return
	}
	u, ok := a.target(w, r, c, false)
	if !ok {
		return
	}
	if err := a.store.DeleteToken(r.Context(), u.Name, r.PathValue("id")); errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "No such token.")
		return
	} else if err != nil {
		a.internal(w, err)
		return
	}
	w.Header().Set("X-JupyterHub-Version", Version)
	w.WriteHeader(http.StatusNoContent)
}
