package httpapi

import (
	"bytes"
	"net/http"
	"slices"
	"strings"
)

// defaultDecision is the document POST / answers, as OPA's default
// decision (default_decision, /system/main in OPA) is fixed to it here.
const defaultDecision = "data.verdict.decision"

// handleDefaultDecision answers POST /, OPA's default decision: the whole
// body is the input of data.verdict.decision (a decision request), and the
// answer is that document itself, not wrapped in {"result": …} — the same
// document POST /v1/decide returns. An empty body leaves the input, and so
// the document, undefined: 404 undefined_document, as OPA answers an
// undefined default decision.
func (s *Server) handleDefaultDecision(w http.ResponseWriter, r *http.Request) {
	buf := s.bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer s.bufPool.Put(buf)
	if !s.readBody(w, r, buf) {
		return
	}
	if len(bytes.TrimSpace(buf.Bytes())) == 0 {
		writeJSON(w, http.StatusNotFound, ErrorBody{Code: "undefined_document",
			Message: "document undefined: " + defaultDecision + " (POST / takes a decision request as its body)"})
		return
	}
	s.answerDecision(w, r, buf)
}

// probeMethods are the methods handleUnrouted tries a path with, to tell a
// path that exists under other methods (405) from one that does not (404).
var probeMethods = []string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
	http.MethodPatch, http.MethodDelete, http.MethodOptions,
}

// handleUnrouted answers every request no route takes, with a JSON error in
// OPA's shape ({"code", "message"}) instead of net/http's plain-text page:
// 405 method_not_allowed with an Allow header when the path is served under
// other methods, else 404 not_found.
func (s *Server) handleUnrouted(w http.ResponseWriter, r *http.Request) {
	var allowed []string
	for _, m := range probeMethods {
		if m == r.Method {
			continue
		}
		probe := &http.Request{Method: m, URL: r.URL, Host: r.Host, Header: http.Header{}}
		if _, pattern := s.mux.Handler(probe); pattern != "" && pattern != unroutedPattern {
			allowed = append(allowed, m)
		}
	}
	if len(allowed) > 0 {
		slices.Sort(allowed)
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "",
			r.Method+" is not allowed on "+r.URL.Path+"; allowed: "+strings.Join(allowed, ", "))
		return
	}
	writeError(w, http.StatusNotFound, "not_found", "", "no endpoint at "+r.URL.Path)
}

// unroutedPattern is the pattern handleUnrouted is registered under: it
// matches every request that no other pattern matches.
const unroutedPattern = "/"
