package httpapi

import (
	"net/http"

	"github.com/verdict-authz/verdict/loader"
)

// BundleStatus reports the loaded bundles and the change pipeline; the
// loader implements it.
type BundleStatus interface {
	// Status lists every bundle with its revision, load times and last error.
	Status() loader.Status
	// Processors lists the change pipeline's processors.
	Processors() []loader.ProcessorInfo
}

// handleStatus answers GET /v1/status: each bundle's name, source, state,
// revision, load times and last error (file, line, message), and with a
// shadow candidate its "shadow" section.
func (s *Server) handleStatus(w http.ResponseWriter, _ *http.Request) {
	if s.opts.Bundles == nil {
		writeError(w, http.StatusNotFound, "not_found", "", "this server keeps no bundle status")
		return
	}
	if s.opts.Shadow == nil {
		writeJSON(w, http.StatusOK, s.opts.Bundles.Status())
		return
	}
	writeJSON(w, http.StatusOK, struct {
		loader.Status
		Shadow any `json:"shadow"`
	}{s.opts.Bundles.Status(), s.opts.Shadow.ShadowStatus()})
}

// ShadowStatus reports the shadow candidate (verdict run --candidate) for
// GET /v1/status: its bundles' revisions and errors, what it shadowed and
// its last difference.
type ShadowStatus interface {
	ShadowStatus() any
}

// handleProcessors answers GET /v1/processors: every processor of the
// change pipeline, in order, with whether it is enabled.
func (s *Server) handleProcessors(w http.ResponseWriter, _ *http.Request) {
	if s.opts.Bundles == nil {
		writeError(w, http.StatusNotFound, "not_found", "", "this server has no change pipeline")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"processors": s.opts.Bundles.Processors()})
}

// bundlesFailing answers 503 for /health/ready when the newest version of
// some bundle was rejected (the last good one is still serving), and
// reports whether it did.
func (s *Server) bundlesFailing(w http.ResponseWriter) bool {
	if s.opts.Bundles == nil {
		return false
	}
	st := s.opts.Bundles.Status()
	if len(st.Failing) == 0 {
		return false
	}
	errs := map[string]*loader.LoadError{}
	for _, b := range st.Bundles {
		if b.State == loader.StateFailed {
			errs[b.Name] = b.LastError
		}
	}
	writeJSON(w, http.StatusServiceUnavailable, map[string]any{
		"status":     "not_ready",
		"message":    "the newest version of a bundle was rejected; the last good version is serving",
		"failing":    st.Failing,
		"errors":     errs,
		"generation": st.Generation,
	})
	return true
}
