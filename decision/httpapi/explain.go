package httpapi

import (
	"net/http"

	"github.com/verdict-authz/verdict/decision"
)

// explainedDecision is a decision with its explanation (explain=full).
type explainedDecision struct {
	*decision.Decision
	Explanation *decision.Explanation `json:"explanation"`
}

// handleDecideQuery serves the forms of /v1/decide that carry a query
// string, and GET /v1/decide:
//
//   - POST /v1/decide?explain=full — the body is a decision request; the
//     answer is the decision plus an "explanation" (a summary and OPA's
//     evaluation trace). explain=off (or absent) is a plain decision.
//   - GET /v1/decide?input=<JSON request>[&explain=full] — the same, with
//     the request URL-encoded in the input parameter (as OPA's GET Data
//     API takes its input). A GET without input answers 405 (Allow: POST),
//     as before this form existed.
//
// Explanations are for a person debugging a policy: they cost far more
// than a decision and are never written to the decision log.
func (s *Server) handleDecideQuery(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	explain := false
	switch mode := q.Get("explain"); mode {
	case "", "off", "false":
	case "full":
		explain = true
	default:
		writeError(w, http.StatusBadRequest, "invalid_request", "explain",
			"explain: "+mode+" is not supported; use explain=full")
		return
	}
	var req decision.Request
	if r.Method == http.MethodGet {
		// As the Data API reads it: a malformed or repeated input is a 400.
		input, inErr := queryInput(r.URL.RawQuery)
		if inErr != nil {
			writeError(w, http.StatusBadRequest, "invalid_request", inErr.Field, inErr.Message)
			return
		}
		if input == nil {
			// A plain GET is not how decisions are asked for.
			w.Header().Set("Allow", "POST")
			writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "input",
				"decisions are asked with POST /v1/decide; GET /v1/decide takes the request as JSON in the input query parameter")
			return
		}
		if int64(len(input)) > s.opts.MaxBodyBytes {
			writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", "input", "input: the request is too large")
			return
		}
		if err := decodeStrict(input, &req, true); err != nil {
			field, msg := describeJSONError(err)
			writeError(w, http.StatusBadRequest, "invalid_request", field, msg)
			return
		}
	} else if !s.decodeJSON(w, r, &req) {
		return
	}
	if !explain {
		d, err := s.engine.Decide(r.Context(), &req)
		if err != nil {
			s.writeDecideError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, d)
		return
	}
	d, ex, err := s.engine.DecideExplained(r.Context(), &req)
	if err != nil {
		s.writeDecideError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, explainedDecision{Decision: d, Explanation: ex})
}
