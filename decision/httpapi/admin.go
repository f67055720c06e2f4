package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"

	"github.com/verdict-authz/verdict/decision/proxyauth"
)

// requireAdmin guards a write endpoint (service registration, delegation
// requests and consents) with the admin bearer token when one is
// configured (--admin-token-file). A missing or wrong token is answered 401
// with a WWW-Authenticate: Bearer challenge. The comparison takes the same
// time whatever the token: both sides are hashed first, and the hashes are
// compared with subtle.ConstantTimeCompare, so neither the content nor the
// length of the configured token leaks through timing.
func (s *Server) requireAdmin(h http.HandlerFunc) http.HandlerFunc {
	if len(s.opts.AdminToken) == 0 {
		return h
	}
	want := sha256.Sum256(s.opts.AdminToken)
	return func(w http.ResponseWriter, r *http.Request) {
		token, given := proxyauth.BearerToken(r.Header)
		got := sha256.Sum256([]byte(token))
		if !given || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			challenge := `Bearer realm="verdict"`
			msg := "this endpoint needs the admin token: Authorization: Bearer <token> (see --admin-token-file)"
			if given {
				challenge += `, error="invalid_token"`
				msg = "the bearer token is not the admin token"
			}
			w.Header().Set("WWW-Authenticate", challenge)
			writeError(w, http.StatusUnauthorized, "unauthorized", "", msg)
			return
		}
		h(w, r)
	}
}
