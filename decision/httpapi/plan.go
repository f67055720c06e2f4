package httpapi

import (
	"net/http"

	"github.com/verdict-authz/verdict/decision"
)

// handlePlan answers POST /v1/plan: how a service filters a list query.
func (s *Server) handlePlan(w http.ResponseWriter, r *http.Request) {
	var req decision.PlanRequest
	if !s.decodeJSON(w, r, &req) {
		return
	}
	p, err := s.engine.Plan(r.Context(), &req)
	if err != nil {
		s.writeDecideError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}
