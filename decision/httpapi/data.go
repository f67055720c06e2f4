package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/verdict-authz/verdict/decision"
)

// decisionPath is the Data API path that answers like POST /v1/decide.
const decisionPath = "verdict/decision"

// dataRequest is OPA's Data API request body.
type dataRequest struct {
	Input *json.RawMessage `json:"input"`
}

// dataResponse is OPA's Data API answer: no "result" when undefined.
type dataResponse struct {
	DecisionID string `json:"decision_id,omitempty"`
	Result     *any   `json:"result,omitempty"`
}

// handleData answers OPA's Data API: POST /v1/data/{path} with
// {"input": …} and GET /v1/data/{path}?input=<JSON>.
func (s *Server) handleData(w http.ResponseWriter, r *http.Request) {
	path := strings.Trim(r.PathValue("path"), "/")
	var rawInput []byte
	switch r.Method {
	case http.MethodPost:
		var req dataRequest
		if r.ContentLength != 0 {
			if !s.decodeJSON(w, r, &req) {
				return
			}
		}
		if req.Input != nil {
			rawInput = *req.Input
		}
	default:
		if in := r.URL.Query().Get("input"); in != "" {
			rawInput = []byte(in)
		}
	}
	if path == decisionPath {
		s.dataDecision(w, r, rawInput)
		return
	}
	var input any
	if rawInput != nil {
		if err := decodeStrict(rawInput, &input, false); err != nil {
			field, msg := describeJSONError(err)
			writeError(w, http.StatusBadRequest, "invalid_request", joinField("input", field), msg)
			return
		}
	}
	// The engine's rules trust input.facts as what verdict gathered from
	// the store: taken from a caller, they would let data.verdict.engine
	// (or any document above it) allow a member that does not exist.
	if in, ok := input.(map[string]any); ok {
		if _, forged := in["facts"]; forged {
			writeError(w, http.StatusBadRequest, "invalid_request", "input.facts",
				"input.facts is reserved for the facts verdict gathers itself; ask data.verdict.decision for a decision")
			return
		}
	}
	var segments []string
	if path != "" {
		segments = strings.Split(path, "/")
	}
	res, err := s.engine.Query(r.Context(), segments, input)
	if err != nil {
		var inErr *decision.InputError
		switch {
		case errors.As(err, &inErr):
			writeError(w, http.StatusBadRequest, "invalid_request", inErr.Field, inErr.Error())
		case errors.Is(err, decision.ErrNotReady):
			writeError(w, http.StatusServiceUnavailable, "not_ready", "", err.Error())
		default:
			writeError(w, http.StatusInternalServerError, "internal_error", "", err.Error())
		}
		return
	}
	out := dataResponse{DecisionID: res.DecisionID}
	if res.Defined {
		out.Result = &res.Result
	}
	writeJSON(w, http.StatusOK, out)
}

// dataDecision answers data.verdict.decision: the input is a decision
// request and the result the same document /v1/decide returns.
func (s *Server) dataDecision(w http.ResponseWriter, r *http.Request, rawInput []byte) {
	if rawInput == nil {
		// Undefined without input, as a rule that needs input would be.
		writeJSON(w, http.StatusOK, dataResponse{})
		return
	}
	var req decision.Request
	if err := decodeStrict(rawInput, &req, true); err != nil {
		field, msg := describeJSONError(err)
		writeError(w, http.StatusBadRequest, "invalid_request", joinField("input", field), msg)
		return
	}
	d, err := s.engine.Decide(r.Context(), &req)
	if err != nil {
		var inErr *decision.InputError
		if errors.As(err, &inErr) {
			writeError(w, http.StatusBadRequest, "invalid_request", joinField("input", inErr.Field), inErr.Error())
			return
		}
		writeError(w, http.StatusInternalServerError, "internal_error", "", err.Error())
		return
	}
	var result any = d
	writeJSON(w, http.StatusOK, dataResponse{DecisionID: d.DecisionID, Result: &result})
}

func joinField(prefix, field string) string {
	if field == "" {
		return prefix
	}
	return prefix + "." + field
}
